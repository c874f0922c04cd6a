//go:build linux

package allreduce

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
)

// shmLink is one directed link inside the receiver's inbox: a byte ring with
// one writer (the sender's process) and one reader (the owner's). The sender
// alone moves head, the reader alone moves tail; both are byte counts that
// only grow, so head−tail is what waits. A record is an 8-byte prefix (the
// frame's length and a kind) and the frame, padded to 8 bytes; a record never
// wraps: when it does not fit before the end, a wrap record fills the rest and
// the frame starts again at 0.
//
// The memory belongs to the mapping m (see shmMap); a link is a view of it.
type shmLink struct {
	m    *shmMap
	hdr  int    // offset of the link's counter page in m
	data []byte // the ring
}

const (
	shmRecFrame = 1
	shmRecWrap  = 2
	shmRecSize  = 8 // record prefix
)

func newShmLink(m *shmMap, sender, link int) shmLink {
	off := shmLinkOffset(sender, link)
	return shmLink{m: m, hdr: off, data: m.mem[off+shmPage : off+shmPage+link]}
}

func (l *shmLink) head() *uint64    { return l.m.u64(l.hdr + shmLinkHead) }
func (l *shmLink) tail() *uint64    { return l.m.u64(l.hdr + shmLinkTail) }
func (l *shmLink) space() *uint32   { return l.m.u32(l.hdr + shmLinkSpace) }
func (l *shmLink) waiting() *uint32 { return l.m.u32(l.hdr + shmLinkWaiting) }

// recordSize is the ring bytes a frame of n bytes takes.
func recordSize(n int) int { return shmRecSize + pad8(n) }

// maxShmFrame is the largest frame a ring of link bytes takes: half of it,
// so that a record always fits in an empty ring after a wrap record.
func maxShmFrame(link int) int { return link/2 - shmRecSize }

// fits says whether a frame of n bytes can be written now. Sender only.
func (l *shmLink) fits(n int) bool {
	head, tail := atomic.LoadUint64(l.head()), atomic.LoadUint64(l.tail())
	need, idx := recordSize(n), int(head%uint64(len(l.data)))
	if rest := len(l.data) - idx; rest < need {
		need += rest
	}
	return uint64(len(l.data))-(head-tail) >= uint64(need)
}

// tryWrite appends the frame made of parts (n bytes in all) and publishes it,
// or reports false when the ring has no room for it yet. Sender only.
func (l *shmLink) tryWrite(parts [][]byte, n int) bool {
	if !l.fits(n) {
		return false
	}
	head := atomic.LoadUint64(l.head())
	idx := int(head % uint64(len(l.data)))
	if rest := len(l.data) - idx; rest < recordSize(n) {
		binary.LittleEndian.PutUint32(l.data[idx:], 0)
		binary.LittleEndian.PutUint32(l.data[idx+4:], shmRecWrap)
		head += uint64(rest)
		idx = 0
	}
	binary.LittleEndian.PutUint32(l.data[idx:], uint32(n))
	binary.LittleEndian.PutUint32(l.data[idx+4:], shmRecFrame)
	o := idx + shmRecSize
	for _, p := range parts {
		o += copy(l.data[o:], p)
	}
	// The store publishes the bytes written above: the reader loads head
	// before it reads them.
	atomic.StoreUint64(l.head(), head+uint64(recordSize(n)))
	return true
}

// next returns the frame at tail (a view into the ring, valid until the tail
// moves past it) and the tail after it; ok is false when nothing waits. A
// record that cannot be right (a length past what was written or past the
// frame limit) is an error: the link is unusable. Reader only.
func (l *shmLink) next(tail uint64, maxFrame int) (frame []byte, after uint64, ok bool, err error) {
	size := uint64(len(l.data))
	for {
		head := atomic.LoadUint64(l.head())
		if head == tail {
			return nil, tail, false, nil
		}
		if head-tail > size || head-tail < shmRecSize {
			return nil, tail, false, fmt.Errorf("link counters head %d, tail %d out of bounds", head, tail)
		}
		idx := int(tail % size)
		n := int(binary.LittleEndian.Uint32(l.data[idx:]))
		switch binary.LittleEndian.Uint32(l.data[idx+4:]) {
		case shmRecWrap:
			tail += size - uint64(idx)
			continue
		case shmRecFrame:
		default:
			return nil, tail, false, fmt.Errorf("unknown record kind at %d", tail)
		}
		rec := recordSize(n)
		if n > maxFrame || uint64(rec) > head-tail || idx+rec > len(l.data) {
			return nil, tail, false, fmt.Errorf("record of %d bytes at %d exceeds the link", n, tail)
		}
		return l.data[idx+shmRecSize : idx+shmRecSize+n], tail + uint64(rec), true, nil
	}
}

// release hands the ring up to tail back to the sender and wakes it if it
// waits for room. Reader only.
func (l *shmLink) release(tail uint64) {
	atomic.StoreUint64(l.tail(), tail)
	atomic.AddUint32(l.space(), 1)
	if atomic.LoadUint32(l.waiting()) != 0 {
		futexWake(l.space())
	}
}
