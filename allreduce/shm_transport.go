//go:build linux

package allreduce

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ShmTransport is one rank's shared-memory transport for one generation:
// ranks on one host (sharing ShmConfig.Dir, a tmpfs) write their frames
// straight into the receiver's inbox file, mapped by both processes, and
// sleep on futexes when there is nothing to read or no room to write. No
// system call moves a byte and nothing crosses the network stack: a frame
// is copied once into the ring by its sender and once out of it by the
// receiver's reader (shm_segment.go has the layout, shm_link.go the ring).
//
// A peer whose process ends — killed or not — drops the lock on its inbox;
// every ShmConfig.CheckInterval the reader checks the locks of the peers this
// rank talks to, and Recv reports a lost one as a *PeerError (after the frames
// it wrote before it died). The inbox files are named after the job and the
// generation, so a stale generation's frames can never reach this one's rings,
// and the Ring's tags check every frame as over any transport.
type ShmTransport struct {
	cfg      ShmConfig
	gen      Generation
	rank     int
	maxFrame int
	inbox    *shmMap
	arena    int    // ArenaBytes of every rank's inbox, 0 without arenas
	rounds   uint64 // arena rounds run so far (the Ring's runner only)
	// arenaMu is held by an all-reduce through the arenas, and by Close
	// before it unmaps them: a Ring closed mid-collective must not pull the
	// memory from under its runner.
	arenaMu sync.Mutex
	links   []shmLink // the links into the inbox, by sender (the own one unused)
	peers   []*shmPeer
	queue   *queue[recvItem]
	pool    bufPool

	// hook, when set by tests, runs after this rank staged an arena round.
	hook func()

	closed atomic.Bool
	life   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ Transport = (*ShmTransport)(nil)

// shmPeer is this rank's sending side toward one peer.
type shmPeer struct {
	mu       sync.Mutex // held by Send, attach and Close's unmap
	link     shmLink    // set once the link is allocated
	linked   bool
	broken   error
	attached atomic.Pointer[shmMap] // the peer's inbox, once attached
}

// NewShmTransport creates rank's inbox of gen in cfg.Dir, after removing the
// inboxes that ranks of the job's earlier generations left behind (their
// owners gone). It refuses a missing directory or one with too little room.
// Peers are attached when first sent to (or Connect), waiting for their inbox
// to appear until the call's deadline.
func NewShmTransport(gen Generation, rank int, cfg ShmConfig) (*ShmTransport, error) {
	return newShmTransport(gen, rank, cfg, true)
}

// newShmTransport makes an inbox with an arena (every rank of gen on this
// host, the shm kind) or without (some links of an auto transport).
func newShmTransport(gen Generation, rank int, cfg ShmConfig, withArena bool) (*ShmTransport, error) {
	if err := gen.Validate(rank); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	n := gen.Size()
	senders := min(n-1, 2) // the ring neighbours send; others may, unreserved
	sweepShm(cfg.Dir, gen.Job, gen.Number)
	arena := 0
	if withArena && n > 1 {
		arena = cfg.ArenaBytes
	}
	inbox, err := createInbox(cfg.Dir, gen, rank, cfg.LinkBytes, arena, senders)
	if err != nil {
		return nil, err
	}
	t := &ShmTransport{
		cfg: cfg, gen: gen, rank: rank, maxFrame: maxShmFrame(cfg.LinkBytes), inbox: inbox, arena: arena,
		links: make([]shmLink, n), peers: make([]*shmPeer, n), queue: newQueue(releaseItem),
	}
	t.pool.max = t.maxFrame
	for s := range n {
		t.links[s] = newShmLink(inbox, s, cfg.LinkBytes)
		t.peers[s] = &shmPeer{}
	}
	t.life, t.cancel = context.WithCancel(context.Background())
	t.wg.Add(1)
	go t.readLoop()
	return t, nil
}

// Path is the file of this rank's inbox.
func (t *ShmTransport) Path() string { return t.inbox.path }

// MaxFrame is half of ShmConfig.LinkBytes, less a record's prefix.
func (t *ShmTransport) MaxFrame() int { return t.maxFrame }

// Connect attaches to `to`'s inbox now, waiting for it until ctx is done
// (the auto transport's probe); Send attaches lazily.
func (t *ShmTransport) Connect(ctx context.Context, to int) error {
	if to < 0 || to >= len(t.peers) || to == t.rank {
		return fmt.Errorf("allreduce: shm connect to rank %d of %d", to, len(t.peers))
	}
	p := t.peers[to]
	p.mu.Lock()
	defer p.mu.Unlock()
	return t.linkLocked(ctx, p, to)
}

// linkLocked attaches to `to`'s inbox and allocates this rank's link in it.
func (t *ShmTransport) linkLocked(ctx context.Context, p *shmPeer, to int) error {
	if p.linked {
		return nil
	}
	if err := t.attachLocked(ctx, p, to); err != nil {
		return err
	}
	m := p.attached.Load()
	if err := m.allocLink(t.rank, t.cfg.LinkBytes); err != nil {
		return err
	}
	p.link = newShmLink(m, t.rank, t.cfg.LinkBytes)
	p.linked = true
	return nil
}

// deadInboxGrace is how long an inbox nobody holds is taken for a stale one
// that its new owner is about to replace; after it, its owner is taken for
// dead. A rank that died before its peers mapped its inbox is noticed here
// (its peers have nothing else of it to watch).
const deadInboxGrace = 2 * time.Second

// attachLocked maps `to`'s inbox, waiting for it until ctx is done; an inbox
// that stays ownerless for deadInboxGrace is a *PeerError.
func (t *ShmTransport) attachLocked(ctx context.Context, p *shmPeer, to int) error {
	if p.broken != nil {
		return p.broken
	}
	if p.attached.Load() != nil {
		return nil
	}
	backoff := time.Millisecond
	var deadSince time.Time
	for {
		if t.closed.Load() {
			return ErrClosed
		}
		m, err := attachInbox(t.cfg.Dir, t.gen, to, t.cfg.LinkBytes, t.arena)
		if err == nil {
			p.attached.Store(m)
			return nil
		}
		if !errors.Is(err, errInboxAbsent) {
			return err
		}
		switch {
		case !errors.Is(err, errInboxDead):
			deadSince = time.Time{}
		case deadSince.IsZero():
			deadSince = time.Now()
		case time.Since(deadSince) >= deadInboxGrace:
			return &PeerError{Rank: to, Member: t.gen.member(to), Reason: "its process ended before this rank mapped its inbox (shared-memory inbox unlocked)"}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("allreduce: shm: no live inbox of rank %d (%s) in %s: it runs on another host, has not started or died: %w",
				to, t.gen.member(to), t.cfg.Dir, ctx.Err())
		case <-t.life.Done():
			return ErrClosed
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 50*time.Millisecond)
	}
}

// Send writes the frame into `to`'s inbox, waiting for room while the
// receiver catches up, until ctx is done or the receiver is gone.
func (t *ShmTransport) Send(ctx context.Context, to int, parts ...[]byte) error {
	if to < 0 || to >= len(t.peers) || to == t.rank {
		return fmt.Errorf("allreduce: shm send to rank %d of %d", to, len(t.peers))
	}
	size := totalLen(parts)
	if size > t.maxFrame {
		return fmt.Errorf("allreduce: frame of %d bytes exceeds the shm transport's %d (ShmConfig.LinkBytes/2)", size, t.maxFrame)
	}
	p := t.peers[to]
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := t.linkLocked(ctx, p, to); err != nil {
		return err
	}
	m := p.attached.Load()
	for {
		if t.closed.Load() {
			return ErrClosed
		}
		if p.link.tryWrite(parts, size) {
			t.ring(m)
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !m.ownerAlive() {
			p.broken = t.lostError(to, m)
			return p.broken
		}
		seen := atomic.LoadUint32(p.link.space())
		atomic.StoreUint32(p.link.waiting(), 1)
		if !p.link.fits(size) {
			wait := t.cfg.CheckInterval
			if dl, ok := ctx.Deadline(); ok {
				wait = max(min(wait, time.Until(dl)), time.Microsecond)
			}
			futexWait(p.link.space(), seen, wait)
		}
		atomic.StoreUint32(p.link.waiting(), 0)
	}
}

// ring tells the owner of inbox m that a frame waits, waking it only when it
// sleeps.
func (t *ShmTransport) ring(m *shmMap) {
	atomic.AddUint32(m.u32(shmHdrDoorbell), 1)
	if atomic.LoadUint32(m.u32(shmHdrSleeping)) != 0 {
		futexWake(m.u32(shmHdrDoorbell))
	}
}

func (t *ShmTransport) lostError(rank int, m *shmMap) *PeerError {
	reason := "its process ended (shared-memory inbox unlocked)"
	if atomic.LoadUint32(m.u32(shmHdrState)) == shmStateClosed {
		reason = "closed its shared-memory inbox"
	}
	return &PeerError{Rank: rank, Member: t.gen.member(rank), Reason: reason}
}

// Recv returns the next frame from any peer, or a lost peer.
func (t *ShmTransport) Recv(ctx context.Context) (Frame, error) {
	it, err := t.queue.pop(ctx)
	if err != nil {
		return Frame{}, err
	}
	return it.f, it.err
}

// readLoop copies every frame out of the inbox's links into pooled buffers
// (so the sender's room comes back at once, whatever the Ring holds on to),
// checks the peers' locks every CheckInterval, and sleeps on the doorbell
// when nothing waits.
func (t *ShmTransport) readLoop() {
	defer t.wg.Done()
	n := len(t.links)
	tails := make([]uint64, n)
	dead := make([]bool, n) // links that broke or whose peer was reported lost
	doorbell, sleeping := t.inbox.u32(shmHdrDoorbell), t.inbox.u32(shmHdrSleeping)
	drain := func() bool {
		got := false
		for s := range n {
			if s == t.rank || dead[s] {
				continue
			}
			l := &t.links[s]
			for {
				frame, after, ok, err := l.next(tails[s], t.maxFrame)
				if err != nil {
					dead[s] = true
					t.queue.push(recvItem{err: &PeerError{Rank: s, Member: t.gen.member(s), Reason: "corrupt shared-memory link", Err: err}})
					break
				}
				if !ok {
					break
				}
				b := t.pool.get(len(frame))
				copy(b, frame)
				tails[s] = after
				l.release(after)
				t.queue.push(recvItem{f: Frame{Data: b, release: t.pool.put}})
				got = true
			}
		}
		return got
	}
	lastCheck := time.Now()
	for !t.closed.Load() {
		got := drain()
		if time.Since(lastCheck) >= t.cfg.CheckInterval {
			lastCheck = time.Now()
			for s, p := range t.peers {
				m := p.attached.Load()
				if s == t.rank || dead[s] || m == nil || m.ownerAlive() {
					continue
				}
				drain() // what it wrote before it went comes first
				dead[s] = true
				t.queue.push(recvItem{err: t.lostError(s, m)})
			}
		}
		if got {
			continue
		}
		seen := atomic.LoadUint32(doorbell)
		atomic.StoreUint32(sleeping, 1)
		pending := false
		for s := range n {
			if s != t.rank && !dead[s] && atomic.LoadUint64(t.links[s].head()) != tails[s] {
				pending = true
				break
			}
		}
		if !pending && !t.closed.Load() {
			futexWait(doorbell, seen, t.cfg.CheckInterval)
		}
		atomic.StoreUint32(sleeping, 0)
	}
}

// Close stops the reader, marks the inbox closed, unlinks it and unmaps
// everything; a Send waiting for room returns ErrClosed.
func (t *ShmTransport) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	t.cancel()
	atomic.StoreUint32(t.inbox.u32(shmHdrState), shmStateClosed)
	atomic.AddUint32(t.inbox.u32(shmHdrDoorbell), 1)
	futexWake(t.inbox.u32(shmHdrDoorbell))
	t.wg.Wait()
	t.queue.close(ErrClosed)
	t.arenaMu.Lock()
	defer t.arenaMu.Unlock()
	var errs []error
	for _, p := range t.peers {
		p.mu.Lock()
		if m := p.attached.Load(); m != nil {
			errs = append(errs, m.unmap())
		}
		p.mu.Unlock()
	}
	if err := os.Remove(t.inbox.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	errs = append(errs, t.inbox.unmap())
	return errors.Join(errs...)
}
