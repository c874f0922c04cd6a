package worker

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
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
func vlpFactory(t *testing.T, perUnit uint32, seed uint64) func() Learner {
	t.Helper()
	return vlpFactoryWith(t, perUnit, seed, func(*model.TrainConfig) {})
}

// vlpFactoryWith is vlpFactory with edit applied to the training configuration.
func vlpFactoryWith(t *testing.T, perUnit uint32, seed uint64, edit func(*model.TrainConfig)) func() Learner {
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
	return func() Learner {
		l, err := NewVLPLearner(VLPConfig{Model: cfg, Train: tc, Device: torch.CPU, World: world, Data: dcfg, PerUnit: perUnit, Seed: seed, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.Close)
		return l
	}
}

func snapshotBytes(t *testing.T, l Learner) []byte {
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
	spec := testSpec(int64(16*5), 2, 4, 2) // captions: 5 pairs per image
	spec.Model = "tiny"
	mk := vlpFactory(t, 2, spec.Seed)
	run := func() []byte {
		// LibTorch steps starve the heartbeats on two busy cores: a long
		// lease keeps a slow worker from being declared dead.
		c := newCluster(t, spec, coordinator.WithConfig(func(_ int, c *coordinator.Config) { c.LeaseTTL = 20 * time.Second }))
		var led ledger
		a := c.start("a", nodeOpts{maxSteps: 3, learner: mk, ledger: &led})
		b := c.start("b", nodeOpts{maxSteps: 3, learner: mk, ledger: &led})
		waitAll(t, 120*time.Second, a, b)
		for st := uint64(1); st <= 3; st++ {
			t.Logf("step %d gen %d %s loss %v", st, led.steps[st]["a"].Generation, segmentsOf(led.steps[st]["a"]), led.steps[st]["a"].Losses["total"])
		}
		if a.res.Step != 3 {
			t.Fatalf("ended at step %d (%q)", a.res.Step, a.res.Reason)
		}
		sa, sb := snapshotBytes(t, a.model), snapshotBytes(t, b.model)
		if !bytes.Equal(sa, sb) {
			t.Fatal("the two ranks hold different state")
		}
		return sa
	}
	first := run()
	if second := run(); !bytes.Equal(first, second) {
		t.Fatalf("two runs differ (first difference at byte %d of %d)", firstDiff(first, second), len(first))
	}
	if fresh := snapshotBytes(t, mk()); bytes.Equal(first, fresh) {
		t.Fatal("training changed nothing")
	}
}

// A snapshot restored into a fresh learner reproduces the state exactly.
func TestVLPSnapshotRoundTrip(t *testing.T) {
	mk := vlpFactory(t, 2, 3)
	a, b := mk(), mk()
	grad := make([]float32, a.GradSize())
	if _, err := a.Gradients(t.Context(), []Pair{{Unit: 0, Offset: 0}, {Unit: 1, Offset: 1}}, grad); err != nil {
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
	if err := b.Restore(snap); !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "another network") {
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
