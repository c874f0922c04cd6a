package allreduce

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

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
	seal   *frameCipher // nil with RingPlain
	broken error
	lenBuf [4]byte
}

// adopt starts reading an authenticated inbound connection whose frames are
// protected under key. Called with the node's lock held.
func (t *TCPTransport) adopt(conn net.Conn, from int, key []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	open, err := newFrameCipher(t.node.cfg.Security, key)
	if t.closed || from < 0 || from >= len(t.peers) || err != nil {
		conn.Close()
		return
	}
	t.conns = append(t.conns, conn)
	t.wg.Add(1)
	go t.readLoop(conn, from, open)
}

// readLoop reads length-prefixed frames from one peer into pooled buffers,
// checking their tags unless open is nil (RingPlain). A frame that fails a
// tag ends the connection: the peer is reported lost.
func (t *TCPTransport) readLoop(conn net.Conn, from int, open *frameCipher) {
	defer t.wg.Done()
	br := bufio.NewReaderSize(conn, 64<<10)
	var lb [4]byte
	reason := "inbound connection closed"
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
			var err error
			if open != nil {
				err = open.read(br, b)
			} else {
				_, err = io.ReadFull(br, b)
			}
			if err != nil {
				t.pool.put(b)
				if errors.Is(err, ErrFrameAuth) {
					t.node.tampered.Add(1)
					t.node.log.Warn("allreduce: TCP frame failed authentication: dropping the peer", "gen", t.gen.Number, "from", from, "remote", conn.RemoteAddr().String(), "err", err)
					reason = "frame failed authentication"
				}
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
		t.inbox.push(recvItem{err: &PeerError{Rank: from, Member: t.gen.member(from), Reason: reason, Err: err}})
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
	conn, key, err := t.dial(ctx, to)
	if err != nil {
		return nil, err
	}
	if p.seal, err = newFrameCipher(t.node.cfg.Security, key); err != nil {
		conn.Close()
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

// minHandshake is the least time a dial gives its handshake, whatever the send's deadline.
const minHandshake = 2 * time.Second

// dial connects and authenticates, retrying refused connections with backoff
// until ctx is done (the peer may not listen yet).
func (t *TCPTransport) dial(ctx context.Context, to int) (net.Conn, []byte, error) {
	addr := t.gen.Members[to].Addr
	if addr == "" {
		return nil, nil, configErr("rank %d (%s) has no TCP address", to, t.gen.member(to))
	}
	h := hello{job: t.node.jobID, gen: t.gen.Number, from: uint32(t.rank), to: uint32(to), security: t.node.cfg.Security.wire()}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(t.life, cancel) // Close aborts a dial
	defer stop()
	var d net.Dialer
	backoff := 10 * time.Millisecond
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			// A short send (a heartbeat: HeartbeatInterval) does not cut the handshake below
			// minHandshake: the listener may already have taken the connection, and one dropped
			// half-way reads there as a lost peer.
			deadline := time.Now().Add(t.node.cfg.HandshakeTimeout)
			if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
				deadline = dl
				if floor := time.Now().Add(min(t.node.cfg.HandshakeTimeout, minHandshake)); floor.After(dl) {
					deadline = floor
				}
			}
			var key []byte
			if key, err = clientHandshake(conn, t.node.cfg.Token, h, deadline); err == nil {
				return conn, key, nil
			}
			conn.Close()
			if errors.Is(err, ErrAuth) || errors.Is(err, ErrStale) || errors.Is(err, ErrConfig) {
				return nil, nil, fmt.Errorf("allreduce: connect to rank %d at %s: %w", to, addr, err)
			}
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("allreduce: connect to rank %d at %s: %w (last: %v)", to, addr, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// Send writes the frame with one writev of the parts, not copied (with
// RingAuth its tags follow in the same writev; RingEncrypt encrypts it into
// the peer's buffer first: tcp_frames.go). ctx bounds the wait for the
// connection; a frame once started is written whole (see
// TCPConfig.WriteTimeout).
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
	if p.seal != nil {
		err = p.seal.write(conn, parts)
	} else {
		binary.LittleEndian.PutUint32(p.lenBuf[:], uint32(size))
		bufs := make(net.Buffers, 0, len(parts)+1)
		bufs = append(bufs, p.lenBuf[:])
		for _, b := range parts {
			if len(b) > 0 {
				bufs = append(bufs, b)
			}
		}
		_, err = bufs.WriteTo(conn)
	}
	if err != nil {
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
