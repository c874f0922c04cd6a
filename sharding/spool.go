package sharding

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

// spool keeps per-image annotation records on disk while the big files are
// streamed, so that memory holds only offsets: records are appended as JSON
// and read back by offset when the image's shard is written.
type spool struct {
	f     *os.File
	w     *bufio.Writer
	off   int64
	spans map[uint64][]span // image id (dataset-local) → records
}

type span struct {
	off   int64
	n     uint32 // bytes
	items uint32 // annotations in the record (for counting what is skipped)
}

func newSpool(path string) (*spool, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &spool{f: f, w: bufio.NewWriterSize(f, 1<<20), spans: map[uint64][]span{}}, nil
}

// put appends v as the record of image id carrying items annotations.
func (s *spool) put(id uint64, items int, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := s.w.Write(data); err != nil {
		return err
	}
	s.spans[id] = append(s.spans[id], span{off: s.off, n: uint32(len(data)), items: uint32(items)})
	s.off += int64(len(data))
	return nil
}

// seal flushes the writes; get may be called from any goroutine afterwards.
func (s *spool) seal() error { return s.w.Flush() }

// get decodes every record of image id, in the order they were put, into
// fresh values passed to fn.
func get[T any](s *spool, id uint64, fn func(*T)) error {
	if s == nil {
		return nil
	}
	for _, sp := range s.spans[id] {
		buf := make([]byte, sp.n)
		if _, err := s.f.ReadAt(buf, sp.off); err != nil {
			return fmt.Errorf("sharding: reading spool: %w", err)
		}
		var v T
		if err := json.Unmarshal(buf, &v); err != nil {
			return fmt.Errorf("sharding: decoding spool: %w", err)
		}
		fn(&v)
	}
	return nil
}

// items counts the annotations spooled for image id.
func (s *spool) items(id uint64) int64 {
	if s == nil {
		return 0
	}
	var n int64
	for _, sp := range s.spans[id] {
		n += int64(sp.items)
	}
	return n
}

func (s *spool) close() {
	if s != nil {
		s.f.Close()
	}
}
