package allreduce

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Two runs with the same inputs give the same bits, and the bits are those
// of the ring's fixed order, which differs from a naive left-to-right sum
// (so the equality tests above would catch a wrong order).
func TestDeterministicAcrossRuns(t *testing.T) {
	const n, L = 5, 4099
	inputs := randomInputs(42, n, L)
	var runs [2][][]float32
	for run := range runs {
		gen := testGeneration("jobdet", uint64(run+1), n)
		rings := newRings(t, gen, inmemTransports(n, 0), testConfig(t))
		bufs := clone2(inputs)
		ctx := ctxTimeout(t, 20*time.Second)
		for rank, err := range onAll(rings, func(rank int, r *Ring) error { _, err := r.AllReduce(ctx, bufs[rank], nil); return err }) {
			if err != nil {
				t.Fatalf("run %d rank %d: %v", run, rank, err)
			}
		}
		runs[run] = bufs
	}
	for rank := range n {
		checkBits(t, fmt.Sprintf("rank %d, run 2 vs run 1", rank), runs[1][rank], runs[0][rank])
		checkBits(t, fmt.Sprintf("rank %d vs rank 0", rank), runs[0][rank], runs[0][0])
	}
	differ := 0
	for i := range L {
		var naive float32
		for r := range n {
			naive += inputs[r][i]
		}
		if math.Float32bits(naive) != math.Float32bits(runs[0][0][i]) {
			differ++
		}
	}
	if differ == 0 {
		t.Fatal("the inputs are too tame: a naive order gives the same bits everywhere")
	}
	t.Logf("%d of %d elements differ from a naive left-to-right sum", differ, L)
}

// Buckets started while "backward" still runs reduce to the same bits as
// one all-reduce of the whole buffer per bucket.
func TestBuckets(t *testing.T) {
	const n, L, bucket = 3, 10000, 1500
	rings := newRings(t, testGeneration("jobb", 1, n), inmemTransports(n, 0), testConfig(t))
	inputs := randomInputs(11, n, L)
	bufs := clone2(inputs)
	ctx := ctxTimeout(t, 20*time.Second)
	metas := make([][][]byte, n)
	errs := onAll(rings, func(rank int, r *Ring) error {
		buckets := SplitBuckets(bufs[rank], bucket)
		ops := make([]*Op, len(buckets))
		for i := len(buckets) - 1; i >= 0; i-- { // backward produces the last layers first
			time.Sleep(time.Millisecond) // the rest of backward
			var meta []byte
			if i == 0 {
				meta = []byte(fmt.Sprint("cursor ", rank))
			}
			ops[i] = r.StartAllReduce(ctx, buckets[i], meta)
		}
		for i := len(ops) - 1; i >= 0; i-- {
			m, err := ops[i].Wait()
			if err != nil {
				return err
			}
			if i == 0 {
				metas[rank] = m
			}
		}
		return nil
	})
	for rank := range n {
		if errs[rank] != nil {
			t.Fatal(errs[rank])
		}
		if got := string(metas[rank][(rank+1)%n]); got != fmt.Sprint("cursor ", (rank+1)%n) {
			t.Fatalf("meta %q", got)
		}
	}
	// The reference: every bucket reduced alone in ring order.
	for start := 0; start < L; start += bucket {
		end := min(start+bucket, L)
		part := make([][]float32, n)
		for r := range n {
			part[r] = inputs[r][start:end]
		}
		want := serialSum(part, Float32)
		for rank := range n {
			checkBits(t, fmt.Sprintf("bucket at %d rank %d", start, rank), bufs[rank][start:end], want)
		}
	}
	if got := SplitBuckets(make([]float32, 10), 4); len(got) != 3 || len(got[2]) != 2 {
		t.Fatalf("SplitBuckets: %d buckets", len(got))
	}
}

func TestTopologyOrder(t *testing.T) {
	in := []Member{{ID: "a", Server: "s1"}, {ID: "b", Server: "s2"}, {ID: "c", Server: "s1"}, {ID: "d", Server: "s3"}, {ID: "e", Server: "s2"}}
	var got []string
	for _, m := range TopologyOrder(in) {
		got = append(got, m.ID)
	}
	if want := []string{"a", "c", "b", "e", "d"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
}

func TestValidation(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Wire: Bytes}, "Config.Wire"},
		{Config{ChunkBytes: 4}, "Config.ChunkBytes"},
		{Config{ChunkBytes: 1 << 20, WindowBytes: 1 << 20}, "Config.WindowBytes"},
		{Config{HeartbeatInterval: time.Second, PeerTimeout: time.Second}, "Config.PeerTimeout"},
		{Config{MaxMeta: -1}, "Config.MaxMeta"},
	} {
		err := c.cfg.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error naming %s", c.cfg, err, c.want)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		gen  Generation
		rank int
	}{
		{Generation{Job: "", Members: []Member{{}}}, 0},
		{Generation{Job: "j*", Members: []Member{{}}}, 0},
		{Generation{Job: "j"}, 0},
		{Generation{Job: "j", Members: []Member{{ID: "x"}, {ID: "x"}}}, 0},
		{Generation{Job: "j", Members: []Member{{}}}, 1},
	} {
		if err := c.gen.Validate(c.rank); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v rank %d: %v", c.gen, c.rank, err)
		}
	}
	if _, err := ListenTCP("127.0.0.1:0", TCPConfig{Job: "j"}); !errors.Is(err, ErrConfig) {
		t.Errorf("TCP without a token: %v", err)
	}
	if _, err := NewTransport(context.Background(), "carrier-pigeon", Generation{Job: "j", Members: []Member{{}}}, 0, Endpoints{}); !errors.Is(err, ErrConfig) {
		t.Errorf("unknown transport: %v", err)
	}
	// A frame limit with no room for a chunk after the metadata.
	if _, err := NewRing(Generation{Job: "j", Members: []Member{{}}}, 0, NewInmemNetwork(1, 1000).Transport(0), Config{MaxMeta: 1000, ChunkBytes: 64, WindowBytes: 1 << 20}); !errors.Is(err, ErrConfig) {
		t.Errorf("tiny frames: %v", err)
	}
}

// After Close every collective returns ErrClosed, and Close is idempotent.
func TestClosed(t *testing.T) {
	rings := newRings(t, testGeneration("jobx", 1, 1), inmemTransports(1, 0), testConfig(t))
	buf := []float32{1, 2}
	if _, err := rings[0].AllReduce(context.Background(), buf, []byte("m")); err != nil || buf[1] != 2 {
		t.Fatalf("one rank: %v %v", err, buf)
	}
	rings[0].Close()
	rings[0].Close()
	if _, err := rings[0].AllReduce(context.Background(), buf, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if err := rings[0].Err(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Err: %v", err)
	}
}
