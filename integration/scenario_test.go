package integration

import (
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2evlp/vlp/coordinator"
)

// Every scenario states its bound: the longest it may take for the system to recover, and the
// longest the whole scenario may run. Times measured on the 2-core development VM are in
// docs/reliability.md.

// long skips a scenario in -short runs (make test); make chaos runs it.
func long(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("a long scenario: make chaos runs it")
	}
}

// training waits until every named worker is a member of a ready generation and the job has
// committed at least one step beyond from.
func training(c *Cluster, d time.Duration, from uint64, names ...string) (*coordinator.JobStatus, time.Duration) {
	c.t.Helper()
	return c.WaitStatus(d, "training with "+joinNames(names), func(st *coordinator.JobStatus) bool {
		m := Members(st)
		for _, n := range names {
			if !slices.Contains(m, n) {
				return false
			}
		}
		return st.Generation.Ready && st.Step > from
	})
}

func joinNames(names []string) string {
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ","
		}
		out += n
	}
	return out
}

// finished waits for the job to complete and every worker to exit.
func finished(t *testing.T, c *Cluster, d time.Duration) *coordinator.JobStatus {
	t.Helper()
	st, _ := c.WaitStatus(d, "the job to complete", func(st *coordinator.JobStatus) bool { return st.State == coordinator.JobCompleted })
	for _, p := range c.Workers {
		if exited, _ := p.Wait(20 * time.Second); !exited {
			t.Errorf("%s did not exit after the job completed\n%s", p.Name, p.Tail(1500))
		}
	}
	return st
}

// exactlyOnce checks the invariant over the workers' commit logs: every pair of the epoch in
// exactly one committed step of the surviving timeline.
func exactlyOnce(t *testing.T, c *Cluster, pairs int) Tally {
	t.Helper()
	tally, err := TallyCommits(c.CommitLogs(), pairs, 12, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tally: %v", tally)
	if tally.Duplicated != 0 || tally.Missing != 0 || tally.Once != pairs {
		t.Errorf("exactly once violated: %v (want %d pairs once)", tally, pairs)
	}
	return tally
}

// TestKilledWorker: one of three workers is killed with SIGKILL mid-epoch. Bound: the survivors
// commit again within 10 s (lease TTL 1 s); the epoch completes with every pair once, the
// killed worker's last committed share included; the restarted worker rejoins.
func TestKilledWorker(t *testing.T) {
	long(t)
	const pairs = 2400
	c := NewCluster(t, Binary(t), Options{Spec: LinearSpec(pairs)})
	st, _ := training(c, 60*time.Second, 0, "w1", "w2", "w3")
	victim := c.Workers["w2"]
	victim.Kill()
	killedAt := st.Step
	t0 := time.Now()
	_, took := c.WaitStatus(10*time.Second, "the survivors to commit without w2", func(s *coordinator.JobStatus) bool {
		return !slices.Contains(Members(s), "w2") && s.Step > killedAt+1
	})
	t.Logf("killed w2 at step ~%d; survivors committed again after %v", killedAt, took.Round(time.Millisecond))
	c.StartWorker("w2")
	_, took = training(c, 30*time.Second, 0, "w1", "w2", "w3")
	t.Logf("restarted w2 rejoined and trains %v after the kill", time.Since(t0).Round(time.Millisecond))
	finished(t, c, 120*time.Second)
	exactlyOnce(t, c, pairs)
}

// TestCheckpointsAfterRankZeroMoves (issue 15, finding 1): rank 0 is frozen (SIGSTOP) until the
// coordinator declares it dead; the new rank 0, another process on another host, must write and
// record a checkpoint within one interval (10 steps; bound 15 s), and `vlp checkpoint ls` must
// read the shared store during the run. Before the fix the frozen process held the bbolt lock
// between writes: the new rank 0 logged "store is locked" at every checkpoint step and `ls`
// failed for the whole run.
func TestCheckpointsAfterRankZeroMoves(t *testing.T) {
	const pairs = 3600
	c := NewCluster(t, Binary(t), Options{Spec: LinearSpec(pairs)})
	st, _ := c.WaitStatus(60*time.Second, "a first checkpoint with three workers", func(s *coordinator.JobStatus) bool {
		return len(s.Generation.Members) == 3 && LatestCheckpoint(s) != nil && LatestCheckpoint(s).Status == coordinator.CheckpointVerified
	})
	store := c.Opts.CheckpointDir + "/checkpoints.db"
	if out, err := c.CLI("c1", 20*time.Second, "checkpoint", "ls", "--store", store); err != nil {
		t.Errorf("vlp checkpoint ls during the run: %v\n%s", err, out)
	}
	rank0 := c.Workers[st.Generation.Members[0].Name]
	if err := rank0.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	st, took := c.WaitStatus(15*time.Second, "training without the frozen rank 0", func(s *coordinator.JobStatus) bool {
		return s.Generation.Ready && len(s.Generation.Members) == 2 && !slices.Contains(Members(s), rank0.Name)
	})
	t.Logf("froze rank 0 (%s); new generation without it after %v", rank0.Name, took.Round(time.Millisecond))
	from := st.Step
	st, took = c.WaitStatus(15*time.Second, "a checkpoint by the new rank 0", func(s *coordinator.JobStatus) bool {
		ck := LatestCheckpoint(s)
		return ck != nil && ck.Step > from && ck.Status == coordinator.CheckpointVerified
	})
	t.Logf("new rank 0 (%s) recorded checkpoint step %d %v after the new generation (%v after the freeze)",
		st.Generation.Members[0].Name, LatestCheckpoint(st).Step, took.Round(time.Millisecond), time.Since(paused).Round(time.Millisecond))
	if out, err := c.CLI("c1", 20*time.Second, "checkpoint", "ls", "--store", store); err != nil {
		t.Errorf("vlp checkpoint ls while rank 0 is frozen: %v\n%s", err, out)
	}
	if err := rank0.Resume(); err != nil {
		t.Fatal(err)
	}
	from = st.Step
	training(c, 30*time.Second, from, rank0.Name)
	st, took = c.WaitStatus(20*time.Second, "a checkpoint after the old rank 0 rejoined", func(s *coordinator.JobStatus) bool {
		ck := LatestCheckpoint(s)
		return ck != nil && ck.Step > from+10 && ck.Status == coordinator.CheckpointVerified
	})
	t.Logf("thawed %s rejoined; checkpoint step %d recorded", rank0.Name, LatestCheckpoint(st).Step)
	finished(t, c, 120*time.Second)
	exactlyOnce(t, c, pairs)
	for _, p := range c.Workers {
		if n := countLines(p.Log(), "store is locked"); n > 0 {
			t.Errorf("%s logged %d locked-store failures", p.Name, n)
		}
	}
}

// TestStallAfterCoordinatorRestart (issue 15, finding 2): the coordinator (with the embedded
// NATS server the ring runs over) is killed with SIGKILL and restarted 5 s later on its data
// dir. Frames in flight are lost while the ranks' heartbeats flow again, so a step can wait
// forever. With the default timeouts the ring must commit again within 15 s of the restart (a
// worker abandons its step when its NATS connection reconnects), and a SIGTERM sent to one worker
// during the stall must end it within 15 s. Before the fix the step timeout was 5 minutes, the
// ring stalled that long, silently, and a SIGTERM did nothing until it expired.
func TestStallAfterCoordinatorRestart(t *testing.T) {
	const pairs = 3600
	c := NewCluster(t, Binary(t), Options{Spec: LinearSpec(pairs)})
	st, _ := training(c, 60*time.Second, 20, "w1", "w2", "w3")
	coord := c.Coords[0]
	coord.Kill()
	killedAt := st.Step
	time.Sleep(5 * time.Second)
	coord.Restart(t)
	restarted := time.Now()
	// A SIGTERM while the ring may be stuck.
	time.Sleep(time.Second)
	term := c.Workers["w3"]
	if err := term.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	termAt := time.Now()
	if exited, _ := term.Wait(15 * time.Second); !exited {
		t.Errorf("w3 did not exit within 15 s of SIGTERM\n%s", term.Tail(3000))
	} else {
		t.Logf("w3 exited %v after SIGTERM", time.Since(termAt).Round(time.Millisecond))
	}
	c.WaitStatus(15*time.Second-time.Since(restarted), "a step committed within 15 s of the restart", func(s *coordinator.JobStatus) bool {
		return s.Step > killedAt+2 && s.Generation.Ready
	})
	t.Logf("coordinator killed at step ~%d, restarted after 5 s; a step committed %v after the restart", killedAt, time.Since(restarted).Round(time.Millisecond))
	c.StartWorker("w3")
	finished(t, c, 180*time.Second)
	exactlyOnce(t, c, pairs)
}

// TestStepTimeoutWhenNATSServerFreezes (issue 15, finding 2): the coordinator and its embedded
// NATS server are frozen (SIGSTOP) for 12 s: the workers' connections stay open, nothing
// reconnects, so only the step timeout (5 s here) can end the step. A worker must log the timeout
// within 10 s of the freeze; after the thaw the ring must commit again within 30 s and finish the
// epoch with every pair once.
func TestStepTimeoutWhenNATSServerFreezes(t *testing.T) {
	long(t)
	const pairs = 3600
	c := NewCluster(t, Binary(t), Options{Spec: LinearSpec(pairs), WorkerArgs: []string{"--step-timeout", "5s"}})
	st, _ := training(c, 60*time.Second, 20, "w1", "w2", "w3")
	coord := c.Coords[0]
	if err := coord.Pause(); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	logged := time.Duration(0)
	for time.Since(frozen) < 12*time.Second {
		if logged == 0 {
			for _, p := range c.Workers {
				if strings.Contains(p.Log(), "step timed out") {
					logged = time.Since(frozen)
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := coord.Resume(); err != nil {
		t.Fatal(err)
	}
	if logged == 0 || logged > 10*time.Second {
		t.Errorf("no worker logged a step timeout within 10 s of the freeze (%v)", logged)
	}
	t.Logf("froze the coordinator at step ~%d; a step timeout was logged %v later", st.Step, logged.Round(time.Millisecond))
	_, took := c.WaitStatus(30*time.Second, "a step after the thaw", func(s *coordinator.JobStatus) bool {
		return s.Step > st.Step+2 && s.Generation.Ready
	})
	t.Logf("thawed after 12 s; a step committed %v later", took.Round(time.Millisecond))
	finished(t, c, 180*time.Second)
	exactlyOnce(t, c, pairs)
}

// TestDefaultStepTimeout: the default step timeout is well under a minute, and the worker says
// which it uses when it joins.
func TestDefaultStepTimeout(t *testing.T) {
	c := NewCluster(t, Binary(t), Options{Workers: 1, Spec: LinearSpec(240)})
	finished(t, c, 60*time.Second)
	log := c.Workers["w1"].Log()
	m := regexp.MustCompile(`step_timeout=(\S+)`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("w1 did not log its step timeout\n%s", c.Workers["w1"].Tail(2000))
	}
	d, err := time.ParseDuration(m[1])
	if err != nil || d <= 0 || d > 30*time.Second {
		t.Fatalf("default step timeout %q, want at most 30 s", m[1])
	}
}

// TestSubmitChecksDatasetAndReplaces (issue 15, findings 4 and 6): `vlp job submit` refuses a
// spec whose dataset does not exist; a spec submitted anyway (--skip-data-check, as from a host
// that does not see the data) whose workers fail can be replaced by a corrected one, which
// `vlp job init --data` writes from a shard directory. Before the fix the bad spec was accepted
// and the corrected one refused with job_exists. Bound: 60 s.
func TestSubmitChecksDatasetAndReplaces(t *testing.T) {
	c := NewCluster(t, Binary(t), Options{Workers: 1, NoSubmit: true})
	bad := `name: itest
dataset: {manifest: /nonexistent/shards/manifest.json, sha256: "` + strings.Repeat("0", 64) + `"}
model: tiny
global_batch: 8
units: {pairs: 100, per_unit: 10}
options: {vocab: /nonexistent/vocab.txt, vocab_sha256: "` + strings.Repeat("0", 64) + `"}
`
	out, err := c.Submit(bad)
	if err == nil || !strings.Contains(out, "/nonexistent/shards/manifest.json") {
		t.Fatalf("submit of a spec whose dataset does not exist: err %v, output:\n%s", err, out)
	}
	if st, err := c.Status(); err != nil || st.Job != nil {
		t.Fatalf("after a refused submit: job %v, err %v", st.Job, err)
	}
	if out, err := c.Submit(bad, "--skip-data-check"); err != nil {
		t.Fatalf("submit --skip-data-check: %v\n%s", err, out)
	}
	w := c.StartWorker("w1")
	if exited, err := w.Wait(60 * time.Second); !exited || err == nil {
		t.Fatalf("a worker of a job whose dataset does not exist: exited %v, err %v\n%s", exited, err, w.Tail(2000))
	}

	// The operator's way out: a job.yaml written from the shards, submitted in its place.
	shards := c.Dir + "/shards"
	for _, args := range [][]string{
		{"data", "synth", "--out", c.Dir + "/world", "--images", "24"},
		{"shard", "build", "--coco", c.Dir + "/world/coco", "--vg", c.Dir + "/world/vg", "--out", shards, "--quiet"},
		{"job", "init", "--data", shards, "--out", c.Dir + "/run/job.yaml", "--name", "itest", "--global-batch", "8"},
	} {
		if out, err := c.CLI("c1", 60*time.Second, args...); err != nil {
			t.Fatalf("vlp %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	out, err = c.CLI("c1", 30*time.Second, "job", "submit", c.Dir+"/run/job.yaml")
	if err != nil {
		t.Fatalf("submit of the job.yaml vlp job init wrote, replacing the failed job: %v\n%s", err, out)
	}
	st, err := c.Status()
	if err != nil || st.Job == nil || st.Job.Dataset.Manifest != shards+"/manifest.json" || st.State != coordinator.JobRunning {
		t.Fatalf("after the replacement: %+v, err %v", st, err)
	}
	t.Logf("replaced: %s", strings.TrimSpace(out))
}

// TestPartitionedWorkerHeals: w2's link goes down for 5 s, five lease TTLs. Bounds: the
// survivors commit without it within 10 s; after the link is up again w2 is a member that
// trains within 30 s (it finds itself declared dead and joins again, keeping its parameters);
// the epoch ends with every pair once.
func TestPartitionedWorkerHeals(t *testing.T) {
	long(t)
	const pairs = 4800
	c := NewCluster(t, Binary(t), Options{Spec: LinearSpec(pairs)})
	st, _ := training(c, 60*time.Second, 20, "w1", "w2", "w3")
	h := c.Net.Host("w2")
	if err := h.LinkDown(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.LinkUp() })
	cut := st.Step
	_, took := c.WaitStatus(10*time.Second, "the survivors to commit without w2", func(s *coordinator.JobStatus) bool {
		return !slices.Contains(Members(s), "w2") && s.Generation.Ready && s.Step > cut+1
	})
	t.Logf("w2 cut off at step ~%d; survivors committed without it after %v", cut, took.Round(time.Millisecond))
	time.Sleep(5*time.Second - took)
	if err := h.LinkUp(); err != nil {
		t.Fatal(err)
	}
	st, _ = c.WaitStatus(3*time.Second, "a status", func(*coordinator.JobStatus) bool { return true })
	_, took = training(c, 30*time.Second, st.Step, "w1", "w2", "w3")
	t.Logf("link up after 5 s; w2 trains again after %v", took.Round(time.Millisecond))
	finished(t, c, 120*time.Second)
	exactlyOnce(t, c, pairs)
}

// TestStopTakesFinalCheckpointAndResumes (issue 15, finding 3): `vlp job stop` mid-epoch. Bounds:
// every worker exits cleanly within 20 s; the status keeps the last committed step and names a
// checkpoint at exactly that step; `vlp job resume` and restarted workers finish the epoch with
// every pair once over both runs. Before the fix rank 0 failed its lease with job_not_running and
// exited with an error, no final checkpoint was written, and the status went back to the previous
// checkpoint; re-submitting printed "stopped".
func TestStopTakesFinalCheckpointAndResumes(t *testing.T) {
	const pairs = 3600
	c := NewCluster(t, Binary(t), Options{Spec: LinearSpec(pairs)})
	training(c, 60*time.Second, 25, "w1", "w2", "w3")
	stopped := time.Now()
	if out, err := c.CLI("c1", 30*time.Second, "job", "stop"); err != nil {
		t.Fatalf("vlp job stop: %v\n%s", err, out)
	}
	for _, p := range c.Workers {
		exited, err := p.Wait(20 * time.Second)
		if !exited || err != nil {
			t.Fatalf("%s after vlp job stop: exited %v, err %v\n%s", p.Name, exited, err, p.Tail(3000))
		}
	}
	t.Logf("every worker left %v after vlp job stop", time.Since(stopped).Round(time.Millisecond))
	for _, p := range c.Workers {
		t.Logf("%s: %s", p.Name, lastLine(p.Log()))
	}
	st, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	last, err := TallyCommits(c.CommitLogs(), pairs, 12, 0)
	if err != nil {
		t.Fatal(err)
	}
	ck := LatestCheckpoint(st)
	if st.State != coordinator.JobStopped || ck == nil || ck.Step != st.Step || st.Step != uint64(last.Steps) {
		t.Fatalf("after the stop: state %s, step %d, latest checkpoint %+v, steps committed %d; want stopped with a checkpoint at the last committed step",
			st.State, st.Step, ck, last.Steps)
	}
	t.Logf("stopped at step %d with a final checkpoint there", st.Step)
	if out, err := c.CLI("c1", 30*time.Second, "job", "resume"); err != nil || !strings.Contains(out, "running") {
		t.Fatalf("vlp job resume: %v\n%s", err, out)
	}
	for _, name := range []string{"w1", "w2", "w3"} {
		c.StartWorker(name)
	}
	finished(t, c, 120*time.Second)
	exactlyOnce(t, c, pairs)
}

// TestDiskFullDuringCheckpoint: the shared checkpoint directory is a 3 MiB filesystem and a
// checkpoint of the model takes about 1.2 MiB, so the store fills up after the first one or
// two. Training must go on (bound: 20 more steps within 30 s of the first failed write), the
// failed checkpoints must not be recorded, rank 0 must log why, and the epoch must end with
// every pair once.
func TestDiskFullDuringCheckpoint(t *testing.T) {
	long(t)
	const pairs = 2400
	dir := t.TempDir() + "/small"
	SmallDisk(t, dir, "3m")
	spec := strings.Replace(LinearSpec(pairs), `dim: "64"`, `dim: "100000"`, 1)
	c := NewCluster(t, Binary(t), Options{Spec: spec, CheckpointDir: dir})
	var failedAt time.Time
	st, took := c.WaitStatus(90*time.Second, "a checkpoint write failing for lack of space", func(s *coordinator.JobStatus) bool {
		for _, p := range c.Workers {
			if strings.Contains(p.Log(), "no space left on device") {
				failedAt = time.Now()
				return true
			}
		}
		return false
	})
	t.Logf("a checkpoint write failed for lack of space after %v, at step ~%d", took.Round(time.Millisecond), st.Step)
	ck := LatestCheckpoint(st)
	from := st.Step
	st, _ = c.WaitStatus(30*time.Second, "20 more steps", func(s *coordinator.JobStatus) bool { return s.Step >= from+20 })
	t.Logf("training went on: step %d %v after the failure", st.Step, time.Since(failedAt).Round(time.Millisecond))
	finished(t, c, 120*time.Second)
	exactlyOnce(t, c, pairs)
	st, _ = c.Status()
	recorded := LatestCheckpoint(st)
	if ck != nil && recorded != nil {
		t.Logf("latest recorded checkpoint: step %d (before the disk filled: step %d)", recorded.Step, ck.Step)
	}
	n := 0
	for _, p := range c.Workers {
		n += countLines(p.Log(), "write (not recorded)")
	}
	if n == 0 {
		t.Errorf("no worker logged a checkpoint write that was not recorded")
	}
	if out, err := c.CLI("c1", 20*time.Second, "checkpoint", "verify", "--store", dir+"/checkpoints.db"); err != nil {
		t.Errorf("vlp checkpoint verify after the disk filled: %v\n%s", err, out)
	}
}
