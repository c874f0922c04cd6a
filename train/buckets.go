package train

import (
	"context"
	"errors"
	"fmt"
	"github.com/e2evlp/vlp/worker"

	"github.com/e2evlp/vlp/allreduce"
	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/torch"
)

// Gradient buckets (torch.Buckets): the learner's gradients live in one flat buffer laid out in
// the order backward reaches the parameters — the model's parameters last to first — and cut into
// buckets, the first one small (firstBucketBytes, as DistributedDataParallel does) so that
// communication starts early, the last one smaller still (lastBucketBytes) so that little of it is
// left once backward ends, the others up to BucketBytes (by default an eighth of the gradients,
// at least 1 MiB and at most DDP's 25 MiB: defaultBucketBytes). Backward
// reports each bucket when it has accumulated all of it, and the worker starts that bucket's
// all-reduce while backward goes on. The BatchNorm statistics follow the gradients in the buffer and travel first, with the
// step's metadata, as soon as the forward pass has updated them.

// DefaultBucketBytes is DistributedDataParallel's bucket size (25 MiB): the largest default bucket.
const DefaultBucketBytes = 25 << 20

// minBucketBytes is the smallest default bucket (1 MiB).
const minBucketBytes = 1 << 20

// defaultBucketBytes is the bucket size when Config.BucketBytes is 0, for gradients of total
// bytes: an eighth of them, within [1 MiB, 25 MiB]. A model with more than 200 MiB of gradients
// gets DDP's 25 MiB; a smaller one still gets several buckets, so that its all-reduce starts during
// backward — with 25 MiB the tiny preset's 4.7 MB were one bucket after a first small one, sent only
// once backward had finished (docs/BENCHMARKS.md, "Against PyTorch DistributedDataParallel").
func defaultBucketBytes(total int) int {
	return min(DefaultBucketBytes, max(minBucketBytes, total/8))
}

// firstBucketBytes bounds the first bucket (DDP's 1 MiB).
const firstBucketBytes = 1 << 20

// lastBucketBytes bounds the last bucket: the gradients backward writes last (the backbone's
// first layers) can only be sent once it has finished, so what stays of the all-reduce after
// backward is that bucket's — the smaller, the shorter.
const lastBucketBytes = 256 << 10

var _ worker.OverlapLearner = (*Learner)(nil)

// bucketEnds cuts params into buckets (the end index of each): the first at most first bytes,
// the last at most last bytes, the others at most bytes; a parameter larger than its bound is a
// bucket of its own.
func bucketEnds(params []*torch.Tensor, first, bytes, last int) []int {
	// The last bucket: as many parameters from the end as fit in last bytes (at least one).
	tail, size := len(params), 0
	for tail > 0 {
		n := 4 * int(params[tail-1].Numel())
		if size > 0 && size+n > last {
			break
		}
		size += n
		tail--
	}
	var ends []int
	limit := first
	size = 0
	for i, p := range params[:tail] {
		n := 4 * int(p.Numel())
		if size > 0 && size+n > limit {
			ends = append(ends, i)
			limit, size = bytes, 0
		}
		size += n
	}
	if tail > 0 {
		ends = append(ends, tail)
	}
	return append(ends, len(params))
}

// buildBuckets lays the trainable parameters out for backward's order and hooks them.
func (l *Learner) buildBuckets() error {
	ps := l.e.params
	var order []*torch.Tensor
	for i := len(ps) - 1; i >= 0; i-- {
		if p := ps[i]; !p.Buffer && p.Trainable() {
			order = append(order, p.T)
		}
	}
	bytes := l.cfg.BucketBytes
	if bytes == 0 {
		bytes = defaultBucketBytes(4 * int(torch.NumElements(order)))
	}
	bk, err := torch.NewBuckets(order, bucketEnds(order, min(firstBucketBytes, bytes), bytes, min(lastBucketBytes, bytes)), l.nBuf)
	if err != nil {
		return fmt.Errorf("worker: gradient buckets: %w", err)
	}
	l.bk = bk
	return nil
}

// GradBuffer implements OverlapLearner.
func (l *Learner) GradBuffer() []float32 {
	if l.bk == nil {
		return nil
	}
	return l.bk.Host()
}

// GradientsOverlapped implements OverlapLearner.
func (l *Learner) GradientsOverlapped(_ context.Context, pairs []worker.Pair, started func(worker.Losses) error, ready func(lo, hi int)) (worker.Losses, error) {
	if l.bk == nil {
		return nil, errors.New("worker: the learner keeps no gradient buckets")
	}
	if started == nil {
		started = func(worker.Losses) error { return nil }
	}
	if ready == nil {
		ready = func(int, int) {}
	}
	host, nGrad := l.bk.Host(), l.bk.GradElements()
	var b *stepBatch
	if len(pairs) > 0 {
		var err error
		if b, err = l.data.take(pairs); err != nil {
			return nil, err
		}
	}
	var epoch int32
	var err error
	l.do(func() { epoch, err = l.bk.Arm() })
	if err != nil {
		return nil, err
	}
	// The launcher hands the ranges over in order: the statistics once the forward pass is done,
	// then bucket after bucket as backward (or Finish) reports them.
	forward := make(chan bool, 1) // true: the forward pass succeeded, the ranges are to be handed over
	finished := make(chan struct{})
	done := make(chan struct{})
	var n float32
	go func() {
		defer close(done)
		ok := <-forward
		if ok && l.nBuf > 0 {
			ready(nGrad, nGrad+l.nBuf)
		}
		got := make([]bool, l.bk.Len())
		next := 0
		for next < len(got) {
			select {
			case r, open := <-l.bk.Ready():
				if !open {
					return
				}
				if r.Epoch != epoch {
					continue // a report of an abandoned step's backward
				}
				got[r.Bucket] = true
			case <-finished:
				return // Finish failed: the remaining reports may never come
			}
			for ; next < len(got) && got[next]; next++ {
				if ok {
					lo, hi := l.bk.Range(next)
					allreduce.Scale(host[lo:hi], n)
					ready(lo, hi)
				}
			}
		}
	}()
	var out worker.Losses
	l.do(func() {
		defer func() {
			if ferr := l.bk.Finish(); ferr != nil {
				close(finished)
				if err == nil {
					err = ferr
				}
			}
		}()
		if b == nil {
			clear(host)
			out = worker.Losses{}
			if err = started(out); err == nil {
				forward <- true
			}
			return
		}
		n = float32(b.size())
		if err = l.e.gen.Seed(int64(mixSeed(l.cfg.Seed, pairs[0].Epoch, worker.PairID(pairs[0], l.cfg.PerUnit)) >> 1)); err != nil {
			return
		}
		s := torch.NewScope()
		defer s.Close()
		_, err = l.backward(s, b, func(r model.StepResult) error {
			// TrainStep's losses are means over the rows: scale them (and the gradients, and
			// the statistics) to sums, which add up across ranks.
			if l.nBuf > 0 {
				if err := torch.FlattenParams(l.e.buffers, host[nGrad:]); err != nil {
					return err
				}
				allreduce.Scale(host[nGrad:], n)
			}
			out = worker.Losses{}
			for k, v := range r.Losses {
				out[k] = v * float64(b.size())
			}
			if err := started(out); err != nil {
				return err
			}
			forward <- true
			return nil
		})
	})
	select {
	case forward <- false: // the forward pass failed: drain the reports, hand nothing over
	default:
	}
	<-done
	if err != nil {
		return nil, err
	}
	return out, nil
}

// buildBatch builds the batch of pairs (off the LibTorch thread: it needs none).
func (l *Learner) buildBatch(pairs []worker.Pair) (*stepBatch, error) {
	if l.cfg.Task != nil {
		tb, err := l.cfg.Task.Examples.Batch(pairs)
		if err != nil {
			return nil, err
		}
		return &stepBatch{task: tb}, nil
	}
	ex, err := l.cfg.Source.Examples(pairs)
	if err != nil {
		return nil, err
	}
	dc := l.cfg.Data
	dc.BatchSize, dc.Seed, dc.Epoch = len(ex), l.cfg.Seed, pairs[0].Epoch
	b, err := data.BuildBatch(dc, l.cfg.Tokenizer, ex)
	if err != nil {
		return nil, err
	}
	return &stepBatch{pre: b}, nil
}
