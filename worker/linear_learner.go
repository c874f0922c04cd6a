package worker

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/e2evlp/vlp/checkpoint"
)

// LinearLearner is a small pure-Go Learner: least-squares regression of a
// fixed random linear function of per-pair features, trained with AdamW and
// gradient clipping in float32. Every pair's features are a hash of its
// position, so which pairs a step consumed shows in the parameters. It
// exercises the whole distributed loop with no LibTorch, deterministically.
type LinearLearner struct {
	dim     int
	perUnit uint32
	hyper   LinearHyper

	w, m, v []float32
	t       uint64 // optimizer steps taken
}

// LinearHyper are LinearLearner's optimizer settings.
type LinearHyper struct {
	LR, Beta1, Beta2, Eps, WeightDecay, ClipNorm float64
	// Compute is extra time each Gradients call takes per pair, standing
	// in for a real model's forward and backward in simulations.
	Compute time.Duration
}

var _ Learner = (*LinearLearner)(nil)

// NewLinearLearner learns dim parameters; perUnit is the job's pairs per
// unit, which turns a Pair into its epoch-wide id.
func NewLinearLearner(dim int, perUnit uint32, h LinearHyper) *LinearLearner {
	if h.Beta1 == 0 {
		h.Beta1 = 0.9
	}
	if h.Beta2 == 0 {
		h.Beta2 = 0.999
	}
	if h.Eps == 0 {
		h.Eps = 1e-8
	}
	if h.LR == 0 {
		h.LR = 1e-2
	}
	return &LinearLearner{dim: dim, perUnit: perUnit, hyper: h,
		w: make([]float32, dim), m: make([]float32, dim), v: make([]float32, dim)}
}

// PairID is the epoch-wide id of a pair under units of perUnit pairs.
func PairID(p Pair, perUnit uint32) uint64 { return uint64(p.Unit)*uint64(perUnit) + uint64(p.Offset) }

func hashUnit(a, b uint64) float32 {
	z := a*0x9e3779b97f4a7c15 ^ (b + 0x632be59bd9b4e019)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return float32(z>>40)/float32(1<<24)*2 - 1 // [-1, 1)
}

// GradSize implements Learner.
func (l *LinearLearner) GradSize() int { return l.dim }

// Init implements Learner.
func (l *LinearLearner) Init(seed uint64) error {
	for i := range l.w {
		l.w[i] = 0.01 * hashUnit(seed, uint64(i))
		l.m[i], l.v[i] = 0, 0
	}
	l.t = 0
	return nil
}

// Prepare implements Learner.
func (l *LinearLearner) Prepare([]Pair) {}

// Load implements Learner: the linear model's data is computed, not loaded.
func (l *LinearLearner) Load(context.Context, []Pair) error { return nil }

// Gradients implements Learner.
func (l *LinearLearner) Gradients(ctx context.Context, pairs []Pair, grad []float32) (Losses, error) {
	clear(grad)
	if d := l.hyper.Compute * time.Duration(len(pairs)); d > 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(d):
		}
	}
	x := make([]float32, l.dim)
	var loss float64
	for _, p := range pairs {
		id := PairID(p, l.perUnit) + p.Epoch<<40
		var pred, y float32
		for i := range x {
			x[i] = hashUnit(id, uint64(i)+1)
			pred += l.w[i] * x[i]
			y += hashUnit(0xfeed, uint64(i)) * x[i]
		}
		r := pred - y
		loss += 0.5 * float64(r) * float64(r)
		for i := range x {
			grad[i] += r * x[i]
		}
	}
	return Losses{"total": loss, "mse": loss}, nil
}

// Apply implements Learner.
func (l *LinearLearner) Apply(grad []float32, step uint64) (float64, error) {
	var sq float64
	for _, g := range grad {
		sq += float64(g) * float64(g)
	}
	norm := math.Sqrt(sq)
	scale := float32(1)
	if c := l.hyper.ClipNorm; c > 0 && norm > c {
		scale = float32(c / (norm + 1e-6))
	}
	l.t = step
	h := l.hyper
	b1, b2 := float32(h.Beta1), float32(h.Beta2)
	bc1 := float32(1 - math.Pow(h.Beta1, float64(step)))
	bc2 := float32(1 - math.Pow(h.Beta2, float64(step)))
	lr, eps, wd := float32(h.LR), float32(h.Eps), float32(h.WeightDecay)
	for i, g := range grad {
		g *= scale
		l.w[i] -= lr * wd * l.w[i]
		l.m[i] = b1*l.m[i] + (1-b1)*g
		l.v[i] = b2*l.v[i] + (1-b2)*g*g
		mh := l.m[i] / bc1
		vh := l.v[i] / bc2
		l.w[i] -= lr * mh / (float32(math.Sqrt(float64(vh))) + eps)
	}
	return norm, nil
}

// Params returns a copy of the parameters.
func (l *LinearLearner) Params() []float32 { return append([]float32(nil), l.w...) }

func f32Tensor(name string, v []float32) checkpoint.Tensor { return checkpoint.Float32Tensor(name, v) }

func tensorF32(t checkpoint.Tensor, dst []float32) error {
	if err := t.Float32s(dst); err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	return nil
}

// Snapshot implements Learner.
func (l *LinearLearner) Snapshot() (*checkpoint.Snapshot, error) {
	var st [8]byte
	binary.LittleEndian.PutUint64(st[:], l.t)
	return &checkpoint.Snapshot{
		Params:    []checkpoint.Tensor{f32Tensor("linear.weight", l.w)},
		Optimizer: []checkpoint.Tensor{f32Tensor("linear.weight.exp_avg", l.m), f32Tensor("linear.weight.exp_avg_sq", l.v), checkpoint.Blob("step", st[:])},
	}, nil
}

// Restore implements Learner.
func (l *LinearLearner) Restore(s *checkpoint.Snapshot) error {
	if s == nil {
		return fmt.Errorf("%w: no snapshot", ErrState)
	}
	find := func(g checkpoint.Group, name string) (checkpoint.Tensor, error) {
		t, ok := s.Find(g, name)
		if !ok {
			return t, fmt.Errorf("%w: snapshot has no %s tensor %q", ErrState, g, name)
		}
		return t, nil
	}
	for _, x := range []struct {
		g    checkpoint.Group
		name string
		dst  []float32
	}{{checkpoint.GroupParams, "linear.weight", l.w}, {checkpoint.GroupOptimizer, "linear.weight.exp_avg", l.m}, {checkpoint.GroupOptimizer, "linear.weight.exp_avg_sq", l.v}} {
		t, err := find(x.g, x.name)
		if err != nil {
			return err
		}
		if err := tensorF32(t, x.dst); err != nil {
			return err
		}
	}
	t, err := find(checkpoint.GroupOptimizer, "step")
	if err != nil {
		return err
	}
	if len(t.Data) != 8 {
		return fmt.Errorf("%w: optimizer step blob of %d bytes", ErrState, len(t.Data))
	}
	l.t = binary.LittleEndian.Uint64(t.Data)
	return nil
}
