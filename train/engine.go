package train

import (
	"fmt"
	"time"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/torch"
)

// Engine is one model under training — the one optimiser of E2E-VLP: AdamW with two parameter
// groups (the transformer and heads at LR, the backbone at BackboneLR), the warm-up + cosine
// schedule, global-norm clipping, bf16 autocast and dropout drawn from the engine's generator, all
// as model.TrainConfig says. `vlp train --local` and the learning test step it directly (Step);
// Learner drives it for the workers, with the all-reduce between Backward and Update.
//
// An Engine's LibTorch calls belong on one OS thread (the thread count and autocast are per
// thread); it owns its optimiser state and generator, not the model.
type Engine struct {
	cfg     model.TrainConfig
	m       *model.Model
	opt     *torch.AdamW
	gen     *torch.Generator
	params  []*model.Param  // the model's parameters and buffers, then a task head's (model.TaskParams)
	train   []*torch.Tensor // trainable parameters: the rest, then the backbone (the optimiser's order)
	buffers []*torch.Tensor // BatchNorm statistics
	steps   int             // Step calls that succeeded
}

// Metrics is one training step's report.
type Metrics struct {
	Step     int
	LR       float64 // transformer learning rate used by this step
	GradNorm float64 // global norm before clipping
	model.StepResult
	Optimizer time.Duration
	Total     time.Duration
}

// NewEngine builds the optimiser and the dropout generator (seeded with cfg.Seed) for m.
func NewEngine(m *model.Model, cfg model.TrainConfig) (*Engine, error) {
	return NewTaskEngine(m, nil, cfg)
}

// NewTaskEngine is NewEngine for a fine-tuning model: m and, when not nil, a task head whose
// parameters train with the transformer's group (model.TaskParams).
func NewTaskEngine(m *model.Model, head model.TaskHead, cfg model.TrainConfig) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.CheckDevice(m.Device); err != nil {
		return nil, err
	}
	if m.Device.IsCUDA() {
		// Process-wide, as PyTorch's switches are; cuDNN's own TF32 stays LibTorch's default.
		cm, err := torch.GetCUDAMath()
		if err != nil {
			return nil, err
		}
		cm.TF32Matmul, cm.CuDNNBenchmark = cfg.TF32, cfg.CuDNNBenchmark
		if err := torch.SetCUDAMath(cm); err != nil {
			return nil, err
		}
	}
	e := &Engine{cfg: cfg, m: m, params: m.Params()}
	if head != nil {
		e.params = model.TaskParams(m, head)
	}
	var bb, rest []*torch.Tensor
	for _, p := range e.params {
		switch {
		case p.Buffer:
			e.buffers = append(e.buffers, p.T)
		case !p.Trainable():
		case p.Backbone:
			bb = append(bb, p.T)
		default:
			rest = append(rest, p.T)
		}
	}
	e.train = append(append([]*torch.Tensor{}, rest...), bb...)
	groups := []torch.ParamGroup{cfg.ParamGroup(rest, cfg.LR)}
	if len(bb) > 0 {
		groups = append(groups, cfg.ParamGroup(bb, cfg.BackboneLR))
	}
	var err error
	if e.opt, err = torch.NewAdamW(groups); err != nil {
		return nil, fmt.Errorf("train: optimiser: %w", err)
	}
	if e.gen, err = torch.NewGenerator(int64(cfg.Seed), m.Device); err != nil {
		e.opt.Close()
		return nil, err
	}
	return e, nil
}

// Close frees the optimiser state and the generator (not the model).
func (e *Engine) Close() {
	e.opt.Close()
	e.gen.Close()
}

// Model is the model being trained.
func (e *Engine) Model() *model.Model { return e.m }

// Config is the training configuration.
func (e *Engine) Config() model.TrainConfig { return e.cfg }

// StepCount is the number of Step calls that succeeded.
func (e *Engine) StepCount() int { return e.steps }

// ZeroGrad drops the trainable parameters' gradients (set to none).
func (e *Engine) ZeroGrad() error { return torch.ZeroGrad(e.train) }

// Backward runs forward, the criterion and backward on b (bf16 autocast when the configuration
// says), accumulating into the parameters' gradients, with afterForward (if not nil) between
// the forward pass and backward (model.TrainStepWith). The caller owns s.
func (e *Engine) Backward(s *torch.Scope, b *data.Batch, afterForward func(model.StepResult) error) (model.StepResult, error) {
	return e.cfg.TrainStepWith(s, e.m, b, e.gen, afterForward)
}

// Update takes the optimiser step at schedule index step (0-based): both groups' learning rates
// from the schedule, clipping of the global gradient norm, AdamW. It returns the transformer's
// learning rate and the norm before clipping.
func (e *Engine) Update(step int) (lr, norm float64, err error) {
	f := e.cfg.Schedule.Factor(step)
	lr = e.cfg.LR * f
	if err := e.opt.SetLR(0, lr); err != nil {
		return lr, 0, err
	}
	if e.opt.Groups() > 1 {
		if err := e.opt.SetLR(1, e.cfg.BackboneLR*f); err != nil {
			return lr, 0, err
		}
	}
	if e.cfg.ClipNorm > 0 {
		if norm, err = torch.ClipGradNorm(e.train, e.cfg.ClipNorm); err != nil {
			return lr, 0, err
		}
	}
	if err := e.opt.Step(); err != nil {
		return lr, norm, fmt.Errorf("train: optimiser step: %w", err)
	}
	return lr, norm, nil
}

// Step trains on one batch in this process: gradients dropped, forward and backward, the
// schedule's learning rate, clipping, AdamW. A failed step (a non-finite loss) changes no
// parameter and does not count.
func (e *Engine) Step(b *data.Batch) (Metrics, error) {
	start := time.Now()
	mt := Metrics{Step: e.steps}
	if err := e.ZeroGrad(); err != nil {
		return mt, err
	}
	s := torch.NewScope()
	defer s.Close()
	r, err := e.Backward(s, b, nil)
	mt.StepResult = r
	if err != nil {
		return mt, err
	}
	t0 := time.Now()
	if mt.LR, mt.GradNorm, err = e.Update(e.steps); err != nil {
		return mt, err
	}
	mt.Optimizer = time.Since(t0)
	e.steps++
	mt.Total = time.Since(start)
	return mt, nil
}
