package worker

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"

	"github.com/e2evlp/vlp/allreduce"
	"github.com/e2evlp/vlp/coordinator"
	"github.com/nats-io/nats.go"
)

// Collective is one rank's member of one generation's ring. It is
// implemented by *allreduce.Ring: collectives run in the order started, the
// first error finishes the ring, and Close tells the neighbours this rank
// left.
type Collective interface {
	StartAllReduce(ctx context.Context, buf []float32, meta []byte) *allreduce.Op
	AllGather(ctx context.Context, meta []byte) ([][]byte, error)
	Broadcast(ctx context.Context, root int, data []byte) ([]byte, error)
	Close() error
}

var (
	_ Collective = (*allreduce.Ring)(nil)
	_ Collective = (*allreduce.HierRing)(nil)
)

// RingMaker builds this worker's member of a generation's ring.
type RingMaker interface {
	MakeRing(ctx context.Context, job string, gen coordinator.GenerationInfo, rank int) (Collective, error)
}

// RingGeneration converts a coordinator generation into the all-reduce's. A
// member that joined with its own nkey receives NATS ring frames under its
// own subjects (coordinator.Subjects.WorkerRing), the only ring subjects its
// credential may subscribe to.
func RingGeneration(job string, gen coordinator.GenerationInfo) allreduce.Generation {
	g := allreduce.Generation{Job: job, Number: gen.Number}
	sub := coordinator.Subjects{Job: job}
	for _, m := range gen.Members {
		g.Members = append(g.Members, allreduce.Member{ID: strconv.FormatUint(m.WorkerID, 10), Addr: m.Addr, Server: m.Server, Subject: sub.WorkerRing(m.Identity)})
	}
	return g
}

// TransportRings builds rings over allreduce.NewTransport: "nats" through
// the worker's NATS connection, "tcp" between ring neighbours directly,
// "shm" (every worker on this host), or "auto" (shared memory to a
// neighbour on this host, TCP where a neighbour answers, NATS otherwise);
// or "hier", the hierarchical all-reduce (allreduce.NewHierRing: shared
// memory within each host, the host leaders' ring between hosts).
type TransportRings struct {
	Kind      string
	Endpoints allreduce.Endpoints
	Config    allreduce.Config
}

var _ RingMaker = (*TransportRings)(nil)

// MakeRing implements RingMaker.
func (t *TransportRings) MakeRing(ctx context.Context, job string, gen coordinator.GenerationInfo, rank int) (Collective, error) {
	g := RingGeneration(job, gen)
	if t.Kind == allreduce.KindHier {
		h, err := allreduce.NewHierRing(ctx, g, rank, t.Endpoints, t.Config)
		if err != nil {
			return nil, fmt.Errorf("worker: hierarchical ring of generation %d: %w", gen.Number, err)
		}
		return h, nil
	}
	tr, err := allreduce.NewTransport(ctx, t.Kind, g, rank, t.Endpoints)
	if err != nil {
		return nil, fmt.Errorf("worker: ring transport of generation %d: %w", gen.Number, err)
	}
	r, err := allreduce.NewRing(g, rank, tr, t.Config)
	if err != nil {
		tr.Close()
		return nil, fmt.Errorf("worker: ring of generation %d: %w", gen.Number, err)
	}
	return r, nil
}

// NATSRings is the common case: a ring relayed by the job's NATS servers.
func NATSRings(nc *nats.Conn, cfg allreduce.Config, log *slog.Logger) *TransportRings {
	return &TransportRings{Kind: allreduce.KindNATS, Endpoints: allreduce.Endpoints{NATS: nc, Logger: log}, Config: cfg}
}

// InmemRings builds rings over in-memory transports: every worker of one
// process that shares an InmemRings shares one network per generation.
type InmemRings struct {
	Config allreduce.Config
	mu     sync.Mutex
	nets   map[uint64]*allreduce.InmemNetwork
}

var _ RingMaker = (*InmemRings)(nil)

// MakeRing implements RingMaker.
func (m *InmemRings) MakeRing(_ context.Context, job string, gen coordinator.GenerationInfo, rank int) (Collective, error) {
	m.mu.Lock()
	if m.nets == nil {
		m.nets = make(map[uint64]*allreduce.InmemNetwork)
	}
	n, ok := m.nets[gen.Number]
	if !ok {
		n = allreduce.NewInmemNetwork(len(gen.Members), 0)
		m.nets[gen.Number] = n
	}
	m.mu.Unlock()
	return allreduce.NewRing(RingGeneration(job, gen), rank, n.Transport(rank), m.Config)
}
