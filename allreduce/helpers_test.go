package allreduce

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// testConfig is small and fast: tiny chunks exercise the chunking, short
// heartbeats make lost peers show quickly.
func testConfig(t testing.TB) Config {
	return Config{
		ChunkBytes:        256,
		WindowBytes:       4096,
		MaxMeta:           64,
		Timeout:           30 * time.Second,
		HeartbeatInterval: 50 * time.Millisecond,
		PeerTimeout:       2 * time.Second,
		Logger:            testLogger(t),
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

func testGeneration(job string, number uint64, n int) Generation {
	g := Generation{Job: job, Number: number}
	for i := range n {
		g.Members = append(g.Members, Member{ID: fmt.Sprintf("w%d", i)})
	}
	return g
}

// newRings makes one Ring per transport and closes them at cleanup.
func newRings(t testing.TB, gen Generation, ts []Transport, cfg Config) []*Ring {
	t.Helper()
	rings := make([]*Ring, len(ts))
	for i, tr := range ts {
		r, err := NewRing(gen, i, tr, cfg)
		if err != nil {
			t.Fatalf("NewRing rank %d: %v", i, err)
		}
		rings[i] = r
	}
	t.Cleanup(func() { closeAll(rings) })
	return rings
}

func closeAll(rings []*Ring) {
	var wg sync.WaitGroup
	for _, r := range rings {
		if r == nil {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); r.Close() }()
	}
	wg.Wait()
}

func inmemTransports(n int, maxFrame int) []Transport {
	net := NewInmemNetwork(n, maxFrame)
	ts := make([]Transport, n)
	for i := range ts {
		ts[i] = net.Transport(i)
	}
	return ts
}

// onAll runs fn for every rank concurrently and returns the errors by rank.
func onAll(rings []*Ring, fn func(rank int, r *Ring) error) []error {
	errs := make([]error, len(rings))
	var wg sync.WaitGroup
	for i, r := range rings {
		if r == nil {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = fn(i, r) }()
	}
	wg.Wait()
	return errs
}

// randomInputs draws values over many magnitudes, so that the order of the
// additions changes the bits and an order bug shows.
func randomInputs(seed uint64, n, length int) [][]float32 {
	rng := rand.New(rand.NewPCG(seed, uint64(n*1000003+length)))
	in := make([][]float32, n)
	for r := range in {
		in[r] = make([]float32, length)
		for i := range in[r] {
			in[r][i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(7)-3)))
		}
	}
	return in
}

// serialSum is the reference: segment j summed in ring order j, j+1, …, j−1;
// with bfloat16 on the wire every partial sum is rounded as it is sent and the
// finished one as its owner rounds it.
func serialSum(inputs [][]float32, wire DType) []float32 {
	n, L := len(inputs), len(inputs[0])
	out := make([]float32, L)
	round := func(f float32) float32 {
		if wire == BFloat16 {
			return fromBF16(toBF16(f))
		}
		return f
	}
	for j := range n {
		start, length := segment(L, n, j)
		for i := start; i < start+length; i++ {
			if n == 1 {
				out[i] = inputs[0][i]
				continue
			}
			acc := round(inputs[j][i])
			for k := 1; k < n; k++ {
				acc = round(acc + inputs[(j+k)%n][i])
			}
			out[i] = acc
		}
	}
	return out
}

func clone2(in [][]float32) [][]float32 {
	out := make([][]float32, len(in))
	for i := range in {
		out[i] = append([]float32{}, in[i]...)
	}
	return out
}

// checkBits fails unless got equals want bit for bit.
func checkBits(t testing.TB, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: length %d, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: element %d = %v (%#08x), want %v (%#08x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
