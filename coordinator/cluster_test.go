package coordinator

import (
	"context"
	"errors"
	"testing"
	"time"
)

func testSpec(job string) JobSpec {
	return JobSpec{Name: job, GlobalBatch: 8, Units: UnitsSpec{Pairs: 600, PerUnit: 10}, Epochs: 2, ProgressEvery: 1}.WithDefaults()
}

// TestClusterReplicatesAndHealsPartition: a 3-node in-memory group. A leader cut off alone cannot
// commit; the majority elects a leader and keeps committing; after healing, all three hold the
// same bytes.
func TestClusterReplicatesAndHealsPartition(t *testing.T) {
	t.Run("inmem", func(t *testing.T) { testPartition(t, MakeCluster(t, 3)) })
	t.Run("tcp", func(t *testing.T) { testPartition(t, MakeCluster(t, 3, WithTCP())) })
}

func testPartition(t *testing.T, c *Cluster) {
	if _, err := c.ApplyOnce(t, CmdSubmit, SubmitRequest{Spec: testSpec("test")}, func(s *State) bool { return s.Job != nil }); err != nil {
		t.Fatal(err)
	}
	for _, inst := range []string{"a", "b"} {
		joined := func(s *State) bool {
			for _, w := range s.Workers {
				if w.Instance == inst {
					return true
				}
			}
			return false
		}
		if _, err := c.ApplyOnce(t, CmdJoin, JoinRequest{Instance: inst}, joined); err != nil {
			t.Fatal(err)
		}
	}
	c.EnsureSame(t)

	old := c.Leader(t)
	c.Partition(old)
	// The minority cannot commit: its apply fails (leadership lost or timeout), never succeeds.
	if _, err := old.apply(CmdJoin, JoinRequest{Instance: "minority"}); err == nil {
		t.Fatal("a leader cut off from the majority committed an entry")
	}
	majorityLeader := func() *Server {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			for _, s := range c.Live() {
				if s != old && s.IsLeader() {
					return s
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("the majority elected no leader")
		return nil
	}
	// The majority commits (should its fresh leadership move under load, the next leader's
	// barrier tells whether the join took effect before it is tried again).
	for attempt := 0; ; attempt++ {
		leader := majorityLeader()
		_, err := leader.apply(CmdJoin, JoinRequest{Instance: "majority"})
		if err == nil {
			break
		}
		if !errors.Is(err, ErrNotLeader) || attempt == 5 {
			t.Fatalf("the majority cannot commit: %v", err)
		}
		leader = majorityLeader()
		if leader.raft.Barrier(leader.cfg.ApplyTimeout).Error() != nil {
			continue
		}
		done := false
		leader.FSM().Read(func(s *State) {
			for _, w := range s.Workers {
				done = done || w.Instance == "majority"
			}
		})
		if done {
			break
		}
	}
	c.Heal()
	c.EnsureSame(t)
	var names []string
	old.FSM().Read(func(s *State) {
		for _, w := range s.Workers {
			names = append(names, w.Instance)
		}
	})
	if len(names) != 3 || names[2] != "majority" {
		t.Fatalf("after healing the old leader has workers %v, want a, b, majority", names)
	}
}

// TestFailoverServesAPI: a 3-node group over TCP with three embedded NATS servers in a cluster.
// Workers heartbeat through the API; the leader is killed; a new leader serves the API within a
// bound (logged), nothing committed is lost, and the workers carry on without being declared dead.
func TestFailoverServesAPI(t *testing.T) {
	c := MakeCluster(t, 3, WithTCP(), WithNATS())
	cl := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := cl.Submit(ctx, testSpec("test")); err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	var gen uint64
	for _, inst := range []string{"w1", "w2"} {
		rep, err := cl.Join(ctx, JoinRequest{Name: inst, Instance: inst})
		if err != nil {
			t.Fatal(err)
		}
		ids, gen = append(ids, rep.WorkerID), rep.Generation.Number
	}
	lease, err := cl.LeaseUnits(ctx, LeaseRequest{Generation: gen, RequestID: "l1", Asks: []LeaseAsk{{WorkerID: ids[0], Count: 1}, {WorkerID: ids[1], Count: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	u0, u1 := lease.Grants[0].Units[0], lease.Grants[1].Units[0]
	if _, err := cl.ReportProgress(ctx, ProgressRequest{Generation: gen, Step: 1, Cursors: []RankCursor{
		{Rank: 0, WorkerID: ids[0], Epoch: u0.Epoch, Unit: int64(u0.Unit), Offset: 4},
		{Rank: 1, WorkerID: ids[1], Epoch: u1.Epoch, Unit: int64(u1.Unit), Offset: 4}}}); err != nil {
		t.Fatal(err)
	}

	// Two workers heartbeat every 100ms through their own clients for the whole test.
	hbCtx, stopHB := context.WithCancel(ctx)
	defer stopHB()
	hbErr := make(chan error, 2)
	for _, id := range ids {
		wc := c.Client(t)
		go func(id uint64) {
			for hbCtx.Err() == nil {
				if _, err := wc.Heartbeat(hbCtx, id, gen); err != nil && hbCtx.Err() == nil {
					hbErr <- err
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}(id)
	}

	old := c.Leader(t)
	before := old.Status()
	killed := time.Now()
	c.Kill(old)
	var st *JobStatus
	for {
		sctx, scancel := context.WithTimeout(ctx, time.Second)
		st, err = cl.Status(sctx)
		scancel()
		if err == nil && st.Leader != "" && st.Leader != old.ID() {
			break
		}
		if time.Since(killed) > 20*time.Second {
			t.Fatalf("no new leader served the API within 20s (last: %v)", err)
		}
	}
	took := time.Since(killed)
	t.Logf("leader %s killed: %s serves the API after %v (raft heartbeat timeout %v)", old.ID(), st.Leader, took.Round(time.Millisecond), TestRaftTimeouts(true).HeartbeatTimeout)
	if took > 10*time.Second {
		t.Errorf("failover took %v, want under 10s", took)
	}
	if st.Step != before.Step || len(st.Generation.Members) != 2 || st.Units.Leased != 2 || st.Job == nil {
		t.Fatalf("committed state lost across failover: before %+v, after %+v", before, st)
	}
	// The workers carry on: more heartbeats and a lease succeed against the new leader, and
	// nobody was declared dead.
	time.Sleep(1500 * time.Millisecond) // > 2 lease TTLs of the new leader
	select {
	case err := <-hbErr:
		t.Fatalf("a worker's heartbeat failed across the failover: %v", err)
	default:
	}
	if _, err := cl.LeaseUnits(ctx, LeaseRequest{Generation: gen, RequestID: "l2", Asks: []LeaseAsk{{WorkerID: ids[0], Count: 1}}}); err != nil {
		t.Fatalf("lease after failover: %v", err)
	}
	stopHB()
	c.EnsureSame(t)
}

// TestDeadWorkerNewGeneration: a worker that stops heartbeating is declared dead and a new
// generation is announced within LeaseTTL + LeaseCheck (plus scheduling slack); its units are
// orphaned until the survivor hands over, then pending again.
func TestDeadWorkerNewGeneration(t *testing.T) {
	c := MakeCluster(t, 1, WithNATS())
	cl := c.Client(t, WithWatchPoll(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cl.Submit(ctx, testSpec("test")); err != nil {
		t.Fatal(err)
	}
	live, err := cl.Join(ctx, JoinRequest{Instance: "live"})
	if err != nil {
		t.Fatal(err)
	}
	doomed, err := cl.Join(ctx, JoinRequest{Instance: "doomed"})
	if err != nil {
		t.Fatal(err)
	}
	gen := doomed.Generation.Number
	if _, err := cl.LeaseUnits(ctx, LeaseRequest{Generation: gen, Asks: []LeaseAsk{{WorkerID: live.WorkerID, Count: 1}, {WorkerID: doomed.WorkerID, Count: 3}}}); err != nil {
		t.Fatal(err)
	}
	watch, err := cl.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for ctx.Err() == nil {
			cl.Heartbeat(ctx, live.WorkerID, gen)
			time.Sleep(100 * time.Millisecond)
		}
	}()
	cl.Heartbeat(ctx, doomed.WorkerID, gen)
	silentSince := time.Now()
	var g GenerationInfo
	for g = range watch {
		if g.Number > gen {
			break
		}
	}
	took := time.Since(silentSince)
	ttl := c.configs[0].LeaseTTL
	t.Logf("worker silent → generation %d announced after %v (LeaseTTL %v)", g.Number, took.Round(time.Millisecond), ttl)
	if took > ttl+2*time.Second {
		t.Errorf("dead worker detected after %v, want under LeaseTTL+2s", took)
	}
	if len(g.Members) != 1 || g.Members[0].WorkerID != live.WorkerID || !g.HandoverPending {
		t.Fatalf("generation after the death: %+v", g)
	}
	if _, err := cl.Heartbeat(ctx, doomed.WorkerID, gen); !errors.Is(err, ErrUnknownWorker) {
		t.Fatalf("the dead worker's heartbeat: %v, want ErrUnknownWorker", err)
	}
	st, _ := cl.Status(ctx)
	if st.Units.Orphaned != 3 {
		t.Fatalf("%d orphaned units, want the dead worker's 3", st.Units.Orphaned)
	}
	// The survivor hands over (nobody stepped): the dead worker's units are pending again.
	if _, err := cl.ReportProgress(ctx, ProgressRequest{Generation: gen, Step: 0, Handover: true, Cursors: []RankCursor{{Rank: 0, WorkerID: live.WorkerID, Unit: -1}, {Rank: 1, WorkerID: doomed.WorkerID, Unit: -1}}}); err != nil {
		t.Fatal(err)
	}
	st, _ = cl.Status(ctx)
	if st.Units.Orphaned != 0 || st.Units.Leased != 1 || st.Generation.HandoverPending {
		t.Fatalf("after the handover: %+v", st.Units)
	}
}

// TestRestartResumes: a single replica on a data dir, closed and started again, holds the same
// state and serves it.
func TestRestartResumes(t *testing.T) {
	c := MakeCluster(t, 1, WithTCP(), WithNATS())
	cl := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cl.Submit(ctx, testSpec("test")); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Join(ctx, JoinRequest{Instance: "w"}); err != nil {
		t.Fatal(err)
	}
	s := c.Leader(t)
	if err := s.Raft().Snapshot().Error(); err != nil { // the restart reads a snapshot and a log tail
		t.Fatal(err)
	}
	if _, err := cl.Stop(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	before, _ := s.FSM().MarshalState()
	i := c.Kill(s)
	s2 := c.Restart(t, i)
	deadline := time.Now().Add(10 * time.Second)
	for {
		after, _ := s2.FSM().MarshalState()
		if string(after) == string(before) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted replica's state differs:\n%s\n%s", before, after)
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != JobStopped || len(st.Generation.Members) != 1 {
		t.Fatalf("status after restart: %+v", st)
	}
}
