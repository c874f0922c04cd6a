package worker

import (
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
	count := led.consumed(t, []string{"a2", "b2", "a", "b"}, steps, 8)
	for id, n := range count {
		if n != 1 {
			t.Errorf("pair %d consumed %d times", id, n)
		}
	}
	if len(count) != steps*12 {
		t.Errorf("%d pairs consumed in %d steps of 12", len(count), steps)
	}
}
