package train

import (
	"bytes"
	"errors"
	"github.com/e2evlp/vlp/worker"
	"github.com/e2evlp/vlp/worker/workertest"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/synth"
	"github.com/e2evlp/vlp/torch"
)

var (
	torchOnce sync.Once
	torchErr  error
)

// loadTorch loads the LibTorch shim: $VLP_TORCH_LIB, else
// ../build/lib/libvlptorch.so. Without it the E2E-VLP tests fail: the model
// is what they train.
func loadTorch(t *testing.T) {
	t.Helper()
	torchOnce.Do(func() {
		path := os.Getenv(torch.EnvLibrary)
		if path == "" {
			path, _ = filepath.Abs(filepath.Join("..", "build", "lib", torch.LibraryName))
		}
		torchErr = torch.Load(path)
	})
	if torchErr != nil {
		t.Fatalf("the E2E-VLP worker tests need the LibTorch shim (make lib): %v", torchErr)
	}
}

// vlpFactory builds identical tiny E2E-VLP learners over one small world.
func vlpFactory(t *testing.T, perUnit uint32, seed uint64) func() worker.Learner {
	t.Helper()
	return vlpFactoryWith(t, perUnit, seed, func(*model.TrainConfig) {})
}

// vlpFactoryWith is vlpFactory with edit applied to the training configuration.
func vlpFactoryWith(t *testing.T, perUnit uint32, seed uint64, edit func(*model.TrainConfig)) func() worker.Learner {
	t.Helper()
	return vlpFactoryConfig(t, perUnit, seed, edit, func(*Config) {})
}

// vlpFactoryConfig is vlpFactoryWith with editCfg applied to the learner's configuration.
func vlpFactoryConfig(t *testing.T, perUnit uint32, seed uint64, edit func(*model.TrainConfig), editCfg func(*Config)) func() worker.Learner {
	t.Helper()
	loadTorch(t)
	world, err := data.NewSynthWorld(synth.Config{Seed: seed, Images: 16, Width: 64, Height: 64, MaxObjects: 2}, false)
	if err != nil {
		t.Fatal(err)
	}
	cfg := model.Tiny()
	cfg.VocabSize = max(cfg.VocabSize, world.Tokenizer.Vocab().Size())
	cfg.NumClasses = max(cfg.NumClasses, len(synth.ClassNames))
	cfg.NumAttributes = max(cfg.NumAttributes, len(synth.AttributeNames))
	dcfg := data.DefaultConfig()
	dcfg.Image = data.SquareImageConfig(64)
	dcfg.MaxTextLen, dcfg.MaxCaptionLen = cfg.MaxTextLen, cfg.MaxCaptionLen
	tc := model.DefaultTrainConfig(10)
	tc.LR, tc.BackboneLR, tc.Seed = 1e-3, 1e-3, seed
	edit(&tc)
	return func() worker.Learner {
		vc := Config{Model: cfg, Train: tc, Device: torch.CPU, World: world, Data: dcfg, PerUnit: perUnit, Seed: seed, Threads: 1}
		editCfg(&vc)
		l, err := New(vc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.Close)
		return l
	}
}

func snapshotBytes(t *testing.T, l worker.Learner) []byte {
	t.Helper()
	s, err := l.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, p := range append(s.Params, s.Optimizer...) {
		b.WriteString(p.Name)
		b.Write(p.Data)
	}
	return b.Bytes()
}

// E2E-VLP trained by two workers: the ranks hold bitwise-identical
// parameters, optimizer state and BatchNorm statistics after every run, and
// two runs with the same seed and world size end bitwise-identical.
func TestVLPTwoWorkersDeterministic(t *testing.T) {
	spec := workertest.Spec("tiny", int64(16*5), 2, 4, 2) // captions: 5 pairs per image
	spec.Model = "tiny"
	first := trainTwoVLPWorkers(t, spec, vlpFactory(t, 2, spec.Seed))
	if second := trainTwoVLPWorkers(t, spec, vlpFactory(t, 2, spec.Seed)); !bytes.Equal(first, second) {
		t.Fatalf("two runs differ (first difference at byte %d of %d)", firstDiff(first, second), len(first))
	}
	if fresh := snapshotBytes(t, vlpFactory(t, 2, spec.Seed)()); bytes.Equal(first, fresh) {
		t.Fatal("training changed nothing")
	}
}

// Gradients all-reduced bucket by bucket while backward runs (Overlap, buckets of 64 KiB: many
// collectives a step) train two workers to the same bits as gradients all-reduced after backward:
// with two ranks every element is the same one sum, whatever the buckets.
func TestVLPOverlapTrainsAsAfterBackward(t *testing.T) {
	spec := workertest.Spec("tiny", int64(16*5), 2, 4, 2)
	spec.Model = "tiny"
	plain := trainTwoVLPWorkers(t, spec, vlpFactory(t, 2, spec.Seed))
	overlapped := trainTwoVLPWorkers(t, spec, vlpFactoryConfig(t, 2, spec.Seed, func(*model.TrainConfig) {}, func(c *Config) {
		c.Overlap, c.BucketBytes = true, 64<<10
	}))
	if !bytes.Equal(plain, overlapped) {
		t.Fatalf("overlapped buckets train to other bits than the all-reduce after backward (first difference at byte %d of %d)",
			firstDiff(plain, overlapped), len(plain))
	}
}

// GradientsOverlapped hands the buffer over as a partition in a fixed order: started first, then
// the BatchNorm statistics, then the buckets in layout order, each range once; the gradients are
// those Gradients writes without buckets, and the same again on the next step.
func TestVLPOverlapRanges(t *testing.T) {
	pairs := []worker.Pair{{Unit: 0, Offset: 0}, {Unit: 1, Offset: 1}}
	plain := vlpFactory(t, 2, 5)()
	want := make([]float32, plain.GradSize())
	wantLosses, err := plain.Gradients(t.Context(), pairs, want)
	if err != nil {
		t.Fatal(err)
	}
	l := vlpFactoryConfig(t, 2, 5, func(*model.TrainConfig) {}, func(c *Config) { c.Overlap, c.BucketBytes = true, 256<<10 })().(*Learner)
	if got := len(l.GradBuffer()); got != l.GradSize() {
		t.Fatalf("GradBuffer holds %d elements, GradSize is %d", got, l.GradSize())
	}
	for round := range 2 {
		var calls []string
		var ranges [][2]int
		losses, err := l.GradientsOverlapped(t.Context(), pairs, func(worker.Losses) error {
			calls = append(calls, "started")
			return nil
		}, func(lo, hi int) {
			calls = append(calls, "ready")
			ranges = append(ranges, [2]int{lo, hi})
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(calls) < 3 || calls[0] != "started" || slices.Contains(calls[1:], "started") {
			t.Fatalf("round %d: calls %v, want started once, first", round, calls)
		}
		if ranges[0] != [2]int{l.nGrad, l.nGrad + l.nBuf} {
			t.Fatalf("round %d: the first range is %v, want the statistics [%d, %d)", round, ranges[0], l.nGrad, l.nGrad+l.nBuf)
		}
		next := 0
		for _, r := range ranges[1:] {
			if r[0] != next || r[1] <= r[0] {
				t.Fatalf("round %d: ranges %v are not the buckets in order", round, ranges)
			}
			next = r[1]
		}
		if next != l.nGrad || len(ranges)-1 != l.bk.Len() || l.bk.Len() < 3 {
			t.Fatalf("round %d: %d bucket ranges end at %d; want the %d buckets (at least 3) to cover %d", round, len(ranges)-1, next, l.bk.Len(), l.nGrad)
		}
		if losses["total"] != wantLosses["total"] {
			t.Fatalf("round %d: total loss %v, want %v", round, losses["total"], wantLosses["total"])
		}
		// The same values as the plain learner's flat buffer, in the buckets' layout (the
		// statistics only in round 0: each forward pass moves them on).
		n := l.nGrad
		if round == 0 {
			n += l.nBuf
		}
		if got, w := sortedBits(l.GradBuffer()[:n]), sortedBits(want[:n]); !slices.Equal(got, w) {
			t.Fatalf("round %d: the overlapped gradients are not the plain ones", round)
		}
	}
}

// sortedBits is v's elements' bits, sorted: the same multiset of values whatever the layout.
func sortedBits(v []float32) []uint32 {
	out := make([]uint32, len(v))
	for i, f := range v {
		out[i] = math.Float32bits(f)
	}
	slices.Sort(out)
	return out
}

// trainTwoVLPWorkers trains spec for three steps with two workers built by mk and returns the
// state both end with (bitwise the same, or the test fails).
func trainTwoVLPWorkers(t *testing.T, spec coordinator.JobSpec, mk func() worker.Learner) []byte {
	t.Helper()
	j := workertest.Start(t, spec, coordinator.WithConfig(func(_ int, c *coordinator.Config) { c.LeaseTTL = 20 * time.Second }))
	a, b := j.Worker("a", mk(), 3), j.Worker("b", mk(), 3)
	workertest.Wait(t, 120*time.Second, a, b)
	for st := uint64(1); st <= 3; st++ {
		c := j.Commit(st, "a")
		t.Logf("step %d gen %d pairs %d loss %v", st, c.Generation, c.Pairs, c.Losses["total"])
	}
	if a.Result.Step != 3 {
		t.Fatalf("ended at step %d (%q)", a.Result.Step, a.Result.Reason)
	}
	sa, sb := snapshotBytes(t, a.Learner), snapshotBytes(t, b.Learner)
	if !bytes.Equal(sa, sb) {
		t.Fatal("the two ranks hold different state")
	}
	return sa
}

// A snapshot restored into a fresh learner reproduces the state exactly.
func TestVLPSnapshotRoundTrip(t *testing.T) {
	mk := vlpFactory(t, 2, 3)
	a, b := mk(), mk()
	grad := make([]float32, a.GradSize())
	if _, err := a.Gradients(t.Context(), []worker.Pair{{Unit: 0, Offset: 0}, {Unit: 1, Offset: 1}}, grad); err != nil {
		t.Fatal(err)
	}
	for i := range grad {
		grad[i] /= 2
	}
	if _, err := a.Apply(grad, 1); err != nil {
		t.Fatal(err)
	}
	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snapshotBytes(t, a), snapshotBytes(t, b)) {
		t.Fatal("restored state differs")
	}
	// The snapshot names its network; the same tensors from another layout
	// (every name and shape alike) are refused.
	if snap.Meta.Layout == "" {
		t.Fatal("the snapshot records no layout")
	}
	other := model.Tiny()
	other.NoStemPool = !other.NoStemPool
	snap.Meta.Layout = other.Layout()
	if err := b.Restore(snap); !errors.Is(err, worker.ErrState) || !strings.Contains(err.Error(), "another network") {
		t.Fatalf("restore from another layout: %v", err)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// With no bucket size given, a small model still gets several buckets (an eighth of its gradients
// each, at least 1 MiB), so that its all-reduce starts during backward; a large one DDP's 25 MiB.
func TestDefaultBuckets(t *testing.T) {
	for _, c := range []struct{ total, want int }{
		{100 << 10, 1 << 20},   // smaller than a bucket: one of 1 MiB
		{4_700_000, 1 << 20},   // the tiny preset: an eighth is under 1 MiB
		{64 << 20, 8 << 20},    // an eighth
		{700 << 20, 25 << 20},  // DDP's bound
		{200 << 20, 25 << 20},  // exactly the bound
		{16 << 20, 2 << 20},    // an eighth
		{8<<20 + 8, 1<<20 + 1}, // an eighth, rounded down
		{0, 1 << 20},           // no gradients
	} {
		if got := defaultBucketBytes(c.total); got != c.want {
			t.Errorf("defaultBucketBytes(%d) = %d, want %d", c.total, got, c.want)
		}
	}
	l := vlpFactoryConfig(t, 2, 5, func(*model.TrainConfig) {}, func(c *Config) { c.Overlap = true })().(*Learner)
	if n, bytes := l.bk.Len(), 4*l.nGrad; n < 4 || n < bytes/(1<<20) {
		t.Fatalf("the tiny preset's %d gradient bytes in %d default buckets, want one a MiB (at least 4)", bytes, n)
	}
}

// bucketEnds: the first bucket at most first bytes, the last at most last bytes, the others at
// most bytes, a parameter over its bound alone; every parameter in exactly one bucket, in order.
func TestBucketEnds(t *testing.T) {
	loadTorch(t)
	s := torch.NewScope()
	defer s.Close()
	params := func(floats ...int64) []*torch.Tensor {
		var ps []*torch.Tensor
		for _, n := range floats {
			ps = append(ps, torch.Zeros(s, []int64{n}, torch.Float32, torch.CPU))
		}
		return ps
	}
	for _, c := range []struct {
		floats             []int64
		first, bytes, last int
		want               []int
	}{
		// 4-byte floats: bounds of 40 / 80 / 20 bytes are 10 / 20 / 5 floats.
		{[]int64{4, 4, 4, 4, 4, 4, 4, 4, 2, 2}, 40, 80, 20, []int{2, 7, 8, 10}}, // first 8, then 20, 4, last 4
		{[]int64{30, 1, 1}, 40, 80, 20, []int{1, 3}},                            // a first parameter over its bound, alone; the last two fit
		{[]int64{1, 1, 30}, 40, 80, 20, []int{2, 3}},                            // a last parameter over its bound, alone
		{[]int64{3}, 40, 80, 20, []int{1}},                                      // one parameter: one bucket
		{[]int64{2, 2}, 40, 80, 20, []int{2}},                                   // all within the last bucket's bound
		{[]int64{5, 5, 5, 5, 5, 5, 5, 5}, 40, 80, 40, []int{2, 6, 8}},           // 10 | 20 | last 10
	} {
		if got := bucketEnds(params(c.floats...), c.first, c.bytes, c.last); !slices.Equal(got, c.want) {
			t.Errorf("bucketEnds(%v, %d, %d, %d) = %v, want %v", c.floats, c.first, c.bytes, c.last, got, c.want)
		}
	}
}
