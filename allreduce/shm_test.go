//go:build linux

package allreduce

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// shmLinkTransports makes shared-memory transports without the arena: the
// Ring passes its frames through the links, as between the same-host
// neighbours of an auto transport.
func shmLinkTransports(t testing.TB, gen Generation, cfg ShmConfig) []Transport {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = shmTestDir(t)
	}
	ts := make([]Transport, gen.Size())
	for i := range ts {
		tr, err := newShmTransport(gen, i, cfg, false)
		if err != nil {
			t.Fatal(err)
		}
		ts[i] = tr
	}
	return ts
}

// shmFiles lists the files in dir.
func shmFiles(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// The arena (in rounds much smaller than the buffer) and the ring over the
// shared-memory links give bit for bit what the ring gives over TCP and in
// memory, on every rank, for float32 and bfloat16 wires.
func TestShmSameBitsAsOtherTransports(t *testing.T) {
	makers := map[string]func(t *testing.T, gen Generation) []Transport{
		"shm-arena": func(t *testing.T, gen Generation) []Transport {
			return shmTransports(t, gen, ShmConfig{ArenaBytes: 64 << 10})
		},
		"shm-links": func(t *testing.T, gen Generation) []Transport {
			return shmLinkTransports(t, gen, ShmConfig{LinkBytes: 64 << 10})
		},
		"tcp": func(t *testing.T, gen Generation) []Transport {
			_, ts := tcpTransports(t, gen, nil)
			return ts
		},
		"inmem": func(t *testing.T, gen Generation) []Transport {
			return inmemTransports(gen.Size(), 0)
		},
	}
	names := []string{"inmem", "tcp", "shm-arena", "shm-links"}
	for _, n := range []int{2, 3, 4} {
		for _, wire := range []DType{Float32, BFloat16} {
			t.Run(fmt.Sprintf("n=%d/%v", n, wire), func(t *testing.T) {
				const L = 100_003 // several arena rounds of 16384 elements, not divisible by n
				inputs := randomInputs(11, n, L)
				var first [][]float32
				for _, name := range names {
					gen := testGeneration("jobshm", 4, n)
					if name == "tcp" {
						gen, _ = tcpNodes(t, gen, testToken)
					}
					cfg := testConfig(t)
					cfg.Wire = wire
					rings := newRings(t, gen, makers[name](t, gen), cfg)
					bufs := clone2(inputs)
					ctx := ctxTimeout(t, 60*time.Second)
					for round := range 2 { // the second op reuses the arena
						if round == 1 {
							bufs = clone2(inputs)
						}
						errs := onAll(rings, func(rank int, r *Ring) error {
							_, err := r.AllReduce(ctx, bufs[rank], nil)
							return err
						})
						for rank, err := range errs {
							if err != nil {
								t.Fatalf("%s rank %d: %v", name, rank, err)
							}
						}
					}
					if first == nil {
						first = bufs
						checkBits(t, name, bufs[0], serialSum(inputs, wire))
					}
					for rank := range n {
						checkBits(t, fmt.Sprintf("%s rank %d against %s", name, rank, names[0]), bufs[rank], first[0])
					}
					closeAll(rings)
				}
			})
		}
	}
}

// A rank's process is SIGKILLed inside an all-reduce over shared memory:
// the survivors learn it from its inbox's lock — well before any heartbeat
// would tell — and return a lost peer; the next generation, without it,
// removes the dead rank's file and works; closing leaves nothing behind.
func TestShmKilledRankProcess(t *testing.T) {
	for _, kind := range []string{KindShm, "shm-links"} {
		t.Run(kind, func(t *testing.T) {
			const n, dead, L = 4, 2, 200_000
			dir := shmTestDir(t)
			gen := testGeneration("jobshmk", 10, n)
			c := startChild(t, childSpec{Kind: kind, Rank: dead, Length: L, Job: gen.Job, ShmDir: dir})
			c.sendGeneration(t, gen)
			cfg := testConfig(t)
			cfg.PeerTimeout = 10 * time.Second // a heartbeat watch this slow cannot be what notices
			shm := ShmConfig{Dir: dir}
			rings := make([]*Ring, n)
			for i := range n {
				if i == dead {
					continue
				}
				var tr Transport
				var err error
				if kind == KindShm {
					tr, err = NewTransport(context.Background(), KindShm, gen, i, Endpoints{Shm: shm})
				} else {
					tr, err = newShmTransport(gen, i, shm, false)
				}
				if err != nil {
					t.Fatal(err)
				}
				if rings[i], err = NewRing(gen, i, tr, cfg); err != nil {
					t.Fatal(err)
				}
			}
			ctx := ctxTimeout(t, 30*time.Second)
			done := make(chan []error)
			go func() {
				done <- onAll(rings, func(rank int, r *Ring) error {
					_, err := r.AllReduce(ctx, make([]float32, L), nil)
					return err
				})
			}()
			c.expect(t, "mid")
			killedAt := time.Now()
			c.cmd.Process.Kill() // SIGKILL
			errs := <-done
			took := time.Since(killedAt)
			t.Logf("survivors failed %v after the kill: %v", took, errs)
			checkLost(t, errs, dead, dead)
			if took > 2*time.Second {
				t.Fatalf("survivors took %v to notice (peer timeout %v)", took, cfg.PeerTimeout)
			}
			closeAll(rings)
			if got := shmFiles(t, dir); len(got) != 1 || got[0] != shmName(gen.Job, gen.Number, dead) {
				t.Fatalf("after the survivors closed: %v, want only the killed rank's inbox", got)
			}

			next := without(gen, dead)
			var ts []Transport
			if kind == KindShm {
				ts = shmTransports(t, next, shm)
			} else {
				ts = shmLinkTransports(t, next, shm)
			}
			if got := shmFiles(t, dir); len(got) != n-1 {
				t.Fatalf("next generation's files: %v, want %d inboxes and the dead one's removed", got, n-1)
			}
			rings = newRings(t, next, ts, testConfig(t))
			reduceAndCheck(t, rings, 1000, 1)
			closeAll(rings)
			if got := shmFiles(t, dir); len(got) != 0 {
				t.Fatalf("after close: %v, want none", got)
			}
		})
	}
}

// Frames of an older generation, of an earlier op, of another job, from a
// non-neighbour — written into the ranks' inboxes through real shared
// memory — never reach a sum; and a generation's arena never mixes with
// another's running beside it in the same directory.
func TestShmStaleFramesIgnored(t *testing.T) {
	const n, L = 4, 3001
	dir := shmTestDir(t)
	gen := testGeneration("jobshms", 5, n)
	ts := shmLinkTransports(t, gen, ShmConfig{Dir: dir})
	rings := newRings(t, gen, ts, testConfig(t))
	reduceAndCheck(t, rings, L, 1)
	rng := rand.New(rand.NewPCG(3, 4))
	ctx := ctxTimeout(t, 10*time.Second)
	for rank := range n {
		left := (rank + n - 1) % n
		junk := junkFrames(rng, jobID(gen.Job), gen.Number, rank, n, L)
		// The first op's first frame again, from the left neighbour.
		h := header{kind: kindReduceScatter, dtype: Float32, job: jobID(gen.Job), gen: gen.Number, op: 1,
			from: uint32(left), count: 4, total: L}
		junk = append(junk, forged(h, nil, f32Bytes([]float32{1, 2, 3, 4})))
		for _, f := range junk {
			if err := ts[left].Send(ctx, rank, f); err != nil {
				t.Fatal(err)
			}
		}
	}
	reduceAndCheck(t, rings, L, 2)
	var stale, dropped uint64
	for _, r := range rings {
		stale += r.Stats().Stale
		dropped += r.Stats().Dropped
	}
	if stale < n || dropped == 0 {
		t.Fatalf("stale %d (want >= %d), dropped %d (want > 0)", stale, n, dropped)
	}

	// Generations 5 and 6 of one job side by side, arenas and all.
	old := newRings(t, gen, shmTransports(t, gen, ShmConfig{Dir: dir}), testConfig(t))
	next := gen
	next.Number++
	cur := newRings(t, next, shmTransports(t, next, ShmConfig{Dir: dir}), testConfig(t))
	var wg sync.WaitGroup
	for i, rs := range [][]*Ring{old, cur} {
		wg.Add(1)
		go func() { defer wg.Done(); reduceAndCheck(t, rs, 50_000, uint64(10+i)) }()
	}
	wg.Wait()
}

// The ranks disagree on the buffer's length: every rank of the arena
// returns ErrMismatch, not a sum.
func TestShmMismatch(t *testing.T) {
	const n = 3
	gen := testGeneration("jobshmm", 1, n)
	rings := newRings(t, gen, shmTransports(t, gen, ShmConfig{}), testConfig(t))
	ctx := ctxTimeout(t, 10*time.Second)
	errs := onAll(rings, func(rank int, r *Ring) error {
		_, err := r.AllReduce(ctx, make([]float32, 100+rank), nil)
		return err
	})
	for rank, err := range errs {
		if !errors.Is(err, ErrMismatch) {
			t.Fatalf("rank %d: %v, want ErrMismatch", rank, err)
		}
	}
}

// A missing shared-memory directory, and one too small for an inbox, are
// refused with errors that say so.
func TestShmRefusesMissingOrSmallDir(t *testing.T) {
	gen := testGeneration("jobshmd", 1, 2)
	_, err := NewShmTransport(gen, 0, ShmConfig{Dir: "/nonexistent/shm"})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "shared-memory directory") {
		t.Fatalf("missing dir: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("a small tmpfs needs root to mount")
	}
	small := t.TempDir()
	if err := unix.Mount("tmpfs", small, "tmpfs", 0, "size=4m"); err != nil {
		t.Skipf("mount a small tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(small, unix.MNT_DETACH) })
	_, err = NewShmTransport(gen, 0, ShmConfig{Dir: small})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "MiB free") {
		t.Fatalf("4 MiB tmpfs: %v", err)
	}
	t.Log(err)
	if got := shmFiles(t, small); len(got) != 0 {
		t.Fatalf("refused, yet left %v", got)
	}
	// Small links fit; the transport works there.
	cfg := ShmConfig{Dir: small, LinkBytes: 64 << 10, ArenaBytes: 64 << 10}
	rings := newRings(t, gen, shmTransports(t, gen, cfg), testConfig(t))
	reduceAndCheck(t, rings, 40_000, 3)
}

// Rings closed while their all-reduce runs through the arenas: the
// collective returns an error and nothing touches unmapped memory (which
// would crash the test binary).
func TestShmCloseDuringArenaReduce(t *testing.T) {
	const n, L = 4, 2_000_000 // many rounds of the 64 KiB arena
	gen := testGeneration("jobshmc", 1, n)
	dir := shmTestDir(t)
	for try := range 5 {
		gen.Number++
		rings := newRings(t, gen, shmTransports(t, gen, ShmConfig{Dir: dir, ArenaBytes: 64 << 10}), testConfig(t))
		ctx := ctxTimeout(t, 30*time.Second)
		done := make(chan []error)
		go func() {
			done <- onAll(rings, func(rank int, r *Ring) error {
				_, err := r.AllReduce(ctx, make([]float32, L), nil)
				return err
			})
		}()
		time.Sleep(time.Duration(try+1) * 3 * time.Millisecond)
		closeAll(rings)
		for rank, err := range <-done {
			if err == nil {
				t.Logf("try %d rank %d: finished before the close", try, rank)
			}
		}
	}
	if got := shmFiles(t, dir); len(got) != 0 {
		t.Fatalf("after close: %v", got)
	}
}

// An inbox nobody holds — its owner died before this rank mapped it — is taken for a stale one a
// new owner is about to replace for deadInboxGrace, then is a *PeerError naming its rank: nothing
// else of that rank is there to watch.
func TestShmOwnerlessInboxIsAPeerError(t *testing.T) {
	dir := shmTestDir(t)
	gen := testGeneration("jobshmo", 1, 2)
	cfg := ShmConfig{Dir: dir}
	// Rank 1's inbox without an owner: a copy of a live one, put back after its owner closed it.
	t1, err := NewShmTransport(gen, 1, cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, shmName(gen.Job, gen.Number, 1))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t1.Close()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	t0, err := NewShmTransport(gen, 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer t0.Close()
	start := time.Now()
	err = t0.Send(ctxTimeout(t, 10*time.Second), 1, []byte("frame"))
	took := time.Since(start)
	var pe *PeerError
	if !errors.As(err, &pe) || pe.Rank != 1 {
		t.Fatalf("send to an ownerless inbox: %v, want a *PeerError for rank 1", err)
	}
	if took < deadInboxGrace || took > deadInboxGrace+3*time.Second {
		t.Fatalf("the error came after %v, want about %v", took, deadInboxGrace)
	}
	t.Logf("%v after %v", err, took)
}
