package worker

import (
	"fmt"
	"testing"
	"time"

	"github.com/e2evlp/vlp/checkpoint"
	"github.com/e2evlp/vlp/coordinator"
)

// A run whose every process dies at some step — workers killed, then the
// coordinator too — resumes from the latest checkpoint when the coordinator
// restarts on its data dir, and ends bitwise-identical to a run never
// interrupted; every pair up to the end is consumed exactly once.
//
// With corrupt set, a bit of the checkpoint the coordinator names is flipped
// first: the restoring worker detects it, reports it, and the job resumes
// from the previous checkpoint, still bitwise-identical in the end.
func TestResumeAfterEverythingDies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt bool
	}{{"latest", false}, {"latest-corrupt", true}} {
		t.Run(tc.name, func(t *testing.T) { testResume(t, tc.corrupt) })
	}
}

func testResume(t *testing.T, corrupt bool) {
	const steps = 24
	spec := testSpec(4096, 8, 12, 2)

	// The uninterrupted run.
	c0 := newCluster(t, spec)
	a0 := c0.start("a", nodeOpts{maxSteps: steps, ckptDir: t.TempDir()})
	b0 := c0.start("b", nodeOpts{maxSteps: steps, ckptDir: t.TempDir()})
	waitAll(t, 60*time.Second, a0, b0)
	want := a0.learner.Params()

	// The interrupted one.
	c := newCluster(t, spec, coordinator.WithTCP())
	dir := t.TempDir()
	var led ledger
	o := nodeOpts{maxSteps: steps, ckptDir: dir, ledger: &led, compute: 3 * time.Millisecond}
	a, b := c.start("a", o), c.start("b", o)
	led.waitStep(t, 13, 30*time.Second)
	a.kill()
	b.kill()
	a.wait(t, 30*time.Second)
	b.wait(t, 30*time.Second)
	killedAt := led.maxStep()

	// The coordinator declares both dead and falls back to the checkpoint.
	deadline := time.Now().Add(20 * time.Second)
	var st *coordinator.JobStatus
	for {
		st = status(t, c)
		if len(st.Generation.Members) == 0 && st.Generation.Restore != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the coordinator did not fall back to a checkpoint: %+v", st.Generation)
		}
		time.Sleep(50 * time.Millisecond)
	}
	restoreAt := st.Generation.Restore.Step
	if restoreAt == 0 || restoreAt > killedAt || restoreAt%uint64(spec.CheckpointEvery) != 0 {
		t.Fatalf("restore point step %d after a kill at step %d", restoreAt, killedAt)
	}
	if corrupt {
		path, id, err := ParseLocation(st.Generation.Restore.Location)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkpoint.CorruptTensor(path, id, checkpoint.GroupParams, "linear.weight"); err != nil {
			t.Fatal(err)
		}
	}
	srv := c.c.Leader(t)
	i := c.c.Kill(srv)
	restarted := time.Now()
	c.c.Restart(t, i)

	a2, b2 := c.start("a2", o), c.start("b2", o)
	led.waitWorker(t, "a2", 60*time.Second)
	t.Logf("killed at step %d, restore point step %d (corrupt: %v); first resumed step %v after the coordinator restart",
		killedAt, restoreAt, corrupt, time.Since(restarted).Round(time.Millisecond))
	first := led.firstStep("a2")
	wantFirst := restoreAt + 1
	if corrupt {
		// The corrupt checkpoint was reported and the one before it used.
		wantFirst = restoreAt - uint64(spec.CheckpointEvery) + 1
	}
	if first != wantFirst {
		t.Fatalf("the resumed run's first step is %d, want %d", first, wantFirst)
	}
	waitAll(t, 60*time.Second, a2, b2)
	if a2.res.Step != steps {
		t.Fatalf("resumed run ended at step %d (%q)", a2.res.Step, a2.res.Reason)
	}
	if got := a2.learner.Params(); !bitsEqual(got, want) {
		t.Fatalf("resumed run differs from the uninterrupted one:\n%v\n%v", got, want)
	}
	checkStepsOnce(t, led.consumed(t, []string{"a2", "b2", "a", "b"}, steps, 8), steps, 12)
}

// Training that stops at MaxSteps on a checkpoint step (so the last
// checkpoint is still being written in the background when the step ends)
// leaves the job at exactly that step: every worker leaves only once it is
// recorded, and a second run resumes at the next step, consuming every
// pair exactly once over both runs.
func TestStopAtMaxStepsThenResume(t *testing.T) {
	const first, second = 20, 30
	spec := testSpec(4096, 8, 12, 2) // checkpoints every 5 steps: step 20 is one
	c := newCluster(t, spec)
	var led ledger
	o := nodeOpts{maxSteps: first, ckptDir: t.TempDir(), ledger: &led, recordDelay: 700 * time.Millisecond}
	a, b := c.start("a", o), c.start("b", o)
	waitAll(t, 60*time.Second, a, b)
	if a.res.Step != first || b.res.Step != first {
		t.Fatalf("the runs stopped at steps %d and %d (%q, %q), want %d", a.res.Step, b.res.Step, a.res.Reason, b.res.Reason, first)
	}
	st := status(t, c)
	if st.Generation.Restore == nil || st.Generation.Restore.Step != first {
		t.Fatalf("after both left the job resumes from %+v, want the checkpoint of step %d", st.Generation.Restore, first)
	}
	// Every checkpoint was recorded although each became durable only
	// after later steps had been reported; the job keeps the newest three.
	var verified []uint64
	for _, r := range st.Checkpoints {
		if r.Status == coordinator.CheckpointVerified {
			verified = append(verified, r.Step)
		}
	}
	if want := []uint64{10, 15, 20}; fmt.Sprint(verified) != fmt.Sprint(want) {
		t.Fatalf("verified checkpoints at steps %v, want %v", verified, want)
	}

	o.maxSteps = second
	a2, b2 := c.start("a2", o), c.start("b2", o)
	waitAll(t, 60*time.Second, a2, b2)
	if got := led.firstStep("a2"); got != first+1 {
		t.Fatalf("the second run began at step %d, want %d", got, first+1)
	}
	if a2.res.Step != second {
		t.Fatalf("the second run ended at step %d (%q), want %d", a2.res.Step, a2.res.Reason, second)
	}
	checkStepsOnce(t, led.consumed(t, []string{"a", "b", "a2", "b2"}, second, 8), second, 12)
}

// checkStepsOnce asserts that steps steps of batch pairs each consumed
// steps·batch distinct pairs, each exactly once.
func checkStepsOnce(t *testing.T, count map[uint64]int, steps uint64, batch int) {
	t.Helper()
	for id, n := range count {
		if n != 1 {
			t.Errorf("pair %d consumed %d times", id, n)
		}
	}
	if uint64(len(count)) != steps*uint64(batch) {
		t.Errorf("%d pairs consumed in %d steps of %d", len(count), steps, batch)
	}
}
