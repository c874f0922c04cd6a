package worker

import (
	"context"

	"github.com/e2evlp/vlp/checkpoint"
)

// Pair addresses one image-text pair: pair Offset of work unit Unit of
// epoch Epoch (the epoch plan maps it to a sample and a text).
type Pair struct {
	Epoch  uint64
	Unit   uint32
	Offset uint32
}

// Losses are loss values by name ("mlm", "itm", "det", "cap", "total"),
// each summed over the pairs of a batch (so ranks' sums add up).
type Losses map[string]float64

// Learner is the model side of the loop: the E2E-VLP trainer, or any model
// that computes gradients and steps an optimizer. All of a Learner's
// methods are called from the training goroutine only.
//
// Determinism contract: Init, Gradients and Apply must be pure functions of
// their inputs and the state (no wall clock, no unseeded randomness), so
// that the same seed, world size and data give the same bits.
type Learner interface {
	// GradSize is the number of float32 gradient elements (fixed).
	GradSize() int
	// Init sets fresh parameters and optimizer state from seed.
	Init(seed uint64) error
	// Prepare is a hint that pairs will be asked for next (prefetch);
	// it must not block.
	Prepare(pairs []Pair)
	// Load waits until what Gradients needs for pairs is ready (prepared
	// ahead, or made now): the time it takes is the step's data phase.
	Load(ctx context.Context, pairs []Pair) error
	// Gradients runs forward and backward over pairs and overwrites grad
	// with the gradient of the SUM of the per-pair losses (not the mean:
	// the ranks' sums add up, and the loop divides by the global count).
	// With no pairs it writes zeros. It reports the losses, also summed.
	Gradients(ctx context.Context, pairs []Pair, grad []float32) (Losses, error)
	// Apply clips grad (the global mean gradient) and takes optimizer step
	// number step (1-based, the global step being committed). It returns the
	// gradient norm before clipping.
	Apply(grad []float32, step uint64) (gradNorm float64, err error)
	// Snapshot copies the whole training state to host memory: parameters,
	// optimizer state, RNG states. The copy is the Learner's no more.
	Snapshot() (*checkpoint.Snapshot, error)
	// Restore replaces the training state with snap's.
	Restore(snap *checkpoint.Snapshot) error
}

// OverlapLearner is a Learner whose backward hands its gradient over in ranges as it produces
// them, so that their all-reduce overlaps the rest of backward.
type OverlapLearner interface {
	Learner
	// GradBuffer is the learner's own gradient buffer (GradSize elements), which the worker
	// all-reduces in place and hands back to Apply; nil when the learner does not overlap.
	GradBuffer() []float32
	// GradientsOverlapped is Gradients into GradBuffer. After the forward pass it calls started
	// with the step's summed losses (the metadata of the first collective needs them), then
	// ready(lo, hi) once for every range of the buffer, always in the same order (on every rank
	// and every step), as soon as the range holds its final summed gradient. Every range has
	// been handed over when it returns without error; on an error some may not have been.
	// started and ready run on one goroutine of the learner's, never after it returns.
	GradientsOverlapped(ctx context.Context, pairs []Pair, started func(Losses) error, ready func(lo, hi int)) (Losses, error)
}
