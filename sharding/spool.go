package sharding

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
)

// spool keeps per-image annotation records on disk while the big files are
// streamed, so that memory holds only offsets (and, until duplicates are
// judged, one id per item): records are appended as JSON and read back by
// offset when the image's shard is written.
type spool struct {
	unit  string // what its items are (UnitCaption, …)
	f     *os.File
	w     *bufio.Writer
	off   int64
	spans map[uint64][]span // image id (dataset-local) → records

	ids  []uint64        // every item id put, until judged (dups.go)
	dups map[uint64]bool // ids put more than once → true when the copies conflict
}

type span struct {
	off   int64
	n     uint32 // bytes
	items uint32 // items in the record (for counting what is skipped)
}

func newSpool(path, unit string) (*spool, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &spool{unit: unit, f: f, w: bufio.NewWriterSize(f, 1<<20), spans: map[uint64][]span{}}, nil
}

// put appends v as a record of image id carrying items items.
func (s *spool) put(id uint64, items int, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(data) > 1<<32-1 {
		return fmt.Errorf("sharding: spool record of %d bytes", len(data))
	}
	if _, err := s.w.Write(data); err != nil {
		return err
	}
	s.spans[id] = append(s.spans[id], span{off: s.off, n: uint32(len(data)), items: uint32(items)})
	s.off += int64(len(data))
	return nil
}

// noteID records an item id for the duplicate check.
func (s *spool) noteID(id uint64) { s.ids = append(s.ids, id) }

// seal flushes the writes; get may be called from any goroutine afterwards.
func (s *spool) seal() error { return s.w.Flush() }

// get decodes every record of image id, in the order they were put, into
// fresh values passed to fn.
func get[T any](s *spool, id uint64, fn func(*T)) error {
	if s == nil {
		return nil
	}
	for _, sp := range s.spans[id] {
		v, err := readRecord[T](s, sp)
		if err != nil {
			return err
		}
		fn(&v)
	}
	return nil
}

func readRecord[T any](s *spool, sp span) (T, error) {
	var v T
	buf := make([]byte, sp.n)
	if _, err := s.f.ReadAt(buf, sp.off); err != nil {
		return v, fmt.Errorf("sharding: reading spool: %w", err)
	}
	if err := json.Unmarshal(buf, &v); err != nil {
		return v, fmt.Errorf("sharding: decoding spool: %w", err)
	}
	return v, nil
}

// items counts the items spooled for image id.
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

// all yields every record's image id and span in the order they were put.
func (s *spool) all() []imageSpan {
	var out []imageSpan
	for id, sps := range s.spans {
		for _, sp := range sps {
			out = append(out, imageSpan{id, sp})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].off < out[j].off })
	return out
}

type imageSpan struct {
	image uint64
	span
}

func (s *spool) close() {
	if s != nil {
		s.f.Close()
	}
}
