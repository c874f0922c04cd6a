package allreduce

import (
	"context"
	"fmt"
	"sync"
)

// InmemNetwork connects the in-memory transports of one generation: tests and
// simulations of many ranks in one process, with faults on demand.
type InmemNetwork struct {
	mu       sync.Mutex
	nodes    []*InmemTransport
	cut      []bool
	pool     bufPool
	maxFrame int
}

// NewInmemNetwork makes a network of n ranks whose frames are at most
// maxFrame bytes (0: 8 MiB, like the tests' NATS server).
func NewInmemNetwork(n, maxFrame int) *InmemNetwork {
	if maxFrame <= 0 {
		maxFrame = 8 << 20
	}
	net := &InmemNetwork{nodes: make([]*InmemTransport, n), cut: make([]bool, n), maxFrame: maxFrame}
	net.pool.max = maxFrame
	for i := range net.nodes {
		net.nodes[i] = &InmemTransport{net: net, rank: i, inbox: newQueue(releaseItem)}
	}
	return net
}

// Transport returns rank's transport.
func (n *InmemNetwork) Transport(rank int) *InmemTransport { return n.nodes[rank] }

// Disconnect silently drops every frame to and from rank, like a frozen
// process or a partition: its peers learn of it only through silence.
func (n *InmemNetwork) Disconnect(rank int) {
	n.mu.Lock()
	n.cut[rank] = true
	n.mu.Unlock()
}

// Kill closes rank's transport and tells every other rank that its
// connection to rank broke, as the sockets of a killed process do.
func (n *InmemNetwork) Kill(rank int) {
	n.Disconnect(rank)
	n.nodes[rank].Close()
	for i, t := range n.nodes {
		if i != rank {
			t.inbox.push(recvItem{err: &PeerError{Rank: rank, Reason: "connection reset (killed)"}})
		}
	}
}

// Inject delivers raw bytes to rank as if some sender had sent them.
func (n *InmemNetwork) Inject(to int, data []byte) {
	b := n.pool.get(len(data))
	copy(b, data)
	n.nodes[to].inbox.push(recvItem{f: Frame{Data: b, release: n.pool.put}})
}

// InmemTransport is one rank's end of an InmemNetwork.
type InmemTransport struct {
	net   *InmemNetwork
	rank  int
	inbox *queue[recvItem]
}

var _ Transport = (*InmemTransport)(nil)

// recvItem is a frame or a transport event (a lost peer).
type recvItem struct {
	f   Frame
	err error
}

func releaseItem(it recvItem) { it.f.Release() }

// Send copies the frame into the receiver's inbox.
func (t *InmemTransport) Send(ctx context.Context, to int, parts ...[]byte) error {
	n := t.net
	if to < 0 || to >= len(n.nodes) {
		return fmt.Errorf("allreduce: inmem send to rank %d of %d", to, len(n.nodes))
	}
	size := totalLen(parts)
	if size > n.maxFrame {
		return fmt.Errorf("allreduce: inmem frame of %d bytes exceeds %d", size, n.maxFrame)
	}
	n.mu.Lock()
	cut := n.cut[to] || n.cut[t.rank]
	n.mu.Unlock()
	if cut {
		return nil // lost in the void, as on a partitioned network
	}
	b := n.pool.get(size)
	o := 0
	for _, p := range parts {
		o += copy(b[o:], p)
	}
	if !n.nodes[to].inbox.push(recvItem{f: Frame{Data: b, release: n.pool.put}}) {
		return &PeerError{Rank: to, Reason: "transport closed"}
	}
	return nil
}

// Recv returns the next frame or event.
func (t *InmemTransport) Recv(ctx context.Context) (Frame, error) {
	it, err := t.inbox.pop(ctx)
	if err != nil {
		return Frame{}, err
	}
	return it.f, it.err
}

// MaxFrame is the network's frame limit.
func (t *InmemTransport) MaxFrame() int { return t.net.maxFrame }

// Close drops what is queued; Recv returns ErrClosed.
func (t *InmemTransport) Close() error {
	t.inbox.close(ErrClosed)
	return nil
}
