package coordinator

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/nats-io/nats.go"
)

// leadership is what a replica runs while it leads: the API subscription, the heartbeat table
// (soft state, never in the log: a new leader gives every worker two LeaseTTLs), and the loop
// that declares silent workers dead and opens epochs.
type leadership struct {
	ctx    context.Context
	cancel context.CancelFunc
	sub    *nats.Subscription
	sem    chan struct{}
	wg     sync.WaitGroup
	since  time.Time

	mu   sync.Mutex
	seen map[uint64]time.Time // worker id → last heartbeat (or join, or leadership start)

	kick chan struct{}

	// samples/s bookkeeping from successive progress reports.
	lastPairs uint64
	lastAt    time.Time
}

// touch records a sign of life from a worker.
func (l *leadership) touch(id uint64) {
	l.mu.Lock()
	l.seen[id] = time.Now()
	l.mu.Unlock()
}

// watchLeadership starts and stops the leader's duties as Raft's leadership comes and goes.
// LeaderCh may coalesce signals, so each one (and a periodic tick) reconciles with raft.State.
func (s *Server) watchLeadership() {
	defer s.wg.Done()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-s.raft.LeaderCh():
		case <-tick.C:
		}
		s.reconcileLeadership()
	}
}

func (s *Server) reconcileLeadership() {
	leader := s.raft.State() == raft.Leader
	s.mu.Lock()
	serving := s.lead != nil
	s.mu.Unlock()
	switch {
	case leader && !serving:
		if err := s.startLeading(); err != nil {
			s.log.Warn("could not start serving as leader", "err", err)
		}
	case !leader && serving:
		s.log.Info("lost leadership: stop serving the API")
		s.stopLeading()
	}
	s.metrics.observeRaft()
}

// startLeading waits until the FSM has applied everything the previous leader committed (a
// barrier), then subscribes to the API and starts the lease loop.
func (s *Server) startLeading() error {
	start := time.Now()
	if err := s.raft.Barrier(s.cfg.ApplyTimeout).Error(); err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &leadership{
		ctx: ctx, cancel: cancel, since: time.Now(),
		sem:  make(chan struct{}, s.cfg.MaxInflight),
		seen: make(map[uint64]time.Time),
		kick: make(chan struct{}, 1),
	}
	sub, err := s.nc.QueueSubscribe(s.subjects.AllOps(), "vlp-coordinator", func(m *nats.Msg) { s.dispatch(l, m) })
	if err != nil {
		cancel()
		return fmt.Errorf("subscribe %s: %w", s.subjects.AllOps(), err)
	}
	// Requests may come in bursts of a thousand heartbeats: let them queue rather than be dropped.
	sub.SetPendingLimits(-1, -1)
	if err := s.nc.Flush(); err != nil {
		sub.Unsubscribe()
		cancel()
		return fmt.Errorf("flush: %w", err)
	}
	l.sub = sub
	s.mu.Lock()
	s.lead = l
	s.mu.Unlock()
	l.wg.Add(1)
	go s.leaseLoop(l)
	s.log.Info("leading: serving the API", "subjects", s.subjects.AllOps(), "ready_after", time.Since(start))
	s.publishGeneration()
	return nil
}

// stopLeading unsubscribes and stops the lease loop; requests in flight finish (their Raft
// applies fail with ErrNotLeader, which the client retries).
func (s *Server) stopLeading() {
	s.mu.Lock()
	l := s.lead
	s.lead = nil
	s.mu.Unlock()
	if l == nil {
		return
	}
	if l.sub != nil {
		l.sub.Unsubscribe()
	}
	l.cancel()
	l.wg.Wait()
}

func (s *Server) leader() *leadership {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lead
}

// leaseLoop declares workers dead after LeaseTTL without a heartbeat, opens epochs as the units
// run low, and re-announces the generation every few seconds.
func (s *Server) leaseLoop(l *leadership) {
	defer l.wg.Done()
	tick := time.NewTicker(s.cfg.LeaseCheck)
	defer tick.Stop()
	lastAnnounce := time.Now()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-tick.C:
		case <-l.kick:
		}
		s.expireLeases(l)
		s.expireRevoked(l)
		s.openEpochs(l)
		if time.Since(lastAnnounce) > 2*time.Second {
			s.publishGeneration()
			lastAnnounce = time.Now()
		}
	}
}

func (s *Server) expireLeases(l *leadership) {
	var ids []uint64
	s.fsm.Read(func(st *State) {
		for _, w := range st.Workers {
			ids = append(ids, w.ID)
		}
	})
	now := time.Now()
	var dead []uint64
	var silent []time.Duration
	l.mu.Lock()
	live := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		live[id] = true
		last, ok := l.seen[id]
		if !ok {
			// New to this leader: a full lease from now; right after a failover, two, since the
			// worker's heartbeats may be stuck in a request to the old leader or a NATS reconnect.
			l.seen[id] = now
			if now.Sub(l.since) < s.cfg.LeaseTTL {
				l.seen[id] = now.Add(s.cfg.LeaseTTL)
			}
			continue
		}
		if d := now.Sub(last); d > s.cfg.LeaseTTL {
			dead = append(dead, id)
			silent = append(silent, d)
		}
	}
	for id := range l.seen {
		if !live[id] {
			delete(l.seen, id)
		}
	}
	l.mu.Unlock()
	for i, id := range dead {
		if l.ctx.Err() != nil {
			return
		}
		_, err := s.apply(CmdDead, Departure{WorkerID: id, Reason: fmt.Sprintf("no heartbeat for %v", silent[i].Round(time.Millisecond))})
		if err != nil {
			s.log.Warn("could not declare a worker dead", "worker", id, "err", err)
			continue
		}
		s.metrics.deadWorkers.Inc()
		s.log.Info("worker declared dead", "worker", id, "silent", silent[i].Round(time.Millisecond))
		l.mu.Lock()
		delete(l.seen, id)
		l.mu.Unlock()
	}
}

func (s *Server) openEpochs(l *leadership) {
	for l.ctx.Err() == nil {
		var spec JobSpec
		var next uint64
		var need bool
		s.fsm.Read(func(st *State) {
			if next, need = st.needsEpoch(); need {
				spec = *st.Job
			}
		})
		if !need {
			return
		}
		sizes, err := s.cfg.Units.EpochUnits(&spec, next)
		if err != nil {
			s.log.Error("cannot compute the units of the next epoch", "epoch", next, "err", err)
			return
		}
		if _, err := s.apply(CmdOpenEpoch, OpenEpoch{Epoch: next, Runs: encodeRuns(sizes)}); err != nil {
			s.log.Warn("could not open epoch", "epoch", next, "err", err)
			return
		}
		s.log.Info("epoch opened", "epoch", next, "units", len(sizes))
	}
}

// kickLeader wakes the lease loop (after a submit, so that epoch 0 opens at once).
func (s *Server) kickLeader() {
	if l := s.leader(); l != nil {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

// publishGeneration announces the current generation on vlp.<job>.events.generation.
func (s *Server) publishGeneration() {
	if s.leader() == nil {
		return
	}
	var g GenerationInfo
	var hasJob bool
	s.fsm.Read(func(st *State) {
		hasJob = st.Job != nil
		g = st.generationInfo()
	})
	if !hasJob {
		return
	}
	body, _ := json.Marshal(g)
	data, _ := json.Marshal(Reply{V: APIVersion, Body: body})
	if err := s.nc.Publish(s.subjects.Generation(), data); err != nil {
		s.log.Debug("publish generation", "err", err)
	}
}
