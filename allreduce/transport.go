package allreduce

import (
	"context"
	"sync"
)

// Transport moves frames between the ranks of one generation. It knows
// nothing of collectives: the Ring frames, tags, windows and checks every
// message. A Transport is bound to one (job, generation, rank) and is owned by
// the Ring it is given to, which closes it.
//
// The contract:
//   - Send transmits one frame, the concatenation of parts, to rank `to`. It
//     may return before the peer has it, but the parts may be reused as soon as
//     it returns. Frames from one sender to one receiver arrive in the order
//     sent, or not at all (the Ring's window and deadlines cover loss). Send is
//     safe for concurrent use; it honours ctx's deadline. A frame is at most
//     MaxFrame bytes.
//   - Recv returns the next frame from any rank, in arrival order, until Close.
//     Frames may come from anyone who can reach the transport: the Ring drops
//     those whose tags are wrong. When the transport learns that a peer is gone
//     (a connection closed or reset) Recv returns a *PeerError once for it and
//     can be called again. Recv is called from one goroutine.
//   - Close releases everything and makes Recv return ErrClosed. A frame's Data
//     stays valid until its Release, even after Close.
type Transport interface {
	Send(ctx context.Context, to int, parts ...[]byte) error
	Recv(ctx context.Context) (Frame, error)
	// MaxFrame is the largest frame Send accepts, in bytes (header included).
	MaxFrame() int
	Close() error
}

// Frame is one received message.
type Frame struct {
	Data    []byte
	release func([]byte)
}

// Release hands the frame's buffer back to its transport. Call it once.
func (f Frame) Release() {
	if f.release != nil {
		f.release(f.Data)
	}
}

// bufPool recycles frame buffers of up to max bytes, in two classes: control
// frames (small) and data frames (about a chunk), so a small frame never
// takes a chunk-sized buffer that a data frame then has to allocate anew.
type bufPool struct {
	mu         sync.Mutex
	small, big [][]byte
	max        int
}

const (
	bufPoolKeep  = 64   // buffers kept per class
	bufSmallSize = 4096 // capacity of a small buffer
)

func (p *bufPool) get(n int) []byte {
	p.mu.Lock()
	list := &p.big
	if n <= bufSmallSize {
		list = &p.small
	}
	for i := len(*list) - 1; i >= 0; i-- {
		if b := (*list)[i]; cap(b) >= n {
			(*list)[i] = (*list)[len(*list)-1]
			*list = (*list)[:len(*list)-1]
			p.mu.Unlock()
			return b[:n]
		}
	}
	p.mu.Unlock()
	return make([]byte, n, max(n, bufSmallSize))
}

func (p *bufPool) put(b []byte) {
	if p.max > 0 && cap(b) > p.max {
		return
	}
	p.mu.Lock()
	list := &p.big
	if cap(b) <= bufSmallSize {
		list = &p.small
	}
	if len(*list) < bufPoolKeep {
		*list = append(*list, b[:0])
	}
	p.mu.Unlock()
}

func totalLen(parts [][]byte) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}
