package allreduce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Ring runs the collectives of one rank of one generation over a Transport.
//
// Collectives run one at a time, in the order they are started, and every rank
// must start the same collectives in the same order (the op sequence number
// in every frame checks it). They may be started from any goroutine.
//
// A Ring is finished by its first error: a lost peer, a deadline, a mismatch.
// The in-flight collective and every later one return that error; the caller
// abandons the step and builds the next generation's Ring. Close releases the
// Ring and its Transport; a Ring owns the Transport it is given.
type Ring struct {
	gen         Generation
	rank, size  int
	left, right int
	t           Transport
	cfg         Config
	job         uint64
	log         *slog.Logger
	chunkBytes  int    // payload bytes per frame, a multiple of 8
	ackEvery    uint64 // the receiver acknowledges every ackEvery bytes

	life   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	ops   *queue[*Op]
	sends *queue[sendTask]
	data  *queue[inFrame]
	flow  credit // toward the right neighbour

	failMu  sync.Mutex
	failErr error
	failed  chan struct{}

	ready     chan struct{} // closed once the right neighbour has been heard
	readyOnce sync.Once
	greeted   [2]atomic.Bool  // replied to the first frame of left / right
	lastSeen  [2]atomic.Int64 // unix nanoseconds of the last frame from left / right
	leftAfter [2]atomic.Int64 // last op of a neighbour that said bye, or -1
	running   atomic.Uint64   // sequence number of the op being run, 0 when idle
	closeOnce sync.Once
	closing   atomic.Bool

	// Owned by the runner goroutine.
	seq       uint64 // sequence number of the last op started
	lastDone  atomic.Uint64
	consumed  atomic.Uint64 // data bytes from the left neighbour consumed so far (heartbeats read it)
	ackedSent uint64

	taskSeq    uint64 // send tasks queued (runner)
	sentSeq    atomic.Uint64
	sentSignal chan struct{}

	// Owned by the sender goroutine: the frame being sent (its header, or
	// the whole frame when the payload is encoded).
	frame []byte

	stats counters

	// hook, when set by tests, runs in the runner after each data frame.
	hook func(kind kind, step uint32)
}

// NewRing starts rank's member of gen over t, which the Ring owns from then
// on (on an error t stays the caller's). The neighbours must create theirs
// within cfg.PeerTimeout.
func NewRing(gen Generation, rank int, t Transport, cfg Config) (*Ring, error) {
	if err := gen.Validate(rank); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	chunk := min(cfg.ChunkBytes, t.MaxFrame()-headerSize-pad8(cfg.MaxMeta)) &^ 7
	if chunk < 8 {
		return nil, configErr("transport frames of %d bytes leave no room for a chunk after the header and Config.MaxMeta=%d", t.MaxFrame(), cfg.MaxMeta)
	}
	n := len(gen.Members)
	r := &Ring{
		gen: gen, rank: rank, size: n,
		left: (rank + n - 1) % n, right: (rank + 1) % n,
		t: t, cfg: cfg, job: jobID(gen.Job),
		log:        cfg.Logger.With("job", gen.Job, "gen", gen.Number, "rank", rank),
		chunkBytes: chunk,
		ackEvery:   uint64(cfg.WindowBytes / 8),
		failed:     make(chan struct{}),
		ready:      make(chan struct{}),
		frame:      make([]byte, headerSize+pad8(cfg.MaxMeta)+chunk),
		sentSignal: make(chan struct{}, 1),
	}
	r.flow.init(uint64(cfg.WindowBytes))
	r.life, r.cancel = context.WithCancel(context.Background())
	r.ops = newQueue(func(op *Op) { op.finish(ErrClosed) })
	r.sends = newQueue(func(st sendTask) {
		st.fwd.Release()
		if st.barrier != nil {
			st.barrier <- r.Err()
		}
	})
	r.data = newQueue(func(in inFrame) { in.f.Release() })
	now := time.Now().UnixNano()
	for i := range r.lastSeen {
		r.lastSeen[i].Store(now)
		r.leftAfter[i].Store(-1)
	}
	r.wg.Add(3)
	go r.recvLoop()
	go r.sendLoop()
	go r.runLoop()
	if n > 1 {
		r.wg.Add(1)
		go r.heartbeatLoop()
	} else {
		close(r.ready)
	}
	return r, nil
}

// Rank is this member's rank; Size the number of ranks.
func (r *Ring) Rank() int { return r.rank }
func (r *Ring) Size() int { return r.size }

// Generation is the generation this Ring serves.
func (r *Ring) Generation() Generation { return r.gen }

// Err returns the error that finished the Ring, or nil.
func (r *Ring) Err() error {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	return r.failErr
}

// Close tells the neighbours this rank leaves after its last finished
// collective, fails a collective in flight with ErrClosed, and closes the
// Transport. It is safe to call more than once.
func (r *Ring) Close() error {
	r.closeOnce.Do(func() {
		r.closing.Store(true)
		r.ops.close(ErrClosed)
		if r.size > 1 {
			r.sendBye()
		}
		r.fail(ErrClosed, false)
		r.cancel()
		r.t.Close()
		r.wg.Wait()
	})
	return nil
}

// neighbourIndex maps a rank to 0 (left) or 1 (right), or -1. With two ranks
// the one peer is both; index 0 stands for it.
func (r *Ring) neighbourIndex(rank int) int {
	switch rank {
	case r.left:
		return 0
	case r.right:
		return 1
	}
	return -1
}

// neighbours lists the distinct ring neighbours.
func (r *Ring) neighbours() []int {
	switch {
	case r.size == 1:
		return nil
	case r.left == r.right:
		return []int{r.left}
	}
	return []int{r.left, r.right}
}

// fail records the first error, wakes everything waiting, and — when notify —
// tells the neighbours so that every survivor learns within a few hops.
func (r *Ring) fail(err error, notify bool) {
	r.failMu.Lock()
	if r.failErr != nil {
		r.failMu.Unlock()
		return
	}
	r.failErr = err
	close(r.failed)
	r.failMu.Unlock()
	r.data.close(err)
	r.sends.close(err)
	r.flow.wake()
	if !errors.Is(err, ErrClosed) {
		r.log.Warn("allreduce: generation failed", "err", err)
	}
	if notify && r.size > 1 {
		reason, about := abortReason(err, r.rank)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for _, p := range r.neighbours() {
				if p == about && reason == abortLost {
					continue
				}
				r.sendControl(p, kindAbort, uint32(reason), uint64(about), 0)
			}
		}()
	}
}

// Abort reasons, carried in the step field of an abort frame, with the rank
// they are about in the offset field.
const (
	abortLost     = 1 // rank `about` is lost
	abortAborted  = 2 // rank `about` abandoned the op (deadline, cancel)
	abortMismatch = 3 // rank `about` saw the ranks disagree
	abortStale    = 4 // rank `about` saw a newer generation
)

func abortReason(err error, self int) (reason int, about int) {
	var pe *PeerError
	switch {
	case errors.As(err, &pe):
		return abortLost, pe.Rank
	case errors.Is(err, ErrMismatch):
		return abortMismatch, self
	case errors.Is(err, ErrStale):
		return abortStale, self
	}
	return abortAborted, self
}

func (r *Ring) onAbort(from int, h header) {
	about := int(h.offset)
	var err error
	switch h.step {
	case abortLost:
		err = &PeerError{Rank: about, Member: r.gen.member(about), Reason: fmt.Sprintf("reported by rank %d", from)}
	case abortMismatch:
		err = fmt.Errorf("%w (seen by rank %d)", ErrMismatch, about)
	case abortStale:
		err = fmt.Errorf("%w (seen by rank %d)", ErrStale, about)
	default:
		err = fmt.Errorf("%w by rank %d", ErrAborted, about)
	}
	r.fail(err, true)
}

// onBye records that a neighbour leaves after op `last`; an op after that
// cannot finish, so one in flight fails now and a later one at its start.
func (r *Ring) onBye(from int, last uint64) {
	i := r.neighbourIndex(from)
	if i < 0 {
		return
	}
	r.leftAfter[i].Store(int64(last))
	if cur := r.running.Load(); cur != 0 && cur > last {
		r.fail(r.leftError(from, last), true)
	}
}

func (r *Ring) leftError(rank int, last uint64) error {
	return &PeerError{Rank: rank, Member: r.gen.member(rank), Reason: fmt.Sprintf("left the ring after op %d", last)}
}

// checkLeft fails op seq if a neighbour left before it.
func (r *Ring) checkLeft(seq uint64) error {
	for _, p := range r.neighbours() {
		if last := r.leftAfter[r.neighbourIndex(p)].Load(); last >= 0 && uint64(last) < seq {
			err := r.leftError(p, uint64(last))
			r.fail(err, true)
			return err
		}
	}
	return nil
}

// peerGone handles a transport's report that a connection to rank broke.
// A neighbour that leaves says bye before closing, but the close of the
// connection we dialled to it can overtake the bye on the connection it
// dialled to us; so the loss counts only if no bye follows within a short
// grace.
func (r *Ring) peerGone(pe *PeerError) {
	if r.saidBye(pe.Rank) || r.closing.Load() {
		return
	}
	if pe.Member == "" {
		pe.Member = r.gen.member(pe.Rank)
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		select {
		case <-time.After(min(r.cfg.HeartbeatInterval, byeGrace)):
		case <-r.life.Done():
			return
		case <-r.failed:
			return
		}
		if !r.saidBye(pe.Rank) {
			r.fail(pe, true)
		}
	}()
}

// byeGrace bounds how long a broken connection waits for the peer's bye.
const byeGrace = 200 * time.Millisecond

func (r *Ring) saidBye(rank int) bool {
	i := r.neighbourIndex(rank)
	return i >= 0 && r.leftAfter[i].Load() >= 0
}

// recvLoop reads every frame, answers control frames at once and queues data
// frames from the left neighbour for the runner.
func (r *Ring) recvLoop() {
	defer r.wg.Done()
	for {
		f, err := r.t.Recv(r.life)
		if err != nil {
			var pe *PeerError
			if errors.As(err, &pe) {
				r.peerGone(pe)
				continue
			}
			if r.life.Err() == nil && !r.closing.Load() {
				r.fail(fmt.Errorf("allreduce: transport: %w", err), true)
			}
			return
		}
		r.dispatch(f)
	}
}

func (r *Ring) dispatch(f Frame) {
	h, meta, payload, err := parseFrame(f.Data)
	if err != nil || h.job != r.job || h.gen != r.gen.Number || h.from >= uint32(r.size) || int(h.from) == r.rank {
		r.stats.dropped.Add(1)
		f.Release()
		return
	}
	from := int(h.from)
	r.touch(from)
	switch {
	case h.kind == kindHeartbeat:
		if from == r.right && h.total > 0 {
			r.flow.ack(h.total) // a heartbeat repeats the last acknowledgement
		}
		f.Release()
	case h.kind == kindAck:
		if from == r.right {
			r.flow.ack(h.total)
		}
		f.Release()
	case h.kind == kindAbort:
		f.Release()
		r.onAbort(from, h)
	case h.kind == kindBye:
		f.Release()
		r.onBye(from, h.total)
	case h.kind.isData() && from == r.left:
		r.data.push(inFrame{h: h, meta: meta, payload: payload, f: f})
	default:
		r.stats.dropped.Add(1)
		f.Release()
	}
}

// touch notes that rank is alive; the first frame from a neighbour is
// answered with a heartbeat, so that both ends learn quickly that the other
// listens (over NATS a frame sent before the peer subscribed is lost).
func (r *Ring) touch(rank int) {
	i := r.neighbourIndex(rank)
	if i < 0 {
		return
	}
	r.lastSeen[i].Store(time.Now().UnixNano())
	if rank == r.right {
		r.readyOnce.Do(func() { close(r.ready) })
	}
	if !r.greeted[i].Swap(true) {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.sendControl(rank, kindHeartbeat, 0, 0, 0)
		}()
	}
}

// heartbeatLoop tells the neighbours this rank is alive and declares lost a
// neighbour that has been silent for PeerTimeout.
func (r *Ring) heartbeatLoop() {
	defer r.wg.Done()
	tick := time.NewTicker(r.cfg.HeartbeatInterval)
	defer tick.Stop()
	for {
		for _, p := range r.neighbours() {
			var consumed uint64
			if p == r.left {
				consumed = r.consumed.Load()
			}
			r.sendControl(p, kindHeartbeat, 0, 0, consumed)
		}
		select {
		case <-r.life.Done():
			return
		case <-r.failed:
			return
		case <-tick.C:
		}
		now := time.Now().UnixNano()
		for _, p := range r.neighbours() {
			i := r.neighbourIndex(p)
			if r.leftAfter[i].Load() >= 0 {
				continue
			}
			if silent := time.Duration(now - r.lastSeen[i].Load()); silent > r.cfg.PeerTimeout {
				r.fail(&PeerError{Rank: p, Member: r.gen.member(p),
					Reason: fmt.Sprintf("silent for %v (peer timeout %v)", silent.Round(time.Millisecond), r.cfg.PeerTimeout)}, true)
				return
			}
		}
	}
}

// sendControl sends a header-only frame. A lost peer, a stale generation or
// a refused handshake fails the ring; other errors (a peer not reachable
// yet) are left to the heartbeat watch.
func (r *Ring) sendControl(to int, k kind, step uint32, offset, total uint64) {
	var b [headerSize]byte
	h := header{kind: k, job: r.job, gen: r.gen.Number, from: uint32(r.rank), step: step, offset: offset, total: total}
	h.put(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.HeartbeatInterval)
	defer cancel()
	err := r.t.Send(ctx, to, b[:])
	if err == nil || k == kindBye || k == kindAbort {
		return
	}
	var pe *PeerError
	switch {
	case errors.As(err, &pe):
		r.peerGone(pe)
	case errors.Is(err, ErrStale), errors.Is(err, ErrAuth), errors.Is(err, ErrConfig):
		// The peer will never take our frames: a newer generation exists,
		// or it does not share our token or job.
		r.fail(err, true)
	}
}

func (r *Ring) sendBye() {
	last := r.lastDone.Load()
	for _, p := range r.neighbours() {
		r.sendControl(p, kindBye, 0, 0, last)
	}
}

// Stats are counters since the Ring started.
type Stats struct {
	Ops        uint64 // collectives finished without error
	FramesSent uint64 // data frames sent
	BytesSent  uint64 // data frame bytes sent, headers included
	FramesRecv uint64 // data frames consumed
	BytesRecv  uint64 // data frame bytes consumed, headers included
	Dropped    uint64 // frames dropped: foreign job or generation, malformed, or unexpected
	Stale      uint64 // frames of an earlier collective, dropped
}

type counters struct {
	ops, framesSent, bytesSent, framesRecv, bytesRecv, dropped, stale atomic.Uint64
}

// Stats returns the counters.
func (r *Ring) Stats() Stats {
	c := &r.stats
	return Stats{
		Ops: c.ops.Load(), FramesSent: c.framesSent.Load(), BytesSent: c.bytesSent.Load(),
		FramesRecv: c.framesRecv.Load(), BytesRecv: c.bytesRecv.Load(),
		Dropped: c.dropped.Load(), Stale: c.stale.Load(),
	}
}
