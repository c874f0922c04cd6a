package model

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/torch"
)

// ErrNonFinite: a loss was NaN or infinite; the step is abandoned before
// any gradient reaches the parameters.
var ErrNonFinite = errors.New("model: non-finite loss")

// StepResult is what one forward/backward pass reports.
type StepResult struct {
	Losses    map[string]float64
	Forward   time.Duration // forward pass and criterion, matcher included
	Matcher   time.Duration // matching alone (host copy and assignment)
	Backward  time.Duration
	NumMasked int
	// HostReads is the number of times the step read values to the host (torch.HostReads): the
	// matcher's one copy and the losses' one, two when the batch has objects. On a GPU each
	// waits for the device.
	HostReads int64
}

// TrainStep runs forward, the criterion and backward for one batch: the
// gradients are left in the parameters' .grad, for the caller to
// all-reduce, clip and apply. It reads the losses to the host once (the
// step's sync) and fails fast on a non-finite loss, before backward. The
// caller owns s (the step's scope) and zeroes the gradients beforehand.
func TrainStep(s *torch.Scope, m *Model, b *data.Batch, gen *torch.Generator) (StepResult, error) {
	return TrainStepWith(s, m, b, gen, nil)
}

// TrainStepWith is TrainStep calling afterForward (when not nil) between the forward pass and
// backward, with the losses: a data-parallel learner starts its first collective there (the step's
// losses ride on it) so that the gradient buckets can follow while backward runs.
func TrainStepWith(s *torch.Scope, m *Model, b *data.Batch, gen *torch.Generator, afterForward func(StepResult) error) (StepResult, error) {
	reads := torch.HostReads()
	r, err := trainStep(s, m, b, gen, afterForward)
	r.HostReads = torch.HostReads() - reads
	return r, err
}

func trainStep(s *torch.Scope, m *Model, b *data.Batch, gen *torch.Generator, afterForward func(StepResult) error) (StepResult, error) {
	var r StepResult
	t0 := time.Now()
	in, err := BatchToTensors(s, b, m.Device)
	if err != nil {
		return r, err
	}
	out, err := m.Forward(s, in, true, gen)
	if err != nil {
		return r, err
	}
	ls, err := m.Criterion(s, in, out)
	if err != nil {
		return r, err
	}
	r.Matcher = ls.MatchTime
	if r.Losses, err = ls.Values(); err != nil { // host sync: every loss in one copy
		return r, err
	}
	r.Forward, r.NumMasked = time.Since(t0), in.NumMasked
	for name, v := range r.Losses {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return r, fmt.Errorf("%w: %s = %v", ErrNonFinite, name, v)
		}
	}
	if afterForward != nil {
		if err := afterForward(r); err != nil {
			return r, err
		}
	}
	t1 := time.Now()
	if err := ls.Total.Backward(); err != nil {
		return r, fmt.Errorf("model: backward: %w", err)
	}
	r.Backward = time.Since(t1)
	return r, nil
}

// TrainConfig holds the optimiser, the schedule and the precision of training: the one
// description that single-process training (Trainer) and the distributed learner both follow.
type TrainConfig struct {
	// LR is the transformer's peak learning rate: 1e-4 (DETR, the paper).
	LR float64
	// BackboneLR is the backbone's, 1e-5: a tenth, so pretrained ResNet
	// features are refined rather than overwritten (DETR).
	BackboneLR float64
	// WeightDecay of AdamW: 1e-4 (DETR).
	WeightDecay float64
	// Beta1 and Beta2 are AdamW's decay rates of the first and second moments, Eps the term that
	// keeps its denominator off zero: 0.9, 0.999 and 1e-8, PyTorch's defaults, which DETR keeps.
	Beta1, Beta2, Eps float64
	// ClipNorm bounds the global gradient norm: 0.1 (DETR); 0 disables.
	ClipNorm float64
	// Schedule scales both learning rates per step.
	Schedule Schedule
	// Seed drives dropout.
	Seed uint64
	// BF16 runs forward and backward under bf16 autocast (matmuls,
	// convolutions and attention in bf16; reductions and losses in fp32).
	BF16 bool
	// TF32 lets float32 matrix products on CUDA use TensorFloat-32 tensor cores (10-bit
	// mantissas in the products, float32 sums; torch.backends.cuda.matmul.allow_tf32).
	// Convolutions may already, as LibTorch's default has it. CUDA only (CheckDevice).
	TF32 bool
	// CuDNNBenchmark lets cuDNN time the algorithms of each new convolution shape and keep the
	// fastest (torch.backends.cudnn.benchmark): for fixed input sizes. CUDA only.
	CuDNNBenchmark bool
}

// CheckDevice refuses settings dev cannot honour: TF32 and CuDNNBenchmark are CUDA's.
func (c TrainConfig) CheckDevice(dev torch.Device) error {
	if dev.IsCUDA() {
		return nil
	}
	for _, s := range []struct {
		on   bool
		name string
	}{{c.TF32, "tf32 (--tf32, options.tf32)"}, {c.CuDNNBenchmark, "cudnn_benchmark (--cudnn-benchmark, options.cudnn_benchmark)"}} {
		if s.on {
			return fmt.Errorf("%w: %s applies to CUDA devices; this model is on %s", ErrConfig, s.name, dev)
		}
	}
	return nil
}

// PresetClipNorm is the global gradient-norm bound that suits a preset's
// usual recipe: DETR's 0.1 for base and large (a pretrained backbone at lr
// 1e-4), 1 for tiny (from scratch at lr 1e-3, the learning test's: at 0.1
// the tiny model's gradients, of norm ~5–50, are cut so hard that ITM was
// still at chance after 3000 demo steps; docs/BENCHMARKS.md, "Demo").
func PresetClipNorm(preset string) float64 {
	if preset == "tiny" {
		return 1
	}
	return 0.1
}

// DefaultTrainConfig is DETR's recipe with a 1000-step warm-up over
// total steps.
func DefaultTrainConfig(total int) TrainConfig {
	return TrainConfig{LR: 1e-4, BackboneLR: 1e-5, WeightDecay: 1e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, ClipNorm: 0.1,
		Schedule: Schedule{Warmup: min(1000, total/10), Total: total, MinRatio: 0.1}}
}

// Validate names the first bad field.
func (c TrainConfig) Validate() error {
	switch {
	case c.LR <= 0:
		return fmt.Errorf("%w: LR = %v, want > 0", ErrConfig, c.LR)
	case c.BackboneLR < 0:
		return fmt.Errorf("%w: BackboneLR = %v, want >= 0", ErrConfig, c.BackboneLR)
	case c.WeightDecay < 0:
		return fmt.Errorf("%w: WeightDecay = %v, want >= 0", ErrConfig, c.WeightDecay)
	case !(c.Beta1 >= 0 && c.Beta1 < 1):
		return fmt.Errorf("%w: Beta1 = %v, want in [0, 1)", ErrConfig, c.Beta1)
	case !(c.Beta2 >= 0 && c.Beta2 < 1):
		return fmt.Errorf("%w: Beta2 = %v, want in [0, 1)", ErrConfig, c.Beta2)
	case !(c.Eps > 0):
		return fmt.Errorf("%w: Eps = %v, want > 0", ErrConfig, c.Eps)
	case c.ClipNorm < 0:
		return fmt.Errorf("%w: ClipNorm = %v, want >= 0", ErrConfig, c.ClipNorm)
	}
	return c.Schedule.Validate()
}

// ParamGroup is an AdamW parameter group of params at lr with c's betas, eps and weight decay:
// every optimiser of the model (Trainer, the distributed learner) builds its groups here.
func (c TrainConfig) ParamGroup(params []*torch.Tensor, lr float64) torch.ParamGroup {
	g := torch.NewParamGroup(params, lr)
	g.Beta1, g.Beta2, g.Eps, g.WeightDecay = c.Beta1, c.Beta2, c.Eps, c.WeightDecay
	return g
}

// TrainStep is TrainStep under c's precision: bf16 autocast around forward and backward when
// c.BF16, plain fp32 otherwise. Trainer and the distributed learner both step through it.
func (c TrainConfig) TrainStep(s *torch.Scope, m *Model, b *data.Batch, gen *torch.Generator) (StepResult, error) {
	return c.TrainStepWith(s, m, b, gen, nil)
}

// TrainStepWith is TrainStep with TrainStepWith's afterForward.
func (c TrainConfig) TrainStepWith(s *torch.Scope, m *Model, b *data.Batch, gen *torch.Generator, afterForward func(StepResult) error) (StepResult, error) {
	if !c.BF16 {
		return TrainStepWith(s, m, b, gen, afterForward)
	}
	var (
		r   StepResult
		err error
	)
	if aerr := torch.Autocast(torch.BFloat16, func() { r, err = TrainStepWith(s, m, b, gen, afterForward) }); aerr != nil && err == nil {
		err = aerr
	}
	return r, err
}
