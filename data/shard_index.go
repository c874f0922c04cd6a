package data

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrShardIndex: a shard's structure does not allow random access (a
// sample without its .jpg or .json member, members out of order).
var ErrShardIndex = errors.New("data: cannot index shard")

// memberSpan is where a member's bytes lie in a shard file.
type memberSpan struct{ off, n int64 }

// sampleSpan locates one sample's two members.
type sampleSpan struct {
	key        string
	jpeg, json memberSpan
}

// seekCounter is an *os.File whose position is tracked, so the offset of a
// tar member's data is known right after tar.Reader.Next. tar.Reader skips
// unread data with Seek, so indexing reads only the headers.
type seekCounter struct {
	f   *os.File
	pos int64
}

func (s *seekCounter) Read(p []byte) (int, error) {
	n, err := s.f.Read(p)
	s.pos += int64(n)
	return n, err
}

func (s *seekCounter) Seek(off int64, whence int) (int64, error) {
	p, err := s.f.Seek(off, whence)
	if err == nil {
		s.pos = p
	}
	return p, err
}

// indexShard lists the samples of an open shard in tar order, reading the
// tar headers only. Names follow the shard format: `<key>.jpg` and
// `<key>.json`, adjacent, in either order.
func indexShard(f *os.File, name string) ([]sampleSpan, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	sc := &seekCounter{f: f}
	tr := tar.NewReader(sc)
	var out []sampleSpan
	var cur *sampleSpan
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: after %d samples: %v", ErrShardIndex, name, len(out), err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		dot := strings.LastIndexByte(h.Name, '.')
		if dot <= 0 {
			return nil, fmt.Errorf("%w: %s: member %q has no extension", ErrShardIndex, name, h.Name)
		}
		key, ext := h.Name[:dot], h.Name[dot:]
		span := memberSpan{off: sc.pos, n: h.Size}
		if cur == nil || cur.key != key {
			if cur != nil && (cur.jpeg.n == 0 || cur.json.n == 0) {
				return nil, fmt.Errorf("%w: %s: sample %q lacks a member", ErrShardIndex, name, cur.key)
			}
			out = append(out, sampleSpan{key: key})
			cur = &out[len(out)-1]
		}
		switch ext {
		case ".jpg":
			cur.jpeg = span
		case ".json":
			cur.json = span
		default:
			return nil, fmt.Errorf("%w: %s: unexpected member %q", ErrShardIndex, name, h.Name)
		}
	}
	if cur != nil && (cur.jpeg.n == 0 || cur.json.n == 0) {
		return nil, fmt.Errorf("%w: %s: sample %q lacks a member", ErrShardIndex, name, cur.key)
	}
	return out, nil
}
