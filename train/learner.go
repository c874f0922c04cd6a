package train

import (
	"context"
	"encoding/binary"
	"fmt"
	"github.com/e2evlp/vlp/worker"
	"runtime"

	"github.com/e2evlp/vlp/allreduce"
	"github.com/e2evlp/vlp/checkpoint"
	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/torch"
)

// Config configures a Learner.
type Config struct {
	Model  model.Config
	Train  model.TrainConfig // optimiser, schedule, clipping and precision (BF16)
	Device torch.Device
	// Source maps pairs to examples (ShardExamples: shards through the
	// data pipeline); nil: the in-memory World (SynthExamples). Data builds
	// the batches (Seed is the job's: with the epoch and the pair id it
	// seeds MLM masking and ITM) with Tokenizer (nil: the World's).
	Source    ExampleSource
	Tokenizer *data.Tokenizer
	World     *data.SynthWorld
	Data      data.Config
	// PerUnit is the job's pairs per work unit: unit u's pairs are
	// positions u·PerUnit… of the epoch's order.
	PerUnit uint32
	Seed    uint64
	// Threads is LibTorch's intra-op thread count (0: its default). The
	// setting is per OS thread, so the learner runs all its LibTorch work on
	// one locked thread: a reduction split over a different number of
	// threads would give different bits.
	Threads int
	// Overlap keeps the gradients in buckets (vlp_buckets.go) whose all-reduce the worker
	// starts while backward still runs; BucketBytes is their size (0: an eighth of
	// the gradients within [1 MiB, 25 MiB], buckets.go).
	// Without it the gradients are copied into the worker's buffer after backward.
	Overlap     bool
	BucketBytes int
	// Task, when not nil, trains a fine-tuning task instead of pretraining (task_learner.go):
	// its examples replace Source and World, its forward pass and loss pretraining's.
	Task *TaskConfig
}

// Learner trains E2E-VLP (package model) as a worker.Learner: TrainStep for
// forward and backward, the gradients flattened to one host buffer for the
// ring, AdamW with the backbone's own learning rate.
//
// BatchNorm running statistics (buffers) ride at the end of the gradient
// buffer, weighted by each rank's pairs, so that every rank ends a step
// with the same averaged statistics: the ranks stay bitwise-identical.
// Dropout is seeded per step from the batch's first pair, so no generator
// state needs checkpointing and a resumed run draws the same masks.
type Learner struct {
	cfg   Config
	e     *Engine        // the model, its optimiser, schedule, clipping and generator
	head  model.TaskHead // a fine-tuning task's head, if it has one
	nGrad int
	nBuf  int
	bk    *torch.Buckets // with Overlap: the gradients' flat buffer and its buckets
	data  batchAhead     // batches built ahead, off the LibTorch thread

	work chan func()
	quit chan struct{}
}

// startThread runs the learner's LibTorch work on one locked OS thread.
func (l *Learner) startThread() {
	l.work, l.quit = make(chan func()), make(chan struct{})
	ready := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if l.cfg.Threads > 0 {
			torch.NumThreads(l.cfg.Threads)
		}
		close(ready)
		for {
			select {
			case f := <-l.work:
				f()
			case <-l.quit:
				return
			}
		}
	}()
	<-ready
}

// do runs f on the learner's thread and waits for it.
func (l *Learner) do(f func()) {
	done := make(chan struct{})
	l.work <- func() {
		defer close(done)
		f()
	}
	<-done
}

var _ worker.Learner = (*Learner)(nil)

// New builds the model (initialised from cfg.Seed) and its optimizer.
func New(cfg Config) (*Learner, error) {
	if cfg.PerUnit == 0 {
		return nil, fmt.Errorf("%w: Config.PerUnit is 0", worker.ErrConfig)
	}
	if cfg.Task != nil {
		if err := cfg.Task.validate(cfg); err != nil {
			return nil, err
		}
	} else if cfg.Source == nil {
		if cfg.World == nil || len(cfg.World.Examples) == 0 {
			return nil, fmt.Errorf("%w: Config has no Source and its World has no pairs", worker.ErrConfig)
		}
		cfg.Source = &SynthExamples{World: cfg.World, Seed: cfg.Seed, PerUnit: cfg.PerUnit}
	}
	if cfg.Tokenizer == nil && cfg.Task == nil {
		if cfg.World == nil {
			return nil, fmt.Errorf("%w: Config has no Tokenizer", worker.ErrConfig)
		}
		cfg.Tokenizer = cfg.World.Tokenizer
	}
	if err := cfg.Train.Validate(); err != nil {
		return nil, err
	}
	l := &Learner{cfg: cfg}
	l.data.build = l.buildBatch
	l.startThread()
	var err error
	l.do(func() { err = l.build() })
	if err != nil {
		close(l.quit)
		return nil, err
	}
	return l, nil
}

func (l *Learner) build() error {
	cfg := l.cfg
	m, err := model.New(cfg.Model, cfg.Seed, cfg.Device)
	if err != nil {
		return err
	}
	if l.head, err = cfg.Task.newHead(cfg.Model, cfg.Seed, cfg.Device); err != nil {
		m.Close()
		return err
	}
	if l.e, err = NewTaskEngine(m, l.head, cfg.Train); err != nil {
		l.closeHead()
		m.Close()
		return err
	}
	l.nGrad = int(torch.NumElements(l.e.train))
	l.nBuf = int(torch.NumElements(l.e.buffers))
	if cfg.Overlap {
		if err := l.buildBuckets(); err != nil {
			l.e.Close()
			l.closeHead()
			m.Close()
			return err
		}
	}
	return nil
}

// Model is the model being trained.
func (l *Learner) Model() *model.Model { return l.e.m }

// Close frees the model, the optimizer state and the generator.
func (l *Learner) Close() {
	l.do(func() {
		l.bk.Close()
		l.e.Close()
		l.closeHead()
		l.e.m.Close()
	})
	close(l.quit)
}

// GradSize implements worker.Learner: the trainable parameters' gradients, then
// the buffers.
func (l *Learner) GradSize() int { return l.nGrad + l.nBuf }

// Init implements worker.Learner: the parameters a fresh model built from seed
// has, and an empty optimizer state.
func (l *Learner) Init(seed uint64) error {
	var err error
	l.do(func() { err = l.init(seed) })
	return err
}

func (l *Learner) init(seed uint64) error {
	fresh, err := model.New(l.cfg.Model, seed, l.cfg.Device)
	if err != nil {
		return err
	}
	defer fresh.Close()
	src := fresh.Params()
	head, err := l.cfg.Task.newHead(l.cfg.Model, seed, l.cfg.Device)
	if err != nil {
		return err
	}
	if head != nil {
		defer head.Close()
		src = model.TaskParams(fresh, head)
	}
	dst := l.e.params
	for i := range dst {
		buf := make([]float32, numel(dst[i].Shape))
		if err := torch.FlattenParams([]*torch.Tensor{src[i].T}, buf); err != nil {
			return err
		}
		if err := torch.UnflattenParams([]*torch.Tensor{dst[i].T}, buf); err != nil {
			return err
		}
	}
	if err := l.cfg.Task.initFromPretrained(l.e.params); err != nil {
		return err
	}
	zero := make([]float32, l.e.opt.StateElements())
	return l.e.opt.UnflattenState(zero, make([]int64, l.e.opt.NumParams()))
}

func numel(shape []int64) int {
	n := 1
	for _, d := range shape {
		n *= int(d)
	}
	return n
}

// Prepare implements worker.Learner: the batch of pairs is built ahead, on a goroutine.
func (l *Learner) Prepare(pairs []worker.Pair) { l.data.prepare(pairs) }

// Load implements worker.Learner: it waits for the batch of pairs.
func (l *Learner) Load(ctx context.Context, pairs []worker.Pair) error {
	return l.data.load(ctx, pairs)
}

// Gradients implements worker.Learner.
func (l *Learner) Gradients(ctx context.Context, pairs []worker.Pair, grad []float32) (worker.Losses, error) {
	if l.bk != nil {
		losses, err := l.GradientsOverlapped(ctx, pairs, nil, nil)
		if err == nil && !sameBuffer(grad, l.bk.Host()) {
			copy(grad, l.bk.Host())
		}
		return losses, err
	}
	var (
		r0  worker.Losses
		err error
	)
	l.do(func() { r0, err = l.gradients(pairs, grad) })
	return r0, err
}

func (l *Learner) gradients(pairs []worker.Pair, grad []float32) (worker.Losses, error) {
	clear(grad)
	if len(pairs) == 0 {
		return worker.Losses{}, nil
	}
	b, err := l.data.take(pairs)
	if err != nil {
		return nil, err
	}
	if err := l.e.ZeroGrad(); err != nil {
		return nil, err
	}
	if err := l.e.gen.Seed(int64(mixSeed(l.cfg.Seed, pairs[0].Epoch, worker.PairID(pairs[0], l.cfg.PerUnit)) >> 1)); err != nil {
		return nil, err
	}
	s := torch.NewScope()
	defer s.Close()
	r, err := l.backward(s, b, nil) // bf16 autocast when Train.BF16
	if err != nil {
		return nil, err
	}
	// TrainStep's losses are means over the rows: scale them (and the
	// gradients) to sums, which add up across ranks.
	n := float32(b.size())
	if err := torch.FlattenGrads(l.e.train, grad[:l.nGrad]); err != nil {
		return nil, err
	}
	if l.nBuf > 0 {
		if err := torch.FlattenParams(l.e.buffers, grad[l.nGrad:]); err != nil {
			return nil, err
		}
	}
	allreduce.Scale(grad, n)
	out := worker.Losses{}
	for k, v := range r.Losses {
		out[k] = v * float64(b.size())
	}
	return out, nil
}

func mixSeed(a, b, c uint64) uint64 {
	z := a ^ 0x9e3779b97f4a7c15
	for _, v := range []uint64{b, c} {
		z ^= v + 0x632be59bd9b4e019 + z<<6 + z>>2
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
	}
	return z
}

// Apply implements worker.Learner: the learning-rate schedule at step, the
// averaged gradients and buffers into the model, clipping, AdamW.
func (l *Learner) Apply(grad []float32, step uint64) (float64, error) {
	var (
		r0  float64
		err error
	)
	if l.bk != nil && !sameBuffer(grad, l.bk.Host()) {
		copy(l.bk.Host(), grad)
	}
	l.do(func() { r0, err = l.apply(grad, step) })
	return r0, err
}

func (l *Learner) apply(grad []float32, step uint64) (float64, error) {
	if l.bk != nil {
		// The gradients are views into the buffer the worker all-reduced (on CUDA, its host
		// copy goes back to the device).
		if err := l.bk.ToDevice(); err != nil {
			return 0, err
		}
	} else if err := torch.UnflattenGrads(l.e.train, grad[:l.nGrad]); err != nil {
		return 0, err
	}
	if l.nBuf > 0 {
		if err := torch.UnflattenParams(l.e.buffers, grad[l.nGrad:]); err != nil {
			return 0, err
		}
	}
	_, norm, err := l.e.Update(int(step) - 1)
	return norm, err
}

// Snapshot implements worker.Learner: every named parameter and buffer, and the
// AdamW state as one flat tensor with the per-parameter step counts.
func (l *Learner) Snapshot() (*checkpoint.Snapshot, error) {
	var (
		r0  *checkpoint.Snapshot
		err error
	)
	l.do(func() { r0, err = l.snapshot() })
	return r0, err
}

func (l *Learner) snapshot() (*checkpoint.Snapshot, error) {
	snap := &checkpoint.Snapshot{}
	for _, p := range l.e.params {
		buf := make([]float32, numel(p.Shape))
		if err := torch.FlattenParams([]*torch.Tensor{p.T}, buf); err != nil {
			return nil, fmt.Errorf("worker: snapshot %s: %w", p.Name, err)
		}
		t := checkpoint.Float32Tensor(p.Name, buf)
		t.Shape = append([]int64(nil), p.Shape...)
		snap.Params = append(snap.Params, t)
	}
	st := make([]float32, l.e.opt.StateElements())
	steps := make([]int64, l.e.opt.NumParams())
	if err := l.e.opt.FlattenState(st, steps); err != nil {
		return nil, fmt.Errorf("worker: snapshot optimizer: %w", err)
	}
	sb := make([]byte, 8*len(steps))
	for i, s := range steps {
		binary.LittleEndian.PutUint64(sb[8*i:], uint64(s))
	}
	snap.Meta.Layout = l.e.m.Config.Layout()
	snap.Optimizer = []checkpoint.Tensor{
		checkpoint.Float32Tensor("adamw.state", st),
		{Name: "adamw.steps", DType: checkpoint.Int64, Shape: []int64{int64(len(steps))}, Data: sb},
	}
	return snap, nil
}

// Restore implements worker.Learner.
func (l *Learner) Restore(snap *checkpoint.Snapshot) error {
	var err error
	l.do(func() { err = l.restore(snap) })
	return err
}

func (l *Learner) restore(snap *checkpoint.Snapshot) error {
	if snap == nil {
		return fmt.Errorf("%w: no snapshot", worker.ErrState)
	}
	if err := l.e.m.Config.CheckLayout(snap.Meta.Layout); err != nil {
		return fmt.Errorf("%w: %w", worker.ErrState, err)
	}
	for _, p := range l.e.params {
		t, ok := snap.Find(checkpoint.GroupParams, p.Name)
		if !ok {
			return fmt.Errorf("%w: the snapshot has no parameter %q", worker.ErrState, p.Name)
		}
		buf := make([]float32, numel(p.Shape))
		if err := float32s(t, buf); err != nil {
			return err
		}
		if err := torch.UnflattenParams([]*torch.Tensor{p.T}, buf); err != nil {
			return err
		}
	}
	t, ok := snap.Find(checkpoint.GroupOptimizer, "adamw.state")
	if !ok {
		return fmt.Errorf("%w: the snapshot has no optimizer state", worker.ErrState)
	}
	st := make([]float32, l.e.opt.StateElements())
	if err := float32s(t, st); err != nil {
		return err
	}
	ts, ok := snap.Find(checkpoint.GroupOptimizer, "adamw.steps")
	if !ok || len(ts.Data) != 8*l.e.opt.NumParams() {
		return fmt.Errorf("%w: the snapshot's optimizer step counts are missing or do not fit", worker.ErrState)
	}
	steps := make([]int64, l.e.opt.NumParams())
	for i := range steps {
		steps[i] = int64(binary.LittleEndian.Uint64(ts.Data[8*i:]))
	}
	return l.e.opt.UnflattenState(st, steps)
}

// sameBuffer reports whether a and b are the same memory.
func sameBuffer(a, b []float32) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// float32s copies a float32 checkpoint tensor into dst; a mismatch is a bad state.
func float32s(t checkpoint.Tensor, dst []float32) error {
	if err := t.Float32s(dst); err != nil {
		return fmt.Errorf("%w: %w", worker.ErrState, err)
	}
	return nil
}
