package worker

import (
	"context"
	"testing"
	"time"

	"github.com/e2evlp/vlp/coordinator"
)

// Fixed seed and world size: two runs end with bitwise-identical parameters.
func TestDeterministicRuns(t *testing.T) {
	run := func() []float32 {
		c := newCluster(t, testSpec(4096, 8, 12, 2))
		a := c.start("a", nodeOpts{maxSteps: 15})
		b := c.start("b", nodeOpts{maxSteps: 15})
		waitAll(t, 60*time.Second, a, b)
		if !bitsEqual(a.learner.Params(), b.learner.Params()) {
			t.Fatal("the two ranks of one run differ")
		}
		return a.learner.Params()
	}
	if p, q := run(), run(); !bitsEqual(p, q) {
		t.Fatalf("two runs differ:\n%v\n%v", p, q)
	}
}

// A whole epoch, with a global batch that does not divide the units: every
// pair is consumed exactly once and the job completes.
func TestEpochExactlyOnce(t *testing.T) {
	const pairs = 203
	c := newCluster(t, testSpec(pairs, 8, 12, 2))
	var led ledger
	a := c.start("a", nodeOpts{ledger: &led})
	b := c.start("b", nodeOpts{ledger: &led})
	waitAll(t, 60*time.Second, a, b)
	for _, n := range []*node{a, b} {
		if n.res.Reason != "complete" {
			t.Fatalf("%s ended with %q at step %d, want complete", n.name, n.res.Reason, n.res.Step)
		}
	}
	checkExactlyOnce(t, led.consumed(t, []string{"a", "b"}, a.res.Step, 8), pairs)
}

func status(t *testing.T, c *cluster) *coordinator.JobStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.c.Client(t).Status(ctx)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return st
}

// A worker killed mid-run (no leave, connection cut): the survivors carry on
// in a new generation within a bounded time, and the epoch is still consumed
// exactly once.
func TestKilledWorkerSurvivorsContinue(t *testing.T) {
	const pairs = 600
	c := newCluster(t, testSpec(pairs, 8, 12, 2))
	var led ledger
	o := nodeOpts{ledger: &led, compute: 2 * time.Millisecond}
	a, b, k := c.start("a", o), c.start("b", o), c.start("k", o)
	led.waitWorker(t, "k", 30*time.Second)
	led.waitStep(t, led.maxStep()+3, 30*time.Second)
	at := led.maxStep()
	killed := time.Now()
	k.kill()
	led.waitStep(t, at+2, 30*time.Second)
	t.Logf("survivors committed step %d %v after the kill (at step %d)", at+2, time.Since(killed).Round(time.Millisecond), at)
	waitAll(t, 90*time.Second, a, b)
	if a.res.Reason != "complete" || b.res.Reason != "complete" {
		t.Fatalf("survivors ended with %q / %q", a.res.Reason, b.res.Reason)
	}
	if a.res.Generations < 2 {
		t.Fatalf("survivor a trained in %d generations; the kill should have made a new one", a.res.Generations)
	}
	checkExactlyOnce(t, led.consumed(t, []string{"a", "b"}, a.res.Step, 8), pairs)
	if !bitsEqual(a.learner.Params(), b.learner.Params()) {
		t.Fatal("survivors hold different parameters")
	}
}

// A worker joining mid-run receives the parameters by broadcast, joins the
// ring, and the epoch is still consumed exactly once. Without server names it
// joins at the end of the ring; when it shares rank 0's NATS server it enters
// right after rank 0, moving the other member up a rank: every step of the
// three keeps the members of one server adjacent.
func TestJoinMidRun(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		serverA, serverB, newer string
	}{{"appended", "", "", ""}, {"next to its server", "s1", "s2", "s1"}} {
		t.Run(tc.name, func(t *testing.T) { testJoinMidRun(t, tc.serverA, tc.serverB, tc.newer) })
	}
}

func testJoinMidRun(t *testing.T, serverA, serverB, serverN string) {
	const pairs = 480
	c := newCluster(t, testSpec(pairs, 8, 12, 2))
	var led ledger
	var book serverBook
	o := nodeOpts{ledger: &led, compute: 2 * time.Millisecond, servers: &book}
	oa, ob, on := o, o, o
	oa.server, ob.server, on.server = serverA, serverB, serverN
	a := c.start("a", oa)
	for deadline := time.Now().Add(30 * time.Second); len(status(t, c).Generation.Members) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a did not join within 30s")
		}
	}
	b := c.start("b", ob) // rank 1, after a
	led.waitStep(t, 6, 30*time.Second)
	n := c.start("n", on)
	waitAll(t, 90*time.Second, a, b, n)
	if n.res.Generations < 1 || n.res.Reason != "complete" {
		t.Fatalf("newcomer: %+v", n.res)
	}
	led.mu.Lock()
	joinedAt := uint64(0)
	for s := uint64(1); s <= a.res.Step; s++ {
		if _, ok := led.steps[s]["n"]; ok {
			joinedAt = s
			break
		}
	}
	led.mu.Unlock()
	if joinedAt == 0 || joinedAt <= 6 {
		t.Fatalf("the newcomer committed its first step at %d; want a step after 6", joinedAt)
	}
	t.Logf("newcomer's first committed step: %d of %d", joinedAt, a.res.Step)
	threes := 0
	for s := joinedAt; s <= a.res.Step; s++ {
		r := led.steps[s]["n"].Ranks
		if len(r) != 3 {
			continue
		}
		threes++
		var order []string
		for _, rc := range r {
			order = append(order, book.of(rc.Worker))
		}
		if serverN != "" && !adjacentByServer(order) {
			t.Fatalf("step %d: the ring's servers are %q: members of one server are not adjacent", s, order)
		}
	}
	if threes == 0 {
		t.Fatal("no step was committed by all three members")
	}
	checkExactlyOnce(t, led.consumed(t, []string{"a", "b", "n"}, a.res.Step, 8), pairs)
	if !bitsEqual(a.learner.Params(), n.learner.Params()) || !bitsEqual(a.learner.Params(), b.learner.Params()) {
		t.Fatalf("members hold different parameters: a %+v, b %+v, n %+v", a.res, b.res, n.res)
	}
}

// adjacentByServer reports whether every server's members form one run.
func adjacentByServer(order []string) bool {
	seen := map[string]bool{}
	for i, s := range order {
		if i > 0 && order[i-1] == s {
			continue
		}
		if seen[s] {
			return false
		}
		seen[s] = true
	}
	return true
}
