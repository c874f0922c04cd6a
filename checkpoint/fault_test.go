package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// corruption damages checkpoint id of the store file at path.
type corruption struct {
	name   string
	damage func(t *testing.T, path string, id uint64, snap *Snapshot)
	want   string // in the error
}

var corruptions = []corruption{
	{"bit flipped in the file", flipInFile, `"embed.weight"`},
	{"value rewritten without its checksum", func(t *testing.T, path string, id uint64, _ *Snapshot) {
		if err := CorruptTensor(path, id, GroupOptimizer, "embed.weight.exp_avg"); err != nil {
			t.Fatal(err)
		}
	}, `optimizer tensor "embed.weight.exp_avg"`},
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
			in, skipped, err := s.LatestVerifiedInfo()
			if err != nil || in.ID != prevID || len(skipped) != 1 || !errors.Is(skipped[0], ErrCorrupt) {
				t.Fatalf("LatestVerifiedInfo = id %d skipped %v, %v; want id %d", in.ID, skipped, err, prevID)
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

func TestCorruptTensorErrors(t *testing.T) {
	path := t.TempDir() + "/ckpt.db"
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := mustSave(t, s, testSnapshot(1, 10, 4096)).ID
	s.Close()
	if err := CorruptTensor(path, id, GroupParams, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("CorruptTensor of a missing tensor = %v", err)
	}
	if err := CorruptTensor(path, id, GroupParams, "empty"); err == nil {
		t.Fatal("CorruptTensor of an empty tensor succeeded")
	}
	if err := CorruptTensor(path, id+1, GroupParams, "ln.bias"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("CorruptTensor of a missing checkpoint = %v", err)
	}
}
