package worker

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e2evlp/vlp/coordinator"
)

// holdingLeases is rank 0's coordinator with its leases held once hold is
// set: a lease in flight never returns until the caller gives up. held is
// closed when the first held lease arrives.
type holdingLeases struct {
	Coordinator
	hold atomic.Bool
	held chan struct{}
	once atomic.Bool
}

func (h *holdingLeases) LeaseUnits(ctx context.Context, req coordinator.LeaseRequest) (*coordinator.LeaseReply, error) {
	if h.hold.Load() {
		if h.once.CompareAndSwap(false, true) {
			close(h.held)
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return h.Coordinator.LeaseUnits(ctx, req)
}

// lateStop is a coordinator whose heartbeats never carry the stop order, as
// for a worker whose next heartbeat is still due when its ring breaks.
type lateStop struct{ Coordinator }

func (l lateStop) Heartbeat(ctx context.Context, workerID, generation uint64) (*coordinator.HeartbeatReply, error) {
	rep, err := l.Coordinator.Heartbeat(ctx, workerID, generation)
	if rep != nil {
		cp := *rep
		cp.Stop = false
		rep = &cp
	}
	return rep, err
}

// The job is stopped while rank 0 leases for every rank and rank 0 then
// dies: rank 1, waiting for the lease broadcast, has not heard of the stop
// (its heartbeat is late), so its ring breaks with units possibly leased to
// it that it never heard of. It joins again to hand them back, the
// coordinator refuses the join because the job is stopped, and the worker
// must leave cleanly with reason "stopped", not fail.
func TestRejoinIntoStoppedJobLeavesCleanly(t *testing.T) {
	c := newCluster(t, testSpec(4096, 8, 12, 2))
	var led ledger
	lead := &holdingLeases{held: make(chan struct{})}
	a := c.start("a", nodeOpts{ledger: &led, compute: time.Millisecond, wrap: func(co Coordinator) Coordinator {
		lead.Coordinator = co
		return lead
	}})
	waitMembers(t, c, 1, 20*time.Second)
	b := c.start("b", nodeOpts{ledger: &led, compute: time.Millisecond, wrap: func(co Coordinator) Coordinator { return lateStop{co} }})
	led.waitStep(t, 5, 60*time.Second)
	lead.hold.Store(true)
	select {
	case <-lead.held:
	case <-time.After(30 * time.Second):
		t.Fatal("rank 0 did not lease within 30 s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.c.Client(t).Stop(ctx, "test"); err != nil {
		t.Fatalf("stop: %v", err)
	}
	a.kill()
	b.wait(t, 60*time.Second)
	if b.err != nil || b.res.Reason != "stopped" {
		t.Fatalf("b ended with reason %q, err %v; want a clean stop", b.res.Reason, b.err)
	}
	st := status(t, c)
	if st.State != coordinator.JobStopped {
		t.Fatalf("the job is %s, want stopped", st.State)
	}
	for _, m := range st.Generation.Members {
		if m.Name == "b" {
			t.Fatalf("b is still a member after it left: %+v", st.Generation.Members)
		}
	}
}

// waitMembers waits until the job's generation has n members.
func waitMembers(t *testing.T, c *cluster, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for len(status(t, c).Generation.Members) < n {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d members after %v", n, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// delayedStop is a coordinator whose heartbeats carry the job's stop only
// delay after the first reply that said it: a worker whose heartbeat comes
// later than its peers'.
type delayedStop struct {
	Coordinator
	delay time.Duration
	first atomic.Int64 // unix nanoseconds of the first reply with Stop
}

func (d *delayedStop) Heartbeat(ctx context.Context, workerID, generation uint64) (*coordinator.HeartbeatReply, error) {
	rep, err := d.Coordinator.Heartbeat(ctx, workerID, generation)
	if rep != nil && rep.Stop {
		now := time.Now().UnixNano()
		d.first.CompareAndSwap(0, now)
		if time.Duration(now-d.first.Load()) < d.delay {
			cp := *rep
			cp.Stop = false
			rep = &cp
		}
	}
	return rep, err
}

// `vlp job stop` heard by one rank a second before the others: a job stop
// is joint, so no rank leaves alone (which would break the ring before
// rank 0 reports the last step). Every rank ends in the generation it
// trained in, at the same step, and the job keeps that step with a final
// checkpoint at it.
func TestJobStopHeardAtDifferentTimesIsJoint(t *testing.T) {
	spec := testSpec(1<<16, 4096, 12, 3) // units big enough that no lease comes for seconds
	spec.CheckpointEvery = 100000
	c := newCluster(t, spec)
	var led ledger
	ckpt := t.TempDir()
	late := func(co Coordinator) Coordinator { return &delayedStop{Coordinator: co, delay: time.Second} }
	var nodes []*node
	for _, n := range []struct {
		name string
		wrap func(Coordinator) Coordinator
	}{{"a", late}, {"b", late}, {"c", nil}} {
		nodes = append(nodes, c.start(n.name, nodeOpts{ledger: &led, ckptDir: ckpt, compute: time.Millisecond, wrap: n.wrap}))
		waitMembers(t, c, len(nodes), 20*time.Second)
	}
	led.waitStep(t, 10, 60*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.c.Client(t).Stop(ctx, "test"); err != nil {
		t.Fatalf("stop: %v", err)
	}
	for _, n := range nodes {
		n.wait(t, 30*time.Second)
		if n.err != nil || n.res.Reason != "stopped" || n.res.Generations != 1 || n.res.Step != nodes[0].res.Step {
			t.Fatalf("%s ended with %q at step %d after %d generation(s), err %v; a left at step %d: want every rank stopped together in its one generation",
				n.name, n.res.Reason, n.res.Step, n.res.Generations, n.err, nodes[0].res.Step)
		}
	}
	st := status(t, c)
	last := nodes[0].res.Step
	if st.State != coordinator.JobStopped || st.Step != last {
		t.Fatalf("after the stop the job is %s at step %d, want stopped at %d", st.State, st.Step, last)
	}
	if r := st.Generation.Restore; r == nil || r.Step != last {
		t.Fatalf("the job resumes from %+v, want the final checkpoint of step %d", r, last)
	}
}

// The only worker holding the job's state is stopped while a new one joins
// (the last old worker of a rolling upgrade): it finishes in its own
// generation and leaves without passing the state on, and the newcomer — a
// member all along, so the job never had zero members — holds nothing. The
// newcomer must not start the job over from the seed (training its pairs
// again on fresh parameters): the job goes back to its latest checkpoint and
// the newcomer restores it.
func TestHolderLeavesBeforeNewcomerSyncs(t *testing.T) {
	c := newCluster(t, testSpec(1<<16, 8, 12, 1)) // a checkpoint every 5 steps
	var led ledger
	ckpt := t.TempDir()
	// Every checkpoint record waits 1.5 s: the final one keeps the stopped
	// worker in its finish while the newcomer joins.
	a := c.start("a", nodeOpts{ledger: &led, ckptDir: ckpt, compute: time.Millisecond, recordDelay: 1500 * time.Millisecond})
	deadline := time.Now().Add(60 * time.Second)
	verified := func() bool {
		for _, ck := range status(t, c).Checkpoints {
			if ck.Status == coordinator.CheckpointVerified {
				return true
			}
		}
		return false
	}
	for !verified() {
		if time.Now().After(deadline) {
			t.Fatal("no verified checkpoint within 60 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.w.Stop()
	time.Sleep(400 * time.Millisecond) // a publishes the stop and waits in its final record
	b := c.start("b", nodeOpts{ledger: &led, ckptDir: ckpt, compute: time.Millisecond})
	a.wait(t, 30*time.Second)
	stopped := a.res.Step
	led.waitWorker(t, "b", 30*time.Second)
	led.waitStep(t, led.maxStep()+20, 30*time.Second)
	b.w.Stop()
	waitAll(t, 30*time.Second, a, b)
	if first := led.firstStep("b"); first <= 1 {
		t.Fatalf("b's first step is %d (a stopped at %d): it started the job over from the seed instead of a checkpoint", first, stopped)
	}
	for id, n := range led.consumed(t, []string{"b", "a"}, b.res.Step, 8) {
		if n != 1 {
			t.Fatalf("pair %d consumed %d times", id, n)
		}
	}
}
