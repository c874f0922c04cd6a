package checkpoint

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// The kill test re-executes this test binary as a child that writes a
// checkpoint; TestMain turns the child into that writer.
const (
	childEnv  = "VLP_CHECKPOINT_CHILD" // "hold" or "commit"
	childPath = "VLP_CHECKPOINT_CHILD_PATH"
	childSize = 48 << 20 // bytes of parameters the child writes
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(childWriter(mode, os.Getenv(childPath)))
	}
	os.Exit(m.Run())
}

// childWriter saves testSnapshot(2, 20, childSize) and announces on stdout
// when the transaction is about to commit. In "hold" mode it then stops
// there forever; in "commit" mode it lets bbolt write and fsync, and
// announces DONE afterwards. Either way it waits to be killed.
func childWriter(mode, path string) int {
	s, err := Open(path, Options{Keep: 3})
	if err != nil {
		fmt.Println("ERR", err)
		return 2
	}
	s.beforeCommit = func() {
		fmt.Println("COMMITTING")
		if mode == "hold" {
			waitForKill()
		}
	}
	if _, err := s.Save(testSnapshot(2, 20, childSize)); err != nil {
		fmt.Println("ERR", err)
		return 2
	}
	fmt.Println("DONE")
	waitForKill()
	return 0
}

// waitForKill blocks until the process is killed. (A bare select{} would be
// reported as a deadlock and end the process by itself.)
func waitForKill() {
	for {
		time.Sleep(time.Hour)
	}
}

// TestKillDuringWrite kills a process writing a checkpoint with SIGKILL, at
// points from before the commit to the middle of bbolt's page writes and
// fsync, and checks that the previous checkpoint is intact and that the new
// one is either wholly there or wholly absent. The first run lets the commit
// finish to measure how long it takes; the kills land at fractions of that.
func TestKillDuringWrite(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	prev := testSnapshot(1, 10, 1<<20)
	next := testSnapshot(2, 20, childSize)
	commit := runKilledWriter(t, exe, prev, next, "commit", -1)
	t.Logf("a %d MB commit took %v", childSize>>20, commit)
	runKilledWriter(t, exe, prev, next, "hold", 0)
	for _, frac := range []float64{0, 0.1, 0.25, 0.5, 0.75, 0.9} {
		runKilledWriter(t, exe, prev, next, "commit", time.Duration(frac*float64(commit)))
	}
}

// runKilledWriter saves prev, runs a child that writes next in the given
// mode, kills it delay after it announced the commit (with delay < 0: after
// it reported the checkpoint durable) and checks the store. It returns the
// time from the announcement to the child's DONE (0 if it was killed first).
func runKilledWriter(t *testing.T, exe string, prev, next *Snapshot, mode string, delay time.Duration) time.Duration {
	var commit time.Duration
	name := fmt.Sprintf("%s, killed %v after the commit began", mode, delay)
	if delay < 0 {
		name = mode + ", killed once durable"
	}
	t.Run(name, func(t *testing.T) {
		path := t.TempDir() + "/ckpt.db"
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		prevID := mustSave(t, s, prev).ID
		s.Close()

		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+mode, childPath+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killed := false
		kill := func() {
			if !killed {
				killed = true
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Error(err)
				}
				cmd.Wait()
			}
		}
		defer kill()
		lines := make(chan string, 4)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		expect := func(want string) {
			t.Helper()
			select {
			case l := <-lines:
				if l != want {
					t.Fatalf("child said %q, want %q", l, want)
				}
			case <-time.After(2 * time.Minute):
				t.Fatalf("child did not say %q within 2 minutes", want)
			}
		}
		expect("COMMITTING")
		began := time.Now()
		if delay < 0 {
			expect("DONE")
			commit = time.Since(began)
		} else {
			time.Sleep(delay)
		}
		kill()
		done := delay < 0
		for l := range lines {
			done = done || l == "DONE"
		}

		s, err = Open(path, Options{})
		if err != nil {
			t.Fatalf("reopen after the kill: %v", err)
		}
		defer s.Close()
		list, err := s.List()
		if err != nil {
			t.Fatal(err)
		}
		_, snap, err := s.Load(prevID)
		if err != nil {
			t.Fatalf("previous checkpoint after the kill: %v", err)
		}
		requireSameSnapshot(t, prev, snap)
		switch len(list) {
		case 1:
			if done {
				t.Fatal("the child reported the checkpoint durable, and it is gone")
			}
			t.Logf("killed before the commit took effect: previous checkpoint intact, new one absent")
		case 2:
			if mode == "hold" {
				t.Fatal("a transaction that never committed is visible")
			}
			_, got, err := s.Load(list[1].ID)
			if err != nil {
				t.Fatalf("the new checkpoint is visible but does not verify: %v", err)
			}
			requireSameSnapshot(t, next, got)
			t.Logf("killed after the commit took effect: both checkpoints intact")
		default:
			t.Fatalf("%d checkpoints after the kill", len(list))
		}
		r, err := s.LatestVerified()
		if err != nil || len(r.Skipped) != 0 || r.Info.ID != list[len(list)-1].ID {
			t.Fatalf("LatestVerified = %+v, %v", r, err)
		}
		// The store keeps working: the freelist is rebuilt and the pages the
		// dead transaction wrote are reused.
		third := testSnapshot(3, 30, 1<<20)
		in := mustSave(t, s, third)
		_, got, err := s.Load(in.ID)
		if err != nil {
			t.Fatal(err)
		}
		requireSameSnapshot(t, third, got)
		if _, _, err := s.Load(prevID); err != nil {
			t.Fatalf("previous checkpoint after a further save: %v", err)
		}
	})
	return commit
}
