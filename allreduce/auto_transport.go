package allreduce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// AutoTransport sends to each peer through shared memory when the peer is on
// this host (the host of its TCP address is this rank's, and its inbox
// appears in /dev/shm within the probe), else directly over TCP when a probe
// — a dial and a full handshake — succeeds, and over NATS otherwise; it
// receives on all of them. The choice is per directed link and fixed for the generation, so the
// frames of one link keep their order, and no agreement between ranks is
// needed: a receiver accepts whatever path its sender chose.
type AutoTransport struct {
	tcp    *TCPTransport
	nats   *NATSTransport
	shm    *ShmTransport // nil when no neighbour shares this host
	viaTCP []bool
	viaShm []bool
	inbox  *queue[recvItem]
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ Transport = (*AutoTransport)(nil)

// NewAutoTransport probes the given peers (a Ring sends to its right
// neighbour and controls its left: pass both) for at most probeTimeout each,
// concurrently. It owns tcp and nats from now on.
func NewAutoTransport(ctx context.Context, tcp *TCPTransport, nt *NATSTransport, peers []int, probeTimeout time.Duration, log *slog.Logger) *AutoTransport {
	return newAutoTransport(ctx, tcp, nt, nil, peers, probeTimeout, log)
}

// newAutoTransport is NewAutoTransport with shared memory toward the peers
// that share this host, when shm is not nil; it owns shm too.
func newAutoTransport(ctx context.Context, tcp *TCPTransport, nt *NATSTransport, shm *ShmTransport, peers []int, probeTimeout time.Duration, log *slog.Logger) *AutoTransport {
	if log == nil {
		log = slog.Default()
	}
	a := &AutoTransport{tcp: tcp, nats: nt, shm: shm, viaTCP: make([]bool, len(tcp.peers)), viaShm: make([]bool, len(tcp.peers)), inbox: newQueue(releaseItem)}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, p := range peers {
		if p == tcp.rank || p < 0 || p >= len(a.viaTCP) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			if shm != nil && sameHost(tcp.gen.Members[tcp.rank], tcp.gen.Members[p]) {
				err := shm.Connect(pctx, p)
				mu.Lock()
				a.viaShm[p] = err == nil
				mu.Unlock()
				if err == nil {
					log.Debug("allreduce: shared-memory link", "rank", tcp.rank, "to", p)
					return
				}
				log.Info("allreduce: shared-memory probe failed, trying TCP", "rank", tcp.rank, "to", p, "err", err)
				pctx, cancel = context.WithTimeout(ctx, probeTimeout)
				defer cancel()
			}
			err := tcp.Connect(pctx, p)
			mu.Lock()
			a.viaTCP[p] = err == nil
			mu.Unlock()
			if err != nil {
				log.Info("allreduce: TCP probe failed, using NATS", "rank", tcp.rank, "to", p, "err", err)
			} else {
				log.Debug("allreduce: direct TCP link", "rank", tcp.rank, "to", p, "addr", tcp.gen.Members[p].Addr)
			}
		}()
	}
	wg.Wait()
	life, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	for _, t := range []Transport{tcp, nt} {
		a.wg.Add(1)
		go a.pump(life, t)
	}
	if shm != nil {
		a.wg.Add(1)
		go a.pump(life, shm)
	}
	return a
}

// sameHost says whether two members run on one host, as far as their TCP
// addresses tell: the same host part, which must name a host (not empty,
// not 0.0.0.0 or ::). The shared-memory probe then checks that they share
// /dev/shm too.
func sameHost(a, b Member) bool {
	ha, _, errA := net.SplitHostPort(a.Addr)
	hb, _, errB := net.SplitHostPort(b.Addr)
	if errA != nil || errB != nil || ha == "" || ha != hb {
		return false
	}
	ip := net.ParseIP(ha)
	return ip == nil || !ip.IsUnspecified()
}

// pump moves one underlying transport's frames and events into the inbox.
func (a *AutoTransport) pump(ctx context.Context, t Transport) {
	defer a.wg.Done()
	for {
		f, err := t.Recv(ctx)
		var pe *PeerError
		switch {
		case err == nil:
			a.inbox.push(recvItem{f: f})
		case errors.As(err, &pe):
			a.inbox.push(recvItem{err: err})
		default:
			if ctx.Err() == nil {
				a.inbox.push(recvItem{err: err})
			}
			return
		}
	}
}

// ViaTCP reports whether frames to rank go over the direct TCP link.
func (a *AutoTransport) ViaTCP(rank int) bool { return a.viaTCP[rank] }

// ViaShm reports whether frames to rank go through shared memory.
func (a *AutoTransport) ViaShm(rank int) bool { return a.viaShm[rank] }

// relayedTo: frames to rank cross a NATS server unless its link is direct.
func (a *AutoTransport) relayedTo(rank int) bool { return !a.ViaTCP(rank) && !a.ViaShm(rank) }

// Send uses the link chosen by the probe.
func (a *AutoTransport) Send(ctx context.Context, to int, parts ...[]byte) error {
	switch {
	case to >= 0 && to < len(a.viaShm) && a.viaShm[to]:
		return a.shm.Send(ctx, to, parts...)
	case to >= 0 && to < len(a.viaTCP) && a.viaTCP[to]:
		return a.tcp.Send(ctx, to, parts...)
	}
	return a.nats.Send(ctx, to, parts...)
}

// Recv returns the next frame from either transport.
func (a *AutoTransport) Recv(ctx context.Context) (Frame, error) {
	it, err := a.inbox.pop(ctx)
	if err != nil {
		return Frame{}, err
	}
	return it.f, it.err
}

// MaxFrame is the smallest of the limits: a frame may take any path.
func (a *AutoTransport) MaxFrame() int {
	m := min(a.tcp.MaxFrame(), a.nats.MaxFrame())
	if a.shm != nil {
		m = min(m, a.shm.MaxFrame())
	}
	return m
}

// Close closes every transport.
func (a *AutoTransport) Close() error {
	a.cancel()
	err := errors.Join(a.tcp.Close(), a.nats.Close())
	if a.shm != nil {
		err = errors.Join(err, a.shm.Close())
	}
	a.inbox.close(ErrClosed)
	a.wg.Wait()
	return err
}

// Endpoints are what a worker has for building a generation's transport.
type Endpoints struct {
	NATS *nats.Conn // the worker's NATS connection (nats, auto)
	// NATSControl, when set, carries the control frames (see
	// WithControlConn); a second connection to the same server or cluster.
	NATSControl *nats.Conn
	TCP         *TCPNode // the worker's TCP listener (tcp, auto)
	// Shm configures the shared-memory inboxes (shm; auto, toward
	// neighbours on the same host). The zero value is /dev/shm with the
	// defaults.
	Shm ShmConfig
	// ProbeTimeout bounds the auto transport's TCP probe of each
	// neighbour. Default 3 s.
	ProbeTimeout time.Duration
	Logger       *slog.Logger
}

// Transport kinds for NewTransport.
const (
	KindNATS = "nats"
	KindTCP  = "tcp"
	KindAuto = "auto"
	KindShm  = "shm"
	// KindHier is not a transport but the hierarchical all-reduce
	// (NewHierRing), chosen by the same name where a worker picks its ring.
	KindHier = "hier"
)

// NewTransport builds rank's transport of gen: "nats", "tcp", "shm" (every
// rank on this host, through shared memory), or "auto" (shared memory to
// each ring neighbour on this host, TCP to each other one that answers a
// probe, NATS to the rest).
func NewTransport(ctx context.Context, kind string, gen Generation, rank int, ep Endpoints) (Transport, error) {
	if err := gen.Validate(rank); err != nil {
		return nil, err
	}
	switch kind {
	case KindNATS:
		if ep.NATS == nil {
			return nil, configErr("the nats transport needs Endpoints.NATS")
		}
		return NewNATSTransport(ep.NATS, gen, rank, WithControlConn(ep.NATSControl))
	case KindTCP:
		if ep.TCP == nil {
			return nil, configErr("the tcp transport needs Endpoints.TCP")
		}
		return ep.TCP.Join(gen, rank)
	case KindShm:
		return NewShmTransport(gen, rank, ep.Shm)
	case KindAuto:
		if ep.NATS == nil || ep.TCP == nil {
			return nil, configErr("the auto transport needs Endpoints.NATS and Endpoints.TCP")
		}
		nt, err := NewNATSTransport(ep.NATS, gen, rank, WithControlConn(ep.NATSControl))
		if err != nil {
			return nil, err
		}
		tt, err := ep.TCP.Join(gen, rank)
		if err != nil {
			nt.Close()
			return nil, err
		}
		probe := ep.ProbeTimeout
		if probe == 0 {
			probe = 3 * time.Second
		}
		n := gen.Size()
		neighbours := []int{(rank + n - 1) % n, (rank + 1) % n}
		var shm *ShmTransport
		for _, p := range neighbours {
			if p != rank && shm == nil && sameHost(gen.Members[rank], gen.Members[p]) {
				if shm, err = newShmTransport(gen, rank, ep.Shm, false); err != nil {
					log := ep.Logger
					if log == nil {
						log = slog.Default()
					}
					log.Info("allreduce: no shared memory for same-host neighbours, using TCP", "rank", rank, "err", err)
					shm = nil
					break
				}
			}
		}
		return newAutoTransport(ctx, tt, nt, shm, neighbours, probe, ep.Logger), nil
	case KindHier:
		return nil, configErr("%q is a ring of rings, not one transport: build it with NewHierRing", kind)
	}
	return nil, fmt.Errorf("%w: unknown transport %q (want nats, tcp, shm or auto)", ErrConfig, kind)
}
