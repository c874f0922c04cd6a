package allreduce

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
)

// hierFaultConfig is the Config of the fault tests, in the parent and the
// child alike: every rank of a ring cuts its frames the same way.
func hierFaultConfig() Config {
	return Config{ChunkBytes: 256, WindowBytes: 4096, MaxMeta: 64, Timeout: 30 * time.Second,
		HeartbeatInterval: 50 * time.Millisecond, PeerTimeout: 2 * time.Second}
}

// runHierChild is a hierarchical rank in a child process: kind hier-intra
// hangs once it has staged its values in the host's arena (inside the
// intra-host stage), hier-inter after its first frame of the leaders' ring
// (inside the inter-host stage, as a host leader).
func runHierChild(spec childSpec) int {
	node, err := ListenTCP(spec.Listen, TCPConfig{Job: spec.Job, Token: []byte(spec.Token)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println("addr", node.Addr())
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: read generation:", err)
		return 2
	}
	var gen Generation
	if err := json.Unmarshal([]byte(line), &gen); err != nil {
		fmt.Fprintln(os.Stderr, "child: generation:", err)
		return 2
	}
	ep := Endpoints{TCP: node, Shm: ShmConfig{Dir: spec.ShmDir, ArenaBytes: 64 << 10}}
	h, err := NewHierRing(context.Background(), gen, spec.Rank, ep, hierFaultConfig())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	hang := func() {
		fmt.Println("mid")
		select {} // hang inside the stage; the parent kills us
	}
	switch spec.Kind {
	case "hier-intra":
		if h.shm == nil {
			fmt.Fprintln(os.Stderr, "child: alone on its host")
			return 2
		}
		h.shm.hook = hang
	case "hier-inter":
		if h.lead == nil {
			fmt.Fprintln(os.Stderr, "child: not a host leader")
			return 2
		}
		h.lead.hook = func(kind, uint32) { hang() }
	}
	_, err = h.AllReduce(context.Background(), make([]float32, spec.Length), nil)
	fmt.Fprintln(os.Stderr, "child: all-reduce returned:", err)
	return 1
}

// Two hosts of two ranks; one rank is a child process, SIGKILLed inside a
// stage: a member inside the intra-host reduce, a host leader inside the
// inter-host all-reduce. Every survivor — on the dead rank's host and on the
// other — returns a *PeerError well within the deadline, and the next
// generation, without the dead rank, sums right.
func TestHierKilledRank(t *testing.T) {
	cases := []struct {
		kind string
		dead int
		next []int // ranks per host of the next generation
	}{
		{"hier-intra", 1, []int{1, 2}}, // host 0's second member
		{"hier-inter", 2, []int{2, 1}}, // host 1's leader
	}
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) {
			const L = 20000
			c := newHierCluster(t, "jobhierk", 10, []int{2, 2})
			host := c.host[tc.dead]
			ch := startChild(t, childSpec{Kind: tc.kind, ShmDir: c.dirs[host], Rank: tc.dead, Length: L, Token: testToken, Job: c.gen.Job,
				Listen: fmt.Sprintf("127.0.0.%d:0", host+1)})
			gen := c.gen
			gen.Members = append([]Member(nil), c.gen.Members...)
			gen.Members[tc.dead].Addr = ch.Addr
			ch.sendGeneration(t, gen)
			var index []int
			for r := range gen.Size() {
				if r != tc.dead {
					index = append(index, r)
				}
			}
			// The survivors keep their ranks: build them one by one.
			rings := make([]*HierRing, gen.Size())
			errs := make([]error, gen.Size())
			done := make(chan struct{})
			for _, r := range index {
				go func() {
					ep := Endpoints{TCP: c.nodes[r], Shm: ShmConfig{Dir: c.dirs[c.host[r]], ArenaBytes: 64 << 10}, Logger: testLogger(t)}
					cfg := hierFaultConfig()
					cfg.Logger = testLogger(t)
					rings[r], errs[r] = NewHierRing(context.Background(), gen, r, ep, cfg)
					done <- struct{}{}
				}()
			}
			for range index {
				<-done
			}
			for _, r := range index {
				if errs[r] != nil {
					t.Fatalf("rank %d: %v", r, errs[r])
				}
				t.Cleanup(func() { rings[r].Close() })
			}
			const deadline = 20 * time.Second
			ctx := ctxTimeout(t, deadline)
			result := make(chan []error)
			go func() {
				result <- onAllHier(rings, func(rank int, h *HierRing) error {
					_, err := h.AllReduce(ctx, make([]float32, L), nil)
					return err
				})
			}()
			ch.expect(t, "mid")
			killedAt := time.Now()
			ch.cmd.Process.Kill() // SIGKILL
			errs = <-result
			took := time.Since(killedAt)
			for _, r := range index {
				var pe *PeerError
				if !errors.As(errs[r], &pe) {
					t.Fatalf("rank %d: got %v, want a *PeerError", r, errs[r])
				}
				t.Logf("rank %d: %v", r, errs[r])
			}
			t.Logf("survivors failed %v after the kill", took)
			if took > deadline/4 {
				t.Fatalf("survivors took %v to notice", took)
			}
			for _, r := range index {
				rings[r].Close()
			}

			next := without(gen, tc.dead)
			nr := c.rings(t, next, index, testConfig(t))
			inputs := randomInputs(3, next.Size(), 5000)
			bufs := clone2(inputs)
			ctx = ctxTimeout(t, 30*time.Second)
			errs = onAllHier(nr, func(rank int, h *HierRing) error {
				_, err := h.AllReduce(ctx, bufs[rank], nil)
				return err
			})
			want := hierSum(inputs, tc.next, Float32)
			for rank, err := range errs {
				if err != nil {
					t.Fatalf("next generation, rank %d: %v", rank, err)
				}
				checkBits(t, fmt.Sprintf("next generation, rank %d", rank), bufs[rank], want)
			}
		})
	}
}
