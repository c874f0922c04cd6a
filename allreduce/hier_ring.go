package allreduce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// HierRing is the hierarchical all-reduce of one rank of one generation, for
// rings that span several hosts with several ranks each: the ranks of a host
// sum through shared memory (a Ring over a ShmTransport with its arena),
// each host's leader — its first member in ring order — all-reduces the
// host sums with the other leaders (a Ring over TCP, NATS or both: the
// leaders' ring), and each leader broadcasts the result back through shared
// memory. Only the leaders' ring crosses hosts, and it carries each byte
// 2(H−1)/H times for H hosts instead of the flat ring's 2(N−1)/N·(its share
// of the crossing links).
//
// It keeps the Ring's contract. Determinism: a host's sum is added in its
// members' ring order (the shared-memory ring's order), the host sums in
// host order (the leaders' ring's), and every rank takes the leader's bits by
// broadcast, so every rank ends with the same bits, and two runs with the
// same members the same bits — not the flat ring's bits, since the adds are
// grouped otherwise. Config.Wire applies to the leaders' ring only; within a
// host the sums travel as float32. Failures: every stage runs under the
// collective's deadline on Rings with their heartbeats and tags; a rank that
// sees a stage fail closes every Ring it is in, so that its host peers (and,
// for a leader, the other leaders, and through them their hosts) fail at
// once with a *PeerError; the first error finishes the HierRing, as it does
// a Ring. PeerError.Rank is a rank of the whole generation.
type HierRing struct {
	gen    Generation
	rank   int
	lay    hierLayout
	host   int           // this rank's host index
	local  *Ring         // this host's ranks; nil when alone on the host
	shm    *ShmTransport // local's transport
	lead   *Ring         // the leaders' ring; nil unless leader with other hosts
	leadOf []int         // global rank of each leaders' ring rank (= host)
	cfg    Config
	log    *slog.Logger

	ops  *queue[*Op]
	life context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	failMu  sync.Mutex
	failErr error

	closeOnce sync.Once

	// stageHook, when set by tests, runs as each stage starts.
	stageHook func(stage string)
}

// Stages of a hierarchical all-reduce, as named in errors.
const (
	stageIntra     = "intra-host reduce"
	stageInter     = "inter-host all-reduce"
	stageBroadcast = "intra-host broadcast"
)

// NewHierRing starts rank's member of gen: its host's shared-memory ring in
// ep.Shm.Dir and, for a host leader when gen spans several hosts, the
// leaders' ring — over auto (TCP where a probe connects, NATS otherwise)
// when ep has both, else over whichever of ep.TCP and ep.NATS it has. Every
// member needs a TCP address with a host part (Member.Addr): that is how its
// host is known. The ranks of a host must create theirs within
// cfg.PeerTimeout of each other, and the leaders theirs.
func NewHierRing(ctx context.Context, gen Generation, rank int, ep Endpoints, cfg Config) (*HierRing, error) {
	if err := gen.Validate(rank); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	lay, err := newHierLayout(gen)
	if err != nil {
		return nil, err
	}
	h := &HierRing{gen: gen, rank: rank, lay: lay, host: lay.host[rank], leadOf: lay.leaders(), cfg: cfg,
		log: cfg.Logger.With("job", gen.Job, "gen", gen.Number, "rank", rank)}
	if err := h.build(ctx, ep); err != nil {
		h.closeRings()
		return nil, err
	}
	h.ops = newQueue(func(op *Op) { op.finish(ErrClosed) })
	h.life, h.stop = context.WithCancel(context.Background())
	h.wg.Add(1)
	go h.runLoop()
	return h, nil
}

// build makes the local ring and, for a leader, the leaders' ring.
func (h *HierRing) build(ctx context.Context, ep Endpoints) error {
	members := h.lay.hosts[h.host]
	if len(members) > 1 {
		lg := subGeneration(h.gen, members)
		lr := h.lay.local[h.rank]
		shm, err := NewShmTransport(lg, lr, ep.Shm)
		if err != nil {
			return fmt.Errorf("allreduce: hierarchical: shared memory of host %d: %w", h.host, err)
		}
		lcfg := h.cfg
		lcfg.Wire = Float32
		if h.local, err = NewRing(lg, lr, shm, lcfg); err != nil {
			shm.Close()
			return err
		}
		h.shm = shm
	}
	if h.lay.local[h.rank] != 0 || len(h.lay.hosts) == 1 {
		return nil
	}
	kind := KindAuto
	switch {
	case ep.TCP == nil && ep.NATS == nil:
		return configErr("the hierarchical all-reduce needs Endpoints.TCP or Endpoints.NATS for the leaders' ring")
	case ep.NATS == nil:
		kind = KindTCP
	case ep.TCP == nil:
		kind = KindNATS
	}
	lg := subGeneration(h.gen, h.leadOf)
	tr, err := NewTransport(ctx, kind, lg, h.host, Endpoints{NATS: ep.NATS, NATSControl: ep.NATSControl, TCP: ep.TCP,
		ProbeTimeout: ep.ProbeTimeout, Logger: ep.Logger, Shm: ShmConfig{Dir: "/nonexistent-leaders-never-share-a-host"}})
	if err != nil {
		return fmt.Errorf("allreduce: hierarchical: leaders' ring transport: %w", err)
	}
	if tt, ok := tr.(*TCPTransport); ok {
		h.connectLeaders(ctx, tt, ep.ProbeTimeout)
	}
	if h.lead, err = NewRing(lg, h.host, tr, h.leaderConfig()); err != nil {
		tr.Close()
		return err
	}
	h.log.Debug("allreduce: hierarchical leader", "host", h.host, "hosts", len(h.lay.hosts), "transport", kind)
	return nil
}

// connectLeaders dials this leader's neighbours in the leaders' ring now,
// under a deadline of its own (probe, default 3 s), as the auto transport's
// probe does: the ring's data reaches them only after the intra-host stage,
// and its first contact would otherwise be a heartbeat, whose handshake has
// no more than Config.HeartbeatInterval. A neighbour not reached here is
// dialled again when sent to.
func (h *HierRing) connectLeaders(ctx context.Context, tt *TCPTransport, probe time.Duration) {
	if probe == 0 {
		probe = 3 * time.Second
	}
	n := len(h.leadOf)
	var wg sync.WaitGroup
	for _, p := range []int{(h.host + 1) % n, (h.host + n - 1) % n} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, probe)
			defer cancel()
			if err := tt.Connect(pctx, p); err != nil {
				h.log.Info("allreduce: hierarchical: leader not reached yet", "host", p, "err", err)
			}
		}()
	}
	wg.Wait()
}

// leaderConfig is the leaders' Config: a leader's metadata carries its
// whole host's.
func (h *HierRing) leaderConfig() Config {
	c := h.cfg
	c.MaxMeta = min(h.lay.maxPerHost()*(4+h.cfg.MaxMeta), 1<<20)
	c.WindowBytes = max(c.WindowBytes, 2*(headerSize+pad8(c.MaxMeta)+c.ChunkBytes))
	return c
}

// Rank is this member's rank in the generation; Size the number of ranks.
func (h *HierRing) Rank() int { return h.rank }
func (h *HierRing) Size() int { return h.gen.Size() }

// Hosts is the number of hosts; Leader whether this rank leads its host.
func (h *HierRing) Hosts() int   { return len(h.lay.hosts) }
func (h *HierRing) Leader() bool { return h.lay.local[h.rank] == 0 }

// Generation is the generation this HierRing serves.
func (h *HierRing) Generation() Generation { return h.gen }

// Err returns the error that finished the HierRing, or nil.
func (h *HierRing) Err() error {
	h.failMu.Lock()
	defer h.failMu.Unlock()
	return h.failErr
}

// StartAllReduce queues an all-reduce (sum) of buf in place with every
// rank's meta gathered, as Ring.StartAllReduce.
func (h *HierRing) StartAllReduce(ctx context.Context, buf []float32, meta []byte) *Op {
	op := &Op{kind: opAllReduce, buf: buf, meta: meta, done: make(chan struct{})}
	h.start(ctx, op)
	return op
}

// AllReduce sums buf in place across the ranks and returns every rank's meta.
func (h *HierRing) AllReduce(ctx context.Context, buf []float32, meta []byte) ([][]byte, error) {
	return h.StartAllReduce(ctx, buf, meta).Wait()
}

// AllGather returns every rank's meta (index = rank).
func (h *HierRing) AllGather(ctx context.Context, meta []byte) ([][]byte, error) {
	return h.AllReduce(ctx, nil, meta)
}

// Broadcast sends root's data to every rank: within root's host, then
// between the leaders, then within the other hosts. data is as for
// Ring.Broadcast.
func (h *HierRing) Broadcast(ctx context.Context, root int, data []byte) ([]byte, error) {
	op := &Op{kind: opBroadcast, bytes: data, root: root, done: make(chan struct{})}
	h.start(ctx, op)
	if _, err := op.Wait(); err != nil {
		return nil, err
	}
	return op.bytes, nil
}

func (h *HierRing) start(ctx context.Context, op *Op) {
	if _, ok := ctx.Deadline(); ok {
		op.ctx, op.cancel = context.WithCancel(ctx)
	} else {
		op.ctx, op.cancel = context.WithTimeout(ctx, h.cfg.Timeout)
	}
	h.ops.push(op)
}

// Close closes every Ring this rank is in (its host peers and, for a
// leader, the other leaders learn that it left after its last collective)
// and fails a collective in flight with ErrClosed. Safe to call twice.
func (h *HierRing) Close() error {
	h.closeOnce.Do(func() {
		h.ops.close(ErrClosed)
		h.fail(ErrClosed)
		h.stop()
		h.wg.Wait()
	})
	return nil
}

func (h *HierRing) closeRings() {
	if h.lead != nil {
		h.lead.Close()
	}
	if h.local != nil {
		h.local.Close()
	}
}

// fail records the first error and closes the Rings, which tells the peers.
func (h *HierRing) fail(err error) {
	h.failMu.Lock()
	if h.failErr != nil {
		h.failMu.Unlock()
		return
	}
	h.failErr = err
	h.failMu.Unlock()
	if !errors.Is(err, ErrClosed) {
		h.log.Warn("allreduce: hierarchical generation failed", "err", err)
	}
	h.closeRings()
}

func (h *HierRing) runLoop() {
	defer h.wg.Done()
	for {
		op, err := h.ops.pop(h.life)
		if err != nil {
			return
		}
		if err := h.Err(); err != nil {
			op.finish(err)
			continue
		}
		switch op.kind {
		case opAllReduce:
			err = h.runAllReduce(op)
		case opBroadcast:
			err = h.runBroadcast(op)
		}
		if err != nil {
			h.fail(err)
			op.finish(h.Err())
			continue
		}
		op.finish(nil)
	}
}

// runAllReduce: the host's sum on every rank of the host, the leaders'
// all-reduce of the host sums, the leader's bits to its host.
func (h *HierRing) runAllReduce(op *Op) error {
	if len(op.meta) > h.cfg.MaxMeta {
		return configErr("metadata of %d bytes exceeds Config.MaxMeta=%d", len(op.meta), h.cfg.MaxMeta)
	}
	members := h.lay.hosts[h.host]
	h.stage(stageIntra)
	localMetas := [][]byte{append([]byte(nil), op.meta...)}
	if h.local != nil {
		var err error
		if localMetas, err = h.local.AllReduce(op.ctx, op.buf, op.meta); err != nil {
			return h.subError(stageIntra, members, err)
		}
	}
	if len(h.lay.hosts) == 1 {
		op.metas = localMetas // one host: the host's sum is the sum
		return nil
	}
	var packed []byte
	if h.Leader() {
		h.stage(stageInter)
		hostMetas, err := h.lead.AllReduce(op.ctx, op.buf, packMetas(localMetas))
		if err != nil {
			return h.subError(stageInter, h.leadOf, err)
		}
		metas := make([][]byte, h.gen.Size())
		for k, b := range hostMetas {
			ms, err := unpackMetas(b, len(h.lay.hosts[k]))
			if err != nil {
				return fmt.Errorf("%s: host %d: %w", stageInter, k, err)
			}
			for i, r := range h.lay.hosts[k] {
				metas[r] = ms[i]
			}
		}
		packed = packMetas(metas)
	}
	if h.local != nil {
		h.stage(stageBroadcast)
		if len(op.buf) > 0 {
			if err := h.local.BroadcastFloat32(op.ctx, 0, op.buf); err != nil {
				return h.subError(stageBroadcast, members, err)
			}
		}
		var err error
		if packed, err = h.local.Broadcast(op.ctx, 0, packed); err != nil {
			return h.subError(stageBroadcast, members, err)
		}
	}
	metas, err := unpackMetas(packed, h.gen.Size())
	if err != nil {
		return fmt.Errorf("%s: %w", stageBroadcast, err)
	}
	op.metas = metas
	return nil
}

// runBroadcast: within root's host from root, between the leaders from
// root's host, within every other host from its leader.
func (h *HierRing) runBroadcast(op *Op) error {
	if op.root < 0 || op.root >= h.gen.Size() {
		return configErr("broadcast root %d outside [0, %d)", op.root, h.gen.Size())
	}
	members := h.lay.hosts[h.host]
	rootHost := h.lay.host[op.root]
	var err error
	if h.host == rootHost && h.local != nil {
		h.stage(stageIntra)
		if op.bytes, err = h.local.Broadcast(op.ctx, h.lay.local[op.root], op.bytes); err != nil {
			return h.subError(stageIntra, members, err)
		}
	}
	if h.lead != nil {
		h.stage(stageInter)
		if op.bytes, err = h.lead.Broadcast(op.ctx, rootHost, op.bytes); err != nil {
			return h.subError(stageInter, h.leadOf, err)
		}
	}
	if h.host != rootHost && h.local != nil {
		h.stage(stageBroadcast)
		if op.bytes, err = h.local.Broadcast(op.ctx, 0, op.bytes); err != nil {
			return h.subError(stageBroadcast, members, err)
		}
	}
	return nil
}

func (h *HierRing) stage(s string) {
	if h.stageHook != nil {
		h.stageHook(s)
	}
}

// subError turns a sub-ring's error into the generation's: a lost peer is
// named by its rank in the generation.
func (h *HierRing) subError(stage string, ranks []int, err error) error {
	var pe *PeerError
	if errors.As(err, &pe) && pe.Rank >= 0 && pe.Rank < len(ranks) {
		return &PeerError{Rank: ranks[pe.Rank], Member: h.gen.member(ranks[pe.Rank]),
			Reason: fmt.Sprintf("%s (in the %s)", pe.Reason, stage), Err: pe.Err}
	}
	return fmt.Errorf("allreduce: hierarchical %s: %w", stage, err)
}
