package allreduce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// checkLost fails unless every error is a lost peer naming rank `dead`
// (dead < 0: any rank).
func checkLost(t *testing.T, errs []error, skip, dead int) {
	t.Helper()
	for rank, err := range errs {
		if rank == skip {
			continue
		}
		var pe *PeerError
		if !errors.As(err, &pe) || !errors.Is(err, ErrPeerLost) {
			t.Fatalf("rank %d: got %v, want a lost peer", rank, err)
		}
		if dead >= 0 && pe.Rank != dead {
			t.Fatalf("rank %d: lost rank %d, want %d (%v)", rank, pe.Rank, dead, err)
		}
	}
}

// reduceAndCheck runs one all-reduce on every ring and compares with the
// serial sum.
func reduceAndCheck(t *testing.T, rings []*Ring, L int, seed uint64) {
	t.Helper()
	inputs := randomInputs(seed, len(rings), L)
	bufs := clone2(inputs)
	ctx := ctxTimeout(t, 30*time.Second)
	errs := onAll(rings, func(rank int, r *Ring) error {
		_, err := r.AllReduce(ctx, bufs[rank], nil)
		return err
	})
	want := serialSum(inputs, rings[0].cfg.Wire)
	for rank := range rings {
		if errs[rank] != nil {
			t.Fatalf("rank %d: %v", rank, errs[rank])
		}
		checkBits(t, fmt.Sprintf("rank %d", rank), bufs[rank], want)
	}
}

// without returns gen's next generation without rank dead.
func without(gen Generation, dead int) Generation {
	next := Generation{Job: gen.Job, Number: gen.Number + 1}
	for i, m := range gen.Members {
		if i != dead {
			next.Members = append(next.Members, m)
		}
	}
	return next
}

// A rank's process is SIGKILLed in the middle of an all-reduce: every
// survivor returns the lost peer within the deadline, and the next
// generation, without it, works.
func TestKilledRankProcess(t *testing.T) {
	s := runNATSServer(t)
	for _, kind := range []string{KindNATS, KindTCP} {
		t.Run(kind, func(t *testing.T) {
			const n, dead, L = 4, 1, 20000
			gen := testGeneration("jobk", 10, n)
			var nodes []*TCPNode
			if kind == KindTCP {
				gen, nodes = tcpNodes(t, gen, testToken)
			}
			c := startChild(t, childSpec{Kind: kind, NATSURL: s.ClientURL(), Rank: dead, Length: L, Token: testToken, Job: gen.Job})
			if kind == KindTCP {
				gen.Members[dead].Addr = c.Addr
			}
			c.sendGeneration(t, gen)
			rings := make([]*Ring, n)
			for i := range n {
				if i == dead {
					continue
				}
				ep := Endpoints{}
				if kind == KindTCP {
					ep.TCP = nodes[i]
				} else {
					ep.NATS = natsConnect(t, s.ClientURL())
				}
				tr, err := NewTransport(context.Background(), kind, gen, i, ep)
				if err != nil {
					t.Fatal(err)
				}
				if rings[i], err = NewRing(gen, i, tr, testConfig(t)); err != nil {
					t.Fatal(err)
				}
			}
			const deadline = 20 * time.Second
			ctx := ctxTimeout(t, deadline)
			var killedAt time.Time
			done := make(chan []error)
			go func() {
				done <- onAll(rings, func(rank int, r *Ring) error {
					_, err := r.AllReduce(ctx, make([]float32, L), nil)
					return err
				})
			}()
			c.expect(t, "mid")
			killedAt = time.Now()
			c.cmd.Process.Kill() // SIGKILL
			errs := <-done
			took := time.Since(killedAt)
			t.Logf("survivors failed %v after the kill", took)
			checkLost(t, errs, dead, dead)
			if took > deadline/2 {
				t.Fatalf("survivors took %v to notice", took)
			}
			closeAll(rings)

			next := without(gen, dead)
			var ts []Transport
			if kind == KindTCP {
				_, ts = tcpTransports(t, next, []*TCPNode{nodes[0], nodes[2], nodes[3]})
			} else {
				ts = natsTransports(t, s, next)
			}
			reduceAndCheck(t, newRings(t, next, ts, testConfig(t)), 1000, 1)
		})
	}
}

// The connection from rank 0 to rank 1 is cut mid-reduce (a proxy in
// between closes it): everyone fails with a lost peer; the next generation
// over direct connections works.
func TestCutConnection(t *testing.T) {
	const n, L = 4, 20000
	gen, nodes := tcpNodes(t, testGeneration("jobc", 1, n), testToken)
	p := newProxy(t, nodes[1].Addr())
	cutGen := gen
	cutGen.Members = append([]Member(nil), gen.Members...)
	cutGen.Members[1].Addr = p.Addr()
	_, ts := tcpTransports(t, cutGen, nodes)
	rings := newRings(t, cutGen, ts, testConfig(t))
	started, cut := make(chan struct{}), make(chan struct{})
	var once sync.Once
	rings[2].hook = func(kind, uint32) {
		once.Do(func() { close(started); <-cut })
	}
	done := make(chan []error)
	go func() {
		ctx := ctxTimeout(t, 20*time.Second)
		done <- onAll(rings, func(rank int, r *Ring) error {
			_, err := r.AllReduce(ctx, make([]float32, L), nil)
			return err
		})
	}()
	<-started
	p.cut()
	close(cut)
	checkLost(t, <-done, -1, -1)
	closeAll(rings)

	next := gen
	next.Number++
	_, ts = tcpTransports(t, next, nodes)
	reduceAndCheck(t, newRings(t, next, ts, testConfig(t)), 1000, 2)
}

// proxy forwards TCP connections to a target until cut.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	// up copies the dialer's side to the target (default io.Copy); a
	// tampering relay alters it.
	up func(dst, src net.Conn)
}

func newProxy(t *testing.T, target string) *proxy {
	return startProxy(t, &proxy{target: target})
}

// startProxy listens on loopback and forwards every connection to p.target.
func startProxy(t *testing.T, p *proxy) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.ln = ln
	up := p.up
	if up == nil {
		up = func(dst, src net.Conn) { io.Copy(dst, src) }
	}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { up(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// In memory: a rank that goes silent (frozen, partitioned) is found by the
// heartbeats; a killed one at once.
func TestInmemLostPeer(t *testing.T) {
	for _, mode := range []string{"silent", "killed"} {
		t.Run(mode, func(t *testing.T) {
			const n, dead, L = 4, 1, 20000
			gen := testGeneration("jobi", 1, n)
			net := NewInmemNetwork(n, 0)
			ts := make([]Transport, n)
			for i := range ts {
				ts[i] = net.Transport(i)
			}
			cfg := testConfig(t)
			rings := newRings(t, gen, ts, cfg)
			var at time.Time
			var once sync.Once
			rings[0].hook = func(kind, uint32) {
				once.Do(func() {
					at = time.Now()
					if mode == "silent" {
						net.Disconnect(dead)
					} else {
						net.Kill(dead)
					}
				})
			}
			ctx := ctxTimeout(t, 20*time.Second)
			errs := onAll(rings, func(rank int, r *Ring) error {
				_, err := r.AllReduce(ctx, make([]float32, L), nil)
				return err
			})
			took := time.Since(at)
			checkLost(t, errs, dead, dead)
			if limit := cfg.PeerTimeout + 5*time.Second; took > limit {
				t.Fatalf("took %v to notice, want < %v", took, limit)
			}
			t.Logf("survivors failed %v after the fault", took)
		})
	}
}

// A rank that leaves with Close after an op does not break that op for the
// others, and the next op fails at once with the lost peer.
func TestGracefulLeave(t *testing.T) {
	s := runNATSServer(t)
	for name, mk := range map[string]func(gen Generation) (Generation, []Transport){
		"tcp":  func(gen Generation) (Generation, []Transport) { return tcpTransports(t, gen, nil) },
		"nats": func(gen Generation) (Generation, []Transport) { return gen, natsTransports(t, s, gen) },
	} {
		t.Run(name, func(t *testing.T) {
			gen, ts := mk(testGeneration("jobg", 1, 3))
			rings := newRings(t, gen, ts, testConfig(t))
			ctx := ctxTimeout(t, 20*time.Second)
			inputs := randomInputs(9, 3, 5000)
			bufs := clone2(inputs)
			errs := onAll(rings, func(rank int, r *Ring) error {
				_, err := r.AllReduce(ctx, bufs[rank], nil)
				if rank == 2 {
					r.Close()
				}
				return err
			})
			want := serialSum(inputs, Float32)
			for rank := range 3 {
				if errs[rank] != nil {
					t.Fatalf("rank %d: %v", rank, errs[rank])
				}
				checkBits(t, "op 1", bufs[rank], want)
			}
			start := time.Now()
			errs = onAll(rings[:2], func(rank int, r *Ring) error {
				_, err := r.AllReduce(ctx, make([]float32, 100), nil)
				return err
			})
			checkLost(t, errs, -1, 2)
			if !strings.Contains(errs[0].Error(), "left") && !strings.Contains(errs[1].Error(), "left") {
				t.Fatalf("want a rank to say the peer left: %v / %v", errs[0], errs[1])
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("took %v", took)
			}
		})
	}
}

// A rank that never calls: the others get their deadline, and the ring is
// over for the late one too.
func TestDeadline(t *testing.T) {
	gen := testGeneration("jobd", 1, 3)
	rings := newRings(t, gen, inmemTransports(3, 0), testConfig(t))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	errs := onAll(rings[:2], func(rank int, r *Ring) error {
		_, err := r.AllReduce(ctx, make([]float32, 1000), nil)
		return err
	})
	for rank, err := range errs {
		if !errors.Is(err, ErrDeadline) && !errors.Is(err, ErrAborted) {
			t.Fatalf("rank %d: %v, want a deadline", rank, err)
		}
	}
	if !errors.Is(errs[0], ErrDeadline) && !errors.Is(errs[1], ErrDeadline) {
		t.Fatalf("no rank reports its deadline: %v / %v", errs[0], errs[1])
	}
	_, err := rings[2].AllReduce(ctxTimeout(t, 5*time.Second), make([]float32, 1000), nil)
	if !errors.Is(err, ErrAborted) && !errors.Is(err, ErrDeadline) {
		t.Fatalf("late rank: %v, want aborted", err)
	}
}

// Ranks that disagree on the length or on the collective get ErrMismatch.
func TestMismatch(t *testing.T) {
	t.Run("length", func(t *testing.T) {
		rings := newRings(t, testGeneration("jobm", 1, 3), inmemTransports(3, 0), testConfig(t))
		ctx := ctxTimeout(t, 20*time.Second)
		errs := onAll(rings, func(rank int, r *Ring) error {
			_, err := r.AllReduce(ctx, make([]float32, 100+rank), nil)
			return err
		})
		for rank, err := range errs {
			if !errors.Is(err, ErrMismatch) {
				t.Fatalf("rank %d: %v", rank, err)
			}
		}
	})
	t.Run("collective", func(t *testing.T) {
		rings := newRings(t, testGeneration("jobm", 1, 3), inmemTransports(3, 0), testConfig(t))
		ctx := ctxTimeout(t, 20*time.Second)
		errs := onAll(rings, func(rank int, r *Ring) error {
			if rank == 1 {
				_, err := r.Broadcast(ctx, 1, make([]byte, 10))
				return err
			}
			_, err := r.AllReduce(ctx, make([]float32, 10), nil)
			return err
		})
		for rank, err := range errs {
			if !errors.Is(err, ErrMismatch) {
				t.Fatalf("rank %d: %v", rank, err)
			}
		}
	})
}

// dropAcks loses every acknowledgement frame it is asked to send.
type dropAcks struct{ Transport }

func (d dropAcks) Send(ctx context.Context, to int, parts ...[]byte) error {
	if len(parts[0]) > 5 && kind(parts[0][5]) == kindAck {
		return nil
	}
	return d.Transport.Send(ctx, to, parts...)
}

// With every acknowledgement lost, the counts that heartbeats repeat still
// reopen the window: slower, never stuck.
func TestLostAcknowledgements(t *testing.T) {
	ts := inmemTransports(3, 0)
	for i := range ts {
		ts[i] = dropAcks{ts[i]}
	}
	reduceAndCheck(t, newRings(t, testGeneration("jobak", 1, 3), ts, testConfig(t)), 3000, 5)
}
