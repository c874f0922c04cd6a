package allreduce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// AutoTransport sends to each peer directly over TCP when a probe — a dial
// and a full handshake — succeeds, and over NATS otherwise; it receives on
// both. The choice is per directed link and fixed for the generation, so the
// frames of one link keep their order, and no agreement between ranks is
// needed: a receiver accepts whatever path its sender chose.
type AutoTransport struct {
	tcp    *TCPTransport
	nats   *NATSTransport
	viaTCP []bool
	inbox  *queue[recvItem]
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ Transport = (*AutoTransport)(nil)

// NewAutoTransport probes the given peers (a Ring sends to its right
// neighbour and controls its left: pass both) for at most probeTimeout each,
// concurrently. It owns tcp and nats from now on.
func NewAutoTransport(ctx context.Context, tcp *TCPTransport, nt *NATSTransport, peers []int, probeTimeout time.Duration, log *slog.Logger) *AutoTransport {
	if log == nil {
		log = slog.Default()
	}
	a := &AutoTransport{tcp: tcp, nats: nt, viaTCP: make([]bool, len(tcp.peers)), inbox: newQueue(releaseItem)}
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
	return a
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

// relayedTo: frames to rank cross a NATS server unless its link is TCP.
func (a *AutoTransport) relayedTo(rank int) bool { return !a.ViaTCP(rank) }

// ViaTCP reports whether frames to rank go over the direct TCP link.
func (a *AutoTransport) ViaTCP(rank int) bool { return a.viaTCP[rank] }

// Send uses the link chosen by the probe.
func (a *AutoTransport) Send(ctx context.Context, to int, parts ...[]byte) error {
	if to >= 0 && to < len(a.viaTCP) && a.viaTCP[to] {
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

// MaxFrame is the smaller of the two limits: a frame may take either path.
func (a *AutoTransport) MaxFrame() int { return min(a.tcp.MaxFrame(), a.nats.MaxFrame()) }

// Close closes both transports.
func (a *AutoTransport) Close() error {
	a.cancel()
	err := errors.Join(a.tcp.Close(), a.nats.Close())
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
)

// NewTransport builds rank's transport of gen: "nats", "tcp", "shm" (every
// rank on this host, through shared memory), or "auto" (TCP to each ring
// neighbour that answers a probe, NATS to the others).
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
		return NewAutoTransport(ctx, tt, nt, []int{(rank + n - 1) % n, (rank + 1) % n}, probe, ep.Logger), nil
	}
	return nil, fmt.Errorf("%w: unknown transport %q (want nats, tcp, shm or auto)", ErrConfig, kind)
}
