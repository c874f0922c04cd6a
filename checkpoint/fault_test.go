package checkpoint

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
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

// corruption damages checkpoint id of the store file at path.
type corruption struct {
	name   string
	damage func(t *testing.T, path string, id uint64, snap *Snapshot)
	want   string // in the error
}

var corruptions = []corruption{
	{"bit flipped in the file", flipInFile, `"embed.weight"`},
	{"value rewritten without its checksum", func(t *testing.T, path string, id uint64, _ *Snapshot) {
		withBolt(t, path, func(cb *bolt.Bucket) error {
			data := cb.Bucket(bucketData)
			v := append([]byte(nil), data.Get(dataKey(0, 0))...)
			v[100] ^= 0x01
			return data.Put(dataKey(0, 0), v)
		}, id)
	}, `"embed.weight"`},
	{"chunk deleted", func(t *testing.T, path string, id uint64, _ *Snapshot) {
		withBolt(t, path, func(cb *bolt.Bucket) error { return cb.Bucket(bucketData).Delete(dataKey(2, 0)) }, id)
	}, `"ln.bias": chunk 0 is missing`},
	{"chunk truncated", func(t *testing.T, path string, id uint64, _ *Snapshot) {
		withBolt(t, path, func(cb *bolt.Bucket) error {
			data := cb.Bucket(bucketData)
			v := append([]byte(nil), data.Get(dataKey(3, 0))...)
			return data.Put(dataKey(3, 0), v[:len(v)-1])
		}, id)
	}, `"steps": chunk 0 has`},
	{"metadata edited", func(t *testing.T, path string, id uint64, _ *Snapshot) {
		withBolt(t, path, func(cb *bolt.Bucket) error {
			meta := bytes.Replace(cb.Get(keyMeta), []byte(`"step":20`), []byte(`"step":21`), 1)
			return cb.Put(keyMeta, meta)
		}, id)
	}, "metadata does not match its sha256"},
}

// flipInFile flips one bit of the first parameter's bytes where they lie in
// the bbolt file, found by searching the file for them.
func flipInFile(t *testing.T, path string, _ uint64, snap *Snapshot) {
	t.Helper()
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	needle := snap.Params[0].Data[:256]
	if n := bytes.Count(file, needle); n != 1 {
		t.Fatalf("the tensor's bytes occur %d times in the file, want once", n)
	}
	at := int64(bytes.Index(file, needle)) + 123
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{file[at] ^ 0x10}, at); err != nil {
		t.Fatal(err)
	}
	t.Logf("flipped bit 4 of byte %d of %s", at, path)
}

// withBolt opens the store file with bbolt directly and runs fn on the
// bucket of checkpoint id, as a tool that bypasses the checksums would.
func withBolt(t *testing.T, path string, fn func(*bolt.Bucket) error, id uint64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoFreelistSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		return fn(tx.Bucket(bucketCheckpoints).Bucket(idKey(id)))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCorruptLatestFallsBack damages the latest checkpoint in several ways
// and checks that Verify and Load report it, naming what failed, and that
// LatestVerified returns the previous one with the failure reported.
func TestCorruptLatestFallsBack(t *testing.T) {
	for _, tc := range corruptions {
		t.Run(tc.name, func(t *testing.T) {
			path := t.TempDir() + "/ckpt.db"
			s, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			prev, latest := testSnapshot(1, 10, 256<<10), testSnapshot(2, 20, 256<<10)
			prevID := mustSave(t, s, prev).ID
			latestID := mustSave(t, s, latest).ID
			s.Close()

			tc.damage(t, path, latestID, latest)

			s, err = Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.Verify(latestID)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Verify(latest) = %v, want ErrCorrupt naming %s and the file", err, tc.want)
			}
			if _, _, err := s.Load(latestID); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Load(latest) = %v, want ErrCorrupt", err)
			}
			if err := s.Verify(prevID); err != nil {
				t.Fatalf("Verify(previous) = %v", err)
			}
			r, err := s.LatestVerified()
			if err != nil {
				t.Fatal(err)
			}
			if r.Info.ID != prevID || len(r.Skipped) != 1 || !errors.Is(r.Skipped[0], ErrCorrupt) ||
				!strings.Contains(r.Skipped[0].Error(), tc.want) {
				t.Fatalf("LatestVerified = id %d skipped %v, want id %d with the corruption reported", r.Info.ID, r.Skipped, prevID)
			}
			t.Logf("reported: %v", r.Skipped[0])
			requireSameSnapshot(t, prev, r.Snapshot)
		})
	}
}

func TestNoCheckpointVerifies(t *testing.T) {
	path := t.TempDir() + "/ckpt.db"
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	snap := testSnapshot(1, 10, 64<<10)
	id := mustSave(t, s, snap).ID
	s.Close()
	flipInFile(t, path, id, snap)
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.LatestVerified(); !errors.Is(err, ErrNoVerified) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("LatestVerified = %v, want ErrNoVerified and ErrCorrupt", err)
	}
}

func TestBadFiles(t *testing.T) {
	// A store with a checkpoint of a few MB, to cut short.
	good := t.TempDir() + "/good.db"
	s, err := Open(good, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustSave(t, s, testSnapshot(1, 10, 4<<20))
	s.Close()
	goodBytes, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		make  func(t *testing.T, path string)
		is    error // nil: any error
		wants string
	}{
		{"truncated to half", func(t *testing.T, path string) {
			writeFile(t, path, goodBytes[:len(goodBytes)/2])
		}, ErrTruncated, "truncated"},
		{"truncated to one page", func(t *testing.T, path string) {
			writeFile(t, path, goodBytes[:4096])
		}, nil, ""},
		{"truncated to 100 bytes", func(t *testing.T, path string) {
			writeFile(t, path, goodBytes[:100])
		}, nil, ""},
		{"garbage", func(t *testing.T, path string) {
			writeFile(t, path, bytes.Repeat([]byte("not a database "), 5000))
		}, nil, "invalid"},
		{"another bbolt database", func(t *testing.T, path string) {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("logs")); return err })
			db.Close()
		}, ErrNotStore, "not a checkpoint store"},
		{"store format from the future", func(t *testing.T, path string) {
			writeFile(t, path, goodBytes)
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			db.Update(func(tx *bolt.Tx) error {
				f, _ := json.Marshal(storeFormat{Format: formatName, Version: 99})
				return tx.Bucket(bucketStore).Put(keyFormat, f)
			})
			db.Close()
		}, ErrFormatVersion, "format 99"},
	} {
		for _, ro := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/readonly=%v", tc.name, ro), func(t *testing.T) {
				path := t.TempDir() + "/bad.db"
				tc.make(t, path)
				s, err := Open(path, Options{ReadOnly: ro, LockTimeout: time.Second})
				if err == nil {
					s.Close()
					t.Fatal("Open accepted a bad file")
				}
				if !strings.Contains(err.Error(), path) {
					t.Fatalf("error does not name the file: %v", err)
				}
				if tc.is != nil && !errors.Is(err, tc.is) {
					t.Fatalf("Open = %v, want %v", err, tc.is)
				}
				if !strings.Contains(err.Error(), tc.wants) {
					t.Fatalf("Open = %v, want it to mention %q", err, tc.wants)
				}
				t.Logf("Open: %v", err)
			})
		}
	}
}

// TestCheckpointFormatFromTheFuture checks that one checkpoint written in
// an unknown format is refused by name and skipped by LatestVerified.
func TestCheckpointFormatFromTheFuture(t *testing.T) {
	path := t.TempDir() + "/ckpt.db"
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	prevID := mustSave(t, s, testSnapshot(1, 10, 4096)).ID
	newID := mustSave(t, s, testSnapshot(2, 20, 4096)).ID
	s.Close()
	withBolt(t, path, func(cb *bolt.Bucket) error {
		meta := bytes.Replace(cb.Get(keyMeta), []byte(`"format":1`), []byte(`"format":7`), 1)
		sum := sha256.Sum256(meta)
		if err := cb.Put(keyMeta, meta); err != nil {
			return err
		}
		return cb.Put(keyMetaSum, sum[:])
	}, newID)
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.Load(newID); !errors.Is(err, ErrFormatVersion) || !strings.Contains(err.Error(), "format 7") {
		t.Fatalf("Load = %v, want ErrFormatVersion naming format 7", err)
	}
	r, err := s.LatestVerified()
	if err != nil || r.Info.ID != prevID || len(r.Skipped) != 1 {
		t.Fatalf("LatestVerified = %+v, %v", r, err)
	}
}

func TestLockedStore(t *testing.T) {
	s, path := openTest(t, Options{})
	_ = s
	began := time.Now()
	_, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second open = %v, want ErrLocked naming the file", err)
	}
	if waited := time.Since(began); waited > 30*time.Second {
		t.Fatalf("waited %v for a 200ms lock timeout", waited)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
