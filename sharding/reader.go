package sharding

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strings"
)

// Sample is one image read from a shard.
type Sample struct {
	Index int        // position of the sample in its shard, from 0
	Meta  SampleMeta // the `<key>.json` member
	JPEG  []byte     // the `<key>.jpg` member
}

// Reader iterates over the samples of one tar shard in order.
//
// It checks the structure as it goes (every sample is a `<key>.jpg` and a
// `<key>.json` member, adjacent, in either order, the JSON parses and names
// the same key, the archive ends with its end-of-archive marker). A Reader
// made by OpenShard also checks the file's size and sha256 against the
// manifest when the last sample has been read: Next returns io.EOF only if
// they match. Errors wrap ErrCorruptShard or ErrChecksum and name the shard,
// the sample index and the byte offset.
//
// A Reader is not safe for concurrent use; open one per goroutine.
type Reader struct {
	name   string
	src    *hashReader
	tr     *tar.Reader
	closer io.Closer
	want   *ShardInfo // nil: no checksum to compare
	index  int
	err    error // sticky
	// a member read ahead while pairing: tar cannot step back
	pending *member
	single  bool // ReadSampleAt: one sample, no end-of-archive checks
}

type member struct {
	key, ext string
	data     []byte
	offset   int64
}

// NewReader reads a shard from r; name is used in errors. It checks
// structure only; see OpenShard for checksums.
func NewReader(r io.Reader, name string) *Reader {
	src := &hashReader{r: r, h: sha256.New()}
	return &Reader{name: name, src: src, tr: tar.NewReader(src)}
}

// OpenShard opens dir/info.Name and verifies, once the shard has been read
// to the end, that its size and sha256 are the manifest's. Close it when done.
func OpenShard(dir string, info ShardInfo) (*Reader, error) {
	f, err := os.Open(filepath.Join(dir, info.Name))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptShard, info.Name, err)
	}
	r := NewReader(bufio.NewReaderSize(f, 1<<20), info.Name)
	r.closer = f
	want := info
	r.want = &want
	return r, nil
}

// Close releases the file of a Reader made by OpenShard.
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	err := r.closer.Close()
	r.closer = nil
	return err
}

// Next returns the next sample, or io.EOF after the last one (and after a
// successful checksum comparison when the Reader has one).
func (r *Reader) Next() (Sample, error) {
	if r.err != nil {
		return Sample{}, r.err
	}
	s, err := r.next()
	if err != nil {
		r.err = err
	}
	return s, err
}

// All yields every sample; after an error it yields (Sample{}, err) once
// and stops. A clean end yields nothing more.
func (r *Reader) All() iter.Seq2[Sample, error] {
	return func(yield func(Sample, error) bool) {
		for {
			s, err := r.Next()
			if err == io.EOF {
				return
			}
			if !yield(s, err) || err != nil {
				return
			}
		}
	}
}

func (r *Reader) corrupt(offset int64, format string, args ...any) error {
	return fmt.Errorf("%w: %s: sample %d (byte %d): %s", ErrCorruptShard, r.name, r.index, offset, fmt.Sprintf(format, args...))
}

func (r *Reader) readMember() (*member, error) {
	if m := r.pending; m != nil {
		r.pending = nil
		return m, nil
	}
	start := r.src.n
	hdr, err := r.tr.Next()
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, r.corrupt(start, "reading tar header: %v", err)
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil, r.corrupt(start, "member %q is not a regular file", hdr.Name)
	}
	stem, ext, ok := strings.Cut(hdr.Name, ".")
	if !ok || (ext != extJPEG[1:] && ext != extJSON[1:]) {
		return nil, r.corrupt(start, "unexpected member %q (want <key>.jpg and <key>.json)", hdr.Name)
	}
	if hdr.Size < 0 || hdr.Size > 1<<30 {
		return nil, r.corrupt(start, "member %q has size %d", hdr.Name, hdr.Size)
	}
	// A sparse member expands holes into zeros: a few bytes of shard could
	// claim a gigabyte. Shards never hold one.
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return nil, r.corrupt(start, "member %q is a sparse file", hdr.Name)
		}
	}
	// Grow with what is actually there: a header may claim any size, and a
	// truncated or hostile shard must not make the reader allocate it.
	var buf bytes.Buffer
	buf.Grow(int(min(hdr.Size, 1<<20)))
	data := &expandGuard{r: io.LimitReader(r.tr, hdr.Size), src: r.src, start: r.src.n}
	if n, err := buf.ReadFrom(data); err != nil || n != hdr.Size {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, r.corrupt(start, "member %q truncated: %v", hdr.Name, err)
	}
	return &member{key: stem, ext: "." + ext, data: buf.Bytes(), offset: start}, nil
}

func (r *Reader) next() (Sample, error) {
	a, err := r.readMember()
	if err == io.EOF && r.single {
		return Sample{}, r.corrupt(r.src.n, "no sample at this offset (end of archive)")
	}
	if err == io.EOF {
		return Sample{}, r.finish()
	}
	if err != nil {
		return Sample{}, err
	}
	b, err := r.readMember()
	if err == io.EOF {
		return Sample{}, r.corrupt(a.offset, "%s%s has no partner member (shard truncated?)", a.key, a.ext)
	}
	if err != nil {
		return Sample{}, err
	}
	if b.key != a.key || b.ext == a.ext {
		return Sample{}, r.corrupt(a.offset, "%s%s is followed by %s%s, not its partner", a.key, a.ext, b.key, b.ext)
	}
	if a.ext == extJSON {
		a, b = b, a
	}
	s := Sample{Index: r.index, JPEG: a.data}
	if err := json.Unmarshal(b.data, &s.Meta); err != nil {
		return Sample{}, r.corrupt(b.offset, "%s.json: %v", b.key, err)
	}
	if s.Meta.Key != a.key {
		return Sample{}, r.corrupt(b.offset, "%s.json names key %q", b.key, s.Meta.Key)
	}
	r.index++
	return s, nil
}

// finish runs at the tar's end: it checks the end-of-archive marker, drains
// the rest of the file into the hash, and compares size and sha256.
func (r *Reader) finish() error {
	end := r.src.n
	if !r.src.sawZeroBlocks() {
		return r.corrupt(end, "archive ends without its end-of-archive marker (truncated)")
	}
	if _, err := io.Copy(io.Discard, r.src); err != nil {
		return r.corrupt(end, "reading trailer: %v", err)
	}
	if r.want == nil {
		return io.EOF
	}
	if r.src.n != r.want.Bytes {
		return fmt.Errorf("%w: %s: %d bytes, manifest says %d", ErrChecksum, r.name, r.src.n, r.want.Bytes)
	}
	if got := hex.EncodeToString(r.src.h.Sum(nil)); got != r.want.SHA256 {
		return fmt.Errorf("%w: %s: sha256 %s, manifest says %s", ErrChecksum, r.name, got, r.want.SHA256)
	}
	if r.index != r.want.Images {
		return fmt.Errorf("%w: %s: %d samples, manifest says %d", ErrCorruptShard, r.name, r.index, r.want.Images)
	}
	return io.EOF
}

// expandGuard fails a member that yields more bytes than the shard gave:
// a plain member's data is read from the shard byte for byte.
type expandGuard struct {
	r     io.Reader
	src   *hashReader
	start int64 // src.n when the member's data began
	n     int64
}

func (g *expandGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	g.n += int64(n)
	if g.n > g.src.n-g.start {
		return n, errors.New("member yields more bytes than the shard holds")
	}
	return n, err
}

// hashReader hashes and counts what passes through and remembers the last
// 1024 bytes, to see the two zero blocks that end a tar archive.
type hashReader struct {
	r    io.Reader
	h    hash.Hash
	n    int64
	tail [1024]byte
}

func (h *hashReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if n > 0 {
		h.h.Write(p[:n])
		h.n += int64(n)
		if n >= len(h.tail) {
			copy(h.tail[:], p[n-len(h.tail):n])
		} else {
			copy(h.tail[:], h.tail[n:])
			copy(h.tail[len(h.tail)-n:], p[:n])
		}
	}
	return n, err
}

func (h *hashReader) sawZeroBlocks() bool {
	if h.n < int64(len(h.tail)) {
		return false
	}
	for _, b := range h.tail {
		if b != 0 {
			return false
		}
	}
	return true
}

// ReadSampleAt reads sample index of a shard whose first tar header starts
// at offset (ShardInfo.SampleOffsets[index]), without scanning the shard:
// the random access an epoch plan needs. It checks the structure of that
// sample's two members; whole-file checksums are OpenShard's and Verify's.
// r is typically an *os.File, shared by concurrent calls.
func ReadSampleAt(r io.ReaderAt, name string, index int, offset int64) (Sample, error) {
	rd := NewReader(io.NewSectionReader(r, offset, 1<<62), name)
	rd.src.n = offset // errors report file offsets
	rd.index = index
	rd.single = true
	return rd.next()
}

// ReadVerifiedSample reads the whole shard through OpenShard and returns
// its sample index only if the shard's structure, size and sha256 match
// info: what a person is shown has been checked.
func ReadVerifiedSample(dir string, info ShardInfo, index int) (Sample, error) {
	r, err := OpenShard(dir, info)
	if err != nil {
		return Sample{}, err
	}
	defer r.Close()
	var found *Sample
	for {
		s, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Sample{}, err
		}
		if s.Index == index {
			found = &s
		}
	}
	if found == nil {
		return Sample{}, fmt.Errorf("%w: %s has no sample %d", ErrCorruptShard, info.Name, index)
	}
	return *found, nil
}

// ReadSampleFile reads only sample index of dir/info.Name, at its
// sample_offsets entry (ReadSampleAt): the sample's structure is checked,
// the shard's checksum is not.
func ReadSampleFile(dir string, info ShardInfo, index int) (Sample, error) {
	if index < 0 || index >= len(info.SampleOffsets) {
		return Sample{}, fmt.Errorf("%w: %s: no sample_offsets entry %d", ErrBadManifest, info.Name, index)
	}
	f, err := os.Open(filepath.Join(dir, info.Name))
	if err != nil {
		return Sample{}, fmt.Errorf("%w: %s: %v", ErrCorruptShard, info.Name, err)
	}
	defer f.Close()
	return ReadSampleAt(f, info.Name, index, info.SampleOffsets[index])
}
