package checkpoint

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// bbolt memory-maps the file and trusts its meta page: a file cut short
// (a partial copy, a full disk, a bad restore) opens fine and then faults
// with SIGBUS the moment a page past the end is read, which no recover can
// catch. checkTruncated reads bbolt's two meta pages before bbolt does and
// refuses a file shorter than the newest valid meta says it is.
//
// The meta page layout is bbolt's file format version 2: a 16-byte page
// header, then magic u32, version u32, pageSize u32, flags u32, root bucket
// (root u64, sequence u64), freelist u64, pgid u64, txid u64, checksum u64
// (FNV-1a 64 of the 56 bytes before it), all in host (little-endian) order.
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	boltPageHeader = 16
	boltMetaLen    = 64
)

type boltMeta struct {
	pageSize uint32
	pgid     uint64 // high-water mark: pages [0, pgid) are in use
	txid     uint64
}

func parseBoltMeta(b []byte) (boltMeta, bool) {
	if len(b) < boltPageHeader+boltMetaLen {
		return boltMeta{}, false
	}
	m := b[boltPageHeader : boltPageHeader+boltMetaLen]
	le := binary.LittleEndian
	if le.Uint32(m[0:]) != boltMagic || le.Uint32(m[4:]) != boltVersion {
		return boltMeta{}, false
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if h.Sum64() != le.Uint64(m[56:]) {
		return boltMeta{}, false
	}
	return boltMeta{pageSize: le.Uint32(m[8:]), pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, true
}

// checkTruncated returns ErrTruncated when the file at path is shorter than
// its newest valid meta page claims. Files whose meta pages do not parse are
// left to bbolt, which rejects them with its own error before mapping pages.
func checkTruncated(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	head := make([]byte, boltPageHeader+boltMetaLen)
	if _, err := io.ReadFull(f, head); err != nil {
		return nil // too short to hold a meta page: bbolt says so itself
	}
	m0, ok0 := parseBoltMeta(head)
	best, ok := m0, ok0
	// The second meta page sits one page further on. Without a valid first
	// meta the page size is unknown; try the sizes bbolt uses in practice.
	sizes := []int64{4096, 8192, 16384, 65536}
	if ok0 {
		sizes = []int64{int64(m0.pageSize)}
	}
	for _, ps := range sizes {
		buf := make([]byte, boltPageHeader+boltMetaLen)
		if _, err := f.ReadAt(buf, ps); err != nil {
			continue
		}
		if m1, ok1 := parseBoltMeta(buf); ok1 && int64(m1.pageSize) == ps {
			if !ok || m1.txid > best.txid {
				best, ok = m1, true
			}
			break
		}
	}
	if !ok {
		return nil
	}
	if need := int64(best.pgid) * int64(best.pageSize); st.Size() < need {
		return fmt.Errorf("%w: %d bytes on disk, the database needs %d", ErrTruncated, st.Size(), need)
	}
	return nil
}
