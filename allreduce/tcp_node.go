package allreduce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// TCPConfig configures a TCPNode.
type TCPConfig struct {
	// Job is the job this node serves; connections for another job are refused.
	Job string
	// Token is the job's shared secret. It never crosses the network: the
	// handshake proves knowledge of it with HMAC-SHA256. Required.
	Token []byte
	// Security protects the frames after the handshake (default RingAuth: a
	// tag per frame under a key derived from Token; RingEncrypt also
	// encrypts; RingPlain neither). Every node of a job must use the same.
	Security RingSecurity
	// MaxFrame is the largest frame accepted, in bytes. Default 16 MiB.
	MaxFrame int
	// HandshakeTimeout bounds a handshake. Default 10 s.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds a frame's write once started. A frame cut in half
	// would leave the stream unusable, so a write does not stop at the
	// caller's deadline; a peer that reads nothing for this long is lost.
	// Default 30 s.
	WriteTimeout time.Duration
	// ParkTimeout is how long an authenticated connection for a generation
	// this node has not joined yet is kept waiting for Join. Default 60 s.
	ParkTimeout time.Duration
	// Logger receives refused connections (warn). Default slog.Default().
	Logger *slog.Logger
}

func (c TCPConfig) withDefaults() TCPConfig {
	if c.MaxFrame == 0 {
		c.MaxFrame = 16 << 20
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.ParkTimeout == 0 {
		c.ParkTimeout = 60 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate names the field that is wrong.
func (c TCPConfig) Validate() error {
	c = c.withDefaults()
	if err := validateJob(c.Job); err != nil {
		return err
	}
	switch {
	case len(c.Token) == 0:
		return configErr("TCPConfig.Token is empty: the TCP transport authenticates peers with the job token")
	case !c.Security.valid():
		return configErr("TCPConfig.Security %d: want RingAuth, RingEncrypt or RingPlain", c.Security)
	case c.MaxFrame < 4096:
		return configErr("TCPConfig.MaxFrame is %d, want >= 4096", c.MaxFrame)
	}
	return nil
}

// TCPNode is a worker's TCP endpoint for the direct transport: it listens
// once, for every generation of its job, and hands authenticated connections
// to the generation's TCPTransport. Its address goes into the worker's
// Member.Addr through the coordinator.
type TCPNode struct {
	cfg   TCPConfig
	ln    net.Listener
	jobID uint64
	log   *slog.Logger

	mu      sync.Mutex
	joined  map[uint64]*TCPTransport
	newest  uint64 // highest generation joined
	retired uint64 // highest generation joined and closed
	parked  map[*parkedConn]struct{}
	closed  bool
	wg      sync.WaitGroup

	rejected atomic.Uint64
	tampered atomic.Uint64
}

type parkedConn struct {
	conn  net.Conn
	h     hello
	key   []byte
	timer *time.Timer
}

// maxParked bounds the connections waiting for their generation.
const maxParked = 256

// ListenTCP listens on addr ("127.0.0.1:0", ":7070", …).
func ListenTCP(addr string, cfg TCPConfig) (*TCPNode, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("allreduce: listen %s: %w", addr, err)
	}
	n := &TCPNode{
		cfg: cfg, ln: ln, jobID: jobID(cfg.Job), log: cfg.Logger.With("job", cfg.Job),
		joined: make(map[uint64]*TCPTransport), parked: make(map[*parkedConn]struct{}),
	}
	n.wg.Add(1)
	go n.acceptLoop()
	return n, nil
}

// Addr is the listening address, for Member.Addr.
func (n *TCPNode) Addr() string { return n.ln.Addr().String() }

// Rejected counts connections refused by the handshake (wrong token, job,
// generation or rank).
func (n *TCPNode) Rejected() uint64 { return n.rejected.Load() }

// FrameAuthFailures counts inbound frames that failed their tag (altered,
// replayed, reordered or cut on the way): each closed its connection.
func (n *TCPNode) FrameAuthFailures() uint64 { return n.tampered.Load() }

// Close stops listening and closes every transport and waiting connection.
func (n *TCPNode) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	var ts []*TCPTransport
	for _, t := range n.joined {
		ts = append(ts, t)
	}
	for p := range n.parked {
		p.timer.Stop()
		p.conn.Close()
	}
	n.parked = nil
	n.mu.Unlock()
	err := n.ln.Close()
	for _, t := range ts {
		t.Close()
	}
	n.wg.Wait()
	return err
}

func (n *TCPNode) acceptLoop() {
	defer n.wg.Done()
	for {
		conn, err := n.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.serve(conn)
		}()
	}
}

// serve authenticates one inbound connection and hands it over.
func (n *TCPNode) serve(conn net.Conn) {
	h, key, err := serverHandshake(conn, n.cfg.Token, time.Now().Add(n.cfg.HandshakeTimeout), n.decide)
	if err != nil {
		n.rejected.Add(1)
		n.log.Warn("allreduce: refused TCP connection", "remote", conn.RemoteAddr().String(), "gen", h.gen, "from", h.from, "security", describeWireSecurity(h.security), "err", err)
		conn.Close()
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		conn.Close()
		return
	}
	if t := n.joined[h.gen]; t != nil {
		t.adopt(conn, int(h.from), key)
		return
	}
	if len(n.parked) >= maxParked {
		conn.Close()
		return
	}
	p := &parkedConn{conn: conn, h: h, key: key}
	p.timer = time.AfterFunc(n.cfg.ParkTimeout, func() {
		n.mu.Lock()
		_, ok := n.parked[p]
		delete(n.parked, p)
		n.mu.Unlock()
		if ok {
			conn.Close()
		}
	})
	n.parked[p] = struct{}{}
}

// decide answers a hello before the proofs are exchanged.
func (n *TCPNode) decide(h hello) (byte, uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := n.joined[h.gen]
	switch {
	case h.job != n.jobID:
		return hsWrongJob, n.newest
	case h.security != n.cfg.Security.wire():
		return hsSecurity, n.newest
	case t == nil && h.gen <= n.retired:
		return hsStale, n.newest
	case t == nil && h.gen < n.newest:
		return hsStale, n.newest
	case t != nil && int(h.to) != t.rank:
		return hsWrongTo, n.newest
	case t == nil && len(n.parked) >= maxParked:
		return hsBusy, n.newest
	}
	return hsOK, n.newest
}

// Join makes the transport of rank in gen. Connections that peers opened for
// gen before Join are adopted.
func (n *TCPNode) Join(gen Generation, rank int) (*TCPTransport, error) {
	if err := gen.Validate(rank); err != nil {
		return nil, err
	}
	if gen.Job != n.cfg.Job {
		return nil, configErr("generation of job %q on a TCP node of job %q", gen.Job, n.cfg.Job)
	}
	t := &TCPTransport{
		node: n, gen: gen, rank: rank,
		inbox: newQueue(releaseItem),
		peers: make([]*tcpPeer, gen.Size()),
	}
	t.life, t.cancel = context.WithCancel(context.Background())
	t.pool.max = n.cfg.MaxFrame
	for i := range t.peers {
		t.peers[i] = &tcpPeer{}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.closed:
		return nil, ErrClosed
	case n.joined[gen.Number] != nil:
		return nil, configErr("generation %d already joined on this TCP node", gen.Number)
	}
	n.joined[gen.Number] = t
	n.newest = max(n.newest, gen.Number)
	for p := range n.parked {
		switch {
		case p.h.gen == gen.Number && int(p.h.to) == rank:
			t.adopt(p.conn, int(p.h.from), p.key)
		case p.h.gen < n.newest:
			p.conn.Close()
		default:
			continue
		}
		p.timer.Stop()
		delete(n.parked, p)
	}
	return t, nil
}

func (n *TCPNode) leave(t *TCPTransport) {
	n.mu.Lock()
	if n.joined[t.gen.Number] == t {
		delete(n.joined, t.gen.Number)
		n.retired = max(n.retired, t.gen.Number)
	}
	n.mu.Unlock()
}
