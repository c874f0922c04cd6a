package allreduce

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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
}

type parkedConn struct {
	conn  net.Conn
	h     hello
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
	h, err := serverHandshake(conn, n.cfg.Token, time.Now().Add(n.cfg.HandshakeTimeout), n.decide)
	if err != nil {
		n.rejected.Add(1)
		n.log.Warn("allreduce: refused TCP connection", "remote", conn.RemoteAddr().String(), "gen", h.gen, "from", h.from, "err", err)
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
		t.adopt(conn, int(h.from))
		return
	}
	if len(n.parked) >= maxParked {
		conn.Close()
		return
	}
	p := &parkedConn{conn: conn, h: h}
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
			t.adopt(p.conn, int(p.h.from))
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

// TCPTransport is one rank's direct TCP transport for one generation: it
// dials a peer the first time it sends to it (one connection per ordered pair
// of ranks, dialer → listener) and reads the connections its peers dialled.
// A closed or reset connection is reported by Recv as a *PeerError at once:
// a killed process is noticed without waiting for heartbeats.
type TCPTransport struct {
	node  *TCPNode
	gen   Generation
	rank  int
	inbox *queue[recvItem]
	peers []*tcpPeer
	pool  bufPool

	mu     sync.Mutex
	conns  []net.Conn // inbound and outbound, closed by Close
	life   context.Context
	cancel context.CancelFunc
	closed bool
	wg     sync.WaitGroup
}

var _ Transport = (*TCPTransport)(nil)

// tcpPeer is the outbound connection to one peer.
type tcpPeer struct {
	mu     sync.Mutex
	conn   net.Conn
	broken error
	lenBuf [4]byte
}

// adopt starts reading an authenticated inbound connection. Called with the
// node's lock held.
func (t *TCPTransport) adopt(conn net.Conn, from int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || from < 0 || from >= len(t.peers) {
		conn.Close()
		return
	}
	t.conns = append(t.conns, conn)
	t.wg.Add(1)
	go t.readLoop(conn, from)
}

// readLoop reads length-prefixed frames from one peer into pooled buffers.
func (t *TCPTransport) readLoop(conn net.Conn, from int) {
	defer t.wg.Done()
	br := bufio.NewReaderSize(conn, 64<<10)
	var lb [4]byte
	err := func() error {
		for {
			if _, err := io.ReadFull(br, lb[:]); err != nil {
				return err
			}
			n := int(binary.LittleEndian.Uint32(lb[:]))
			if n > t.node.cfg.MaxFrame || n < headerSize {
				return fmt.Errorf("frame of %d bytes outside [%d, %d]", n, headerSize, t.node.cfg.MaxFrame)
			}
			b := t.pool.get(n)
			if _, err := io.ReadFull(br, b); err != nil {
				t.pool.put(b)
				return err
			}
			// The handshake authenticated the sender's rank: a frame that
			// claims another is dropped here.
			if int(binary.LittleEndian.Uint32(b[32:])) != from {
				t.pool.put(b)
				continue
			}
			t.inbox.push(recvItem{f: Frame{Data: b, release: t.pool.put}})
		}
	}()
	conn.Close()
	if !t.isClosed() {
		t.inbox.push(recvItem{err: &PeerError{Rank: from, Member: t.gen.member(from), Reason: "inbound connection closed", Err: err}})
	}
}

func (t *TCPTransport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// Connect dials `to` now (the auto transport's probe); Send dials lazily.
func (t *TCPTransport) Connect(ctx context.Context, to int) error {
	p := t.peers[to]
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := t.connLocked(ctx, p, to)
	return err
}

func (t *TCPTransport) connLocked(ctx context.Context, p *tcpPeer, to int) (net.Conn, error) {
	if p.broken != nil {
		return nil, p.broken
	}
	if p.conn != nil {
		return p.conn, nil
	}
	if t.isClosed() {
		return nil, ErrClosed
	}
	conn, err := t.dial(ctx, to)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		conn.Close()
		return nil, ErrClosed
	}
	t.conns = append(t.conns, conn)
	p.conn = conn
	t.wg.Add(1)
	go t.watch(conn, p, to)
	return conn, nil
}

// watch reads the outbound connection, which carries nothing back: the read
// ends when the peer closes or dies, and the loss is reported at once.
func (t *TCPTransport) watch(conn net.Conn, p *tcpPeer, to int) {
	defer t.wg.Done()
	_, err := io.Copy(io.Discard, conn)
	if err == nil {
		err = io.EOF
	}
	p.mu.Lock()
	if p.broken == nil {
		p.broken = &PeerError{Rank: to, Member: t.gen.member(to), Reason: "outbound connection closed", Err: err}
	}
	p.mu.Unlock()
	conn.Close()
	if !t.isClosed() {
		t.inbox.push(recvItem{err: p.broken})
	}
}

// dial connects and authenticates, retrying refused connections with backoff
// until ctx is done (the peer may not listen yet).
func (t *TCPTransport) dial(ctx context.Context, to int) (net.Conn, error) {
	addr := t.gen.Members[to].Addr
	if addr == "" {
		return nil, configErr("rank %d (%s) has no TCP address", to, t.gen.member(to))
	}
	h := hello{job: t.node.jobID, gen: t.gen.Number, from: uint32(t.rank), to: uint32(to)}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(t.life, cancel) // Close aborts a dial
	defer stop()
	var d net.Dialer
	backoff := 10 * time.Millisecond
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			deadline := time.Now().Add(t.node.cfg.HandshakeTimeout)
			if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
				deadline = dl
			}
			if err = clientHandshake(conn, t.node.cfg.Token, h, deadline); err == nil {
				return conn, nil
			}
			conn.Close()
			if errors.Is(err, ErrAuth) || errors.Is(err, ErrStale) || errors.Is(err, ErrConfig) {
				return nil, fmt.Errorf("allreduce: connect to rank %d at %s: %w", to, addr, err)
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("allreduce: connect to rank %d at %s: %w (last: %v)", to, addr, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// Send writes the frame with one writev; the parts are not copied. ctx
// bounds the wait for the connection; a frame once started is written whole
// (see TCPConfig.WriteTimeout).
func (t *TCPTransport) Send(ctx context.Context, to int, parts ...[]byte) error {
	if to < 0 || to >= len(t.peers) {
		return fmt.Errorf("allreduce: tcp send to rank %d of %d", to, len(t.peers))
	}
	size := totalLen(parts)
	if size > t.node.cfg.MaxFrame {
		return fmt.Errorf("allreduce: frame of %d bytes exceeds TCPConfig.MaxFrame %d", size, t.node.cfg.MaxFrame)
	}
	p := t.peers[to]
	p.mu.Lock()
	defer p.mu.Unlock()
	conn, err := t.connLocked(ctx, p, to)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err // not started: the stream stays whole
	}
	conn.SetWriteDeadline(time.Now().Add(t.node.cfg.WriteTimeout))
	binary.LittleEndian.PutUint32(p.lenBuf[:], uint32(size))
	bufs := make(net.Buffers, 0, len(parts)+1)
	bufs = append(bufs, p.lenBuf[:])
	for _, b := range parts {
		if len(b) > 0 {
			bufs = append(bufs, b)
		}
	}
	if _, err := bufs.WriteTo(conn); err != nil {
		// A partial frame leaves the stream unusable.
		conn.Close()
		if t.isClosed() {
			p.broken = ErrClosed
		} else {
			p.broken = &PeerError{Rank: to, Member: t.gen.member(to), Reason: "write failed", Err: err}
		}
		return p.broken
	}
	return nil
}

// Recv returns the next frame from any peer, or a lost peer.
func (t *TCPTransport) Recv(ctx context.Context) (Frame, error) {
	it, err := t.inbox.pop(ctx)
	if err != nil {
		return Frame{}, err
	}
	return it.f, it.err
}

// MaxFrame is TCPConfig.MaxFrame.
func (t *TCPTransport) MaxFrame() int { return t.node.cfg.MaxFrame }

// Close closes every connection of this generation and leaves the node.
func (t *TCPTransport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	conns := t.conns
	t.mu.Unlock()
	t.cancel()
	t.node.leave(t)
	// Closing the sockets (not under the peers' locks) fails a write that
	// waits on a peer that stopped reading.
	for _, c := range conns {
		c.Close()
	}
	t.inbox.close(ErrClosed)
	t.wg.Wait()
	return nil
}
