package train

import (
	"context"
	"github.com/e2evlp/vlp/worker"
	"slices"
	"sync"

	"github.com/e2evlp/vlp/data"
)

// batchAhead builds the batch of a step's pairs on a goroutine of its own, off the LibTorch
// thread: the worker names the next step's pairs as soon as its queue holds them (Prepare), and
// the batch is built while the current step computes. A batch is a function of its pairs, the
// job's seed and the data configuration only, so a batch built ahead has the same bits as one
// built on time. At most one batch is built ahead and one is held ready: memory stays bounded.
type batchAhead struct {
	build func([]worker.Pair) (*stepBatch, error)

	mu    sync.Mutex // one build at a time: an ExampleSource serves one caller at a time
	ahead *pending   // the batch being built for the next step, if any
	ready *pending   // the batch Load took for this step, for Gradients
	early int        // batches load found prepared ahead (for tests and logs)
}

// pending is one batch being built (or built) for pairs.
type pending struct {
	pairs []worker.Pair
	done  chan struct{}
	b     *stepBatch
	err   error
}

// stepBatch is one step's host batch: pretraining's, or a fine-tuning task's.
type stepBatch struct {
	pre  *data.Batch
	task *taskBatch
}

// size is the batch's rows.
func (b *stepBatch) size() int {
	if b.task != nil {
		return b.task.rows
	}
	return b.pre.Size
}

// prepare starts building the batch of pairs unless it is already being built.
func (a *batchAhead) prepare(pairs []worker.Pair) {
	if len(pairs) == 0 || (a.ahead != nil && slices.Equal(a.ahead.pairs, pairs)) {
		return
	}
	p := &pending{pairs: slices.Clone(pairs), done: make(chan struct{})}
	a.ahead = p
	go func() {
		defer close(p.done)
		a.mu.Lock()
		defer a.mu.Unlock()
		p.b, p.err = a.build(p.pairs)
	}()
}

// load waits until the batch of pairs is built — the one prepared ahead, or one started now — and
// holds it for take. It returns early with ctx's error.
func (a *batchAhead) load(ctx context.Context, pairs []worker.Pair) error {
	if len(pairs) == 0 {
		return nil
	}
	if a.ahead != nil && slices.Equal(a.ahead.pairs, pairs) {
		a.early++
	}
	a.prepare(pairs)
	p := a.ahead
	a.ahead = nil
	select {
	case <-p.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	a.ready = p
	return p.err
}

// take returns the batch of pairs: the one load holds, else one built now.
func (a *batchAhead) take(pairs []worker.Pair) (*stepBatch, error) {
	if p := a.ready; p != nil {
		a.ready = nil
		if slices.Equal(p.pairs, pairs) {
			return p.b, p.err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.build(pairs)
}
