package allreduce

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// hierCluster is a generation whose members sit on simulated hosts: host k's
// members listen on 127.0.0.(k+1) (another host, as far as the addresses
// tell) and share a shared-memory directory of the host's own.
type hierCluster struct {
	gen   Generation
	nodes []*TCPNode
	dirs  []string // by host
	host  []int    // by rank
}

func newHierCluster(t *testing.T, job string, number uint64, perHost []int) *hierCluster {
	t.Helper()
	c := &hierCluster{gen: Generation{Job: job, Number: number}}
	for k, p := range perHost {
		c.dirs = append(c.dirs, shmTestDir(t))
		for range p {
			n, err := ListenTCP(fmt.Sprintf("127.0.0.%d:0", k+1), TCPConfig{Job: job, Token: []byte(testToken), Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { n.Close() })
			c.gen.Members = append(c.gen.Members, Member{ID: fmt.Sprintf("w%d", len(c.nodes)), Addr: n.Addr()})
			c.nodes = append(c.nodes, n)
			c.host = append(c.host, k)
		}
	}
	return c
}

// rings makes every rank's HierRing of gen (a subset of the cluster's
// members, by index into the cluster), concurrently as workers do.
func (c *hierCluster) rings(t *testing.T, gen Generation, index []int, cfg Config) []*HierRing {
	t.Helper()
	rings := make([]*HierRing, gen.Size())
	errs := make([]error, gen.Size())
	var wg sync.WaitGroup
	for r := range rings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			i := index[r]
			ep := Endpoints{TCP: c.nodes[i], Shm: ShmConfig{Dir: c.dirs[c.host[i]], ArenaBytes: 64 << 10}, Logger: testLogger(t)}
			rings[r], errs[r] = NewHierRing(context.Background(), gen, r, ep, cfg)
		}()
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	t.Cleanup(func() {
		for _, h := range rings {
			h.Close()
		}
	})
	return rings
}

func allIndex(n int) []int {
	x := make([]int, n)
	for i := range x {
		x[i] = i
	}
	return x
}

func onAllHier(rings []*HierRing, fn func(rank int, h *HierRing) error) []error {
	errs := make([]error, len(rings))
	var wg sync.WaitGroup
	for i, h := range rings {
		if h == nil {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = fn(i, h) }()
	}
	wg.Wait()
	return errs
}

// hierSum is the reference: each host's inputs summed as its shared-memory
// ring sums them (float32), the host sums as the leaders' ring does.
func hierSum(inputs [][]float32, perHost []int, wire DType) []float32 {
	var sums [][]float32
	r := 0
	for _, p := range perHost {
		sums = append(sums, serialSum(inputs[r:r+p], Float32))
		r += p
	}
	return serialSum(sums, wire)
}

// Every rank ends with the same bits, the reference's, over hosts of
// different sizes, float32 and bf16 between the leaders; a second
// generation on the same members gives the same bits again; every rank's
// metadata arrives at every rank.
func TestHierSameBits(t *testing.T) {
	for _, perHost := range [][]int{{2, 2}, {3, 1, 2}, {4}} {
		for _, wire := range []DType{Float32, BFloat16} {
			t.Run(fmt.Sprintf("%v/%v", perHost, wire), func(t *testing.T) {
				const L = 70_001
				c := newHierCluster(t, "jobhier", 5, perHost)
				n := c.gen.Size()
				inputs := randomInputs(7, n, L)
				want := hierSum(inputs, perHost, wire)
				cfg := testConfig(t)
				cfg.Wire = wire
				for run := range 2 {
					gen := c.gen
					gen.Number += uint64(run)
					rings := c.rings(t, gen, allIndex(n), cfg)
					bufs := clone2(inputs)
					ctx := ctxTimeout(t, 60*time.Second)
					metas := make([][][]byte, n)
					errs := onAllHier(rings, func(rank int, h *HierRing) error {
						var err error
						metas[rank], err = h.AllReduce(ctx, bufs[rank], []byte(fmt.Sprintf("m%d", rank)))
						return err
					})
					for rank, err := range errs {
						if err != nil {
							t.Fatalf("run %d rank %d: %v", run, rank, err)
						}
						checkBits(t, fmt.Sprintf("run %d rank %d", run, rank), bufs[rank], want)
						for q := range n {
							if string(metas[rank][q]) != fmt.Sprintf("m%d", q) {
								t.Fatalf("rank %d: meta of rank %d = %q", rank, q, metas[rank][q])
							}
						}
					}
					for _, h := range rings {
						h.Close()
					}
				}
			})
		}
	}
}

// A broadcast from a member that leads no host reaches every host; an
// all-gather returns every rank's metadata.
func TestHierBroadcastAndGather(t *testing.T) {
	c := newHierCluster(t, "jobhierb", 1, []int{2, 3})
	rings := c.rings(t, c.gen, allIndex(5), testConfig(t))
	ctx := ctxTimeout(t, 30*time.Second)
	data := make([]byte, 10_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	const root = 3
	got := make([][]byte, 5)
	errs := onAllHier(rings, func(rank int, h *HierRing) error {
		var in []byte
		if rank == root {
			in = data
		}
		var err error
		got[rank], err = h.Broadcast(ctx, root, in)
		return err
	})
	for rank, err := range errs {
		if err != nil || string(got[rank]) != string(data) {
			t.Fatalf("rank %d: %d bytes, %v", rank, len(got[rank]), err)
		}
	}
	errs = onAllHier(rings, func(rank int, h *HierRing) error {
		ms, err := h.AllGather(ctx, []byte{byte(rank)})
		for q, m := range ms {
			if len(m) != 1 || m[0] != byte(q) {
				return fmt.Errorf("meta of rank %d = %v", q, m)
			}
		}
		return err
	})
	for rank, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", rank, err)
		}
	}
}

// A member without a usable address has no known host: refused.
func TestHierRefusesUnknownHost(t *testing.T) {
	gen := testGeneration("jobhierx", 1, 2)
	gen.Members[0].Addr = "127.0.0.1:1"
	_, err := NewHierRing(context.Background(), gen, 0, Endpoints{}, testConfig(t))
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("got %v, want a configuration error", err)
	}
	gen.Members[1].Addr = "0.0.0.0:2"
	if _, err := NewHierRing(context.Background(), gen, 0, Endpoints{}, testConfig(t)); !errors.Is(err, ErrConfig) {
		t.Fatalf("got %v, want a configuration error", err)
	}
}
