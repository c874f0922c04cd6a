package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrClosed: Next was called after Close.
var ErrClosed = errors.New("data: pipeline closed")

// maxRecentErrors bounds the skipped-image messages Stats keeps.
const maxRecentErrors = 16

// Stats counts what a pipeline has produced and skipped so far.
type Stats struct {
	Batches       int      // batches delivered
	Rows          int      // rows delivered
	Images        int      // distinct images prepared (per batch)
	SkippedImages int      // images that could not be decoded
	SkippedPairs  int      // pairs dropped with them
	RecentErrors  []string // the last few skip reasons, each naming shard and sample key
}

// Pipeline turns a Source into batches with bounded concurrency:
//
//	reader (1 goroutine): Source → groups of BatchSize pairs → image tasks
//	decoders (Workers goroutines): decode → resize → normalise, one image each,
//	  straight into the batch's row when the record gives the image's size
//	collator (1 goroutine): in batch order, waits for a batch's images, then
//	  tokenises, draws ITM negatives and MLM masks, pads → ready queue
//
// Consumers should call Batch.Release when done with a batch's pixels, so
// its large buffers are reused.
//
// At most Prefetch batches wait in the ready queue and Prefetch+1 are being
// decoded, so memory is bounded whatever the speed of the consumer. Batches
// come out in source order and every random choice is keyed by (Seed, Epoch,
// pair id), so the output does not depend on Workers.
//
// A corrupt image is skipped: its pairs are left out of the batch (and listed
// in the batch's SkippedIDs, or the next batch's when no row of a batch was
// usable), counted in Stats, and the pipeline goes on. A Source error ends
// the stream: Next returns it after the batches before it.
type Pipeline struct {
	cfg    Config
	tok    *Tokenizer
	src    Source
	cancel context.CancelFunc
	wg     sync.WaitGroup
	out    chan result

	mu     sync.Mutex
	stats  Stats
	closed bool
	err    error // sticky end-of-stream error (io.EOF or the source's error)
}

type result struct {
	b   *Batch
	err error
}

// NewPipeline starts the pipeline's goroutines. They stop when the source is
// exhausted, when ctx is cancelled, or on Close; Close must always be called.
func NewPipeline(ctx context.Context, cfg Config, tok *Tokenizer, src Source) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if tok == nil || src == nil {
		return nil, fmt.Errorf("%w: nil tokenizer or source", ErrConfig)
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &Pipeline{cfg: cfg, tok: tok, src: src, cancel: cancel, out: make(chan result, cfg.Prefetch)}
	pending := make(chan *batchJob, cfg.Prefetch)
	tasks := make(chan *imageTask, cfg.Workers)
	p.wg.Add(2 + cfg.Workers)
	go p.read(ctx, pending, tasks)
	for i := 0; i < cfg.Workers; i++ {
		go p.decode(ctx, tasks)
	}
	go p.collate(ctx, pending)
	return p, nil
}

// read groups the source's pairs into batches and hands out their images.
func (p *Pipeline) read(ctx context.Context, pending chan<- *batchJob, tasks chan<- *imageTask) {
	defer p.wg.Done()
	defer close(tasks)
	defer close(pending)
	for seq := uint64(0); ; seq++ {
		examples := make([]Example, 0, p.cfg.BatchSize)
		var srcErr error
		for len(examples) < p.cfg.BatchSize {
			e, err := p.src.Next(ctx)
			if err != nil {
				srcErr = err
				break
			}
			examples = append(examples, e)
		}
		if len(examples) > 0 {
			j := newBatchJob(seq, examples, &p.cfg)
			j.wg.Add(len(j.images))
			select {
			case pending <- j:
			case <-ctx.Done():
				return
			}
			for k := range j.images {
				t := &j.images[k]
				if t.result.err != nil { // malformed example: nothing to decode
					j.wg.Done()
					continue
				}
				select {
				case tasks <- t:
				case <-ctx.Done():
					// The collator may be waiting on this job: release it.
					for ; k < len(j.images); k++ {
						j.images[k].result.err = ctx.Err()
						j.wg.Done()
					}
					return
				}
			}
		}
		if srcErr != nil {
			if !errors.Is(srcErr, io.EOF) {
				if ctx.Err() != nil {
					return
				}
				srcErr = fmt.Errorf("data: source: %w", srcErr)
				select {
				case pending <- &batchJob{seq: seq + 1, err: srcErr}:
				case <-ctx.Done():
				}
			}
			return
		}
	}
}

// decode prepares images until the task queue closes.
func (p *Pipeline) decode(ctx context.Context, tasks <-chan *imageTask) {
	defer p.wg.Done()
	for t := range tasks {
		if ctx.Err() != nil {
			t.result.err = ctx.Err()
		} else {
			t.run(&p.cfg)
		}
		t.job.wg.Done()
	}
}

// collate finishes batches in order and queues them for Next.
func (p *Pipeline) collate(ctx context.Context, pending <-chan *batchJob) {
	defer p.wg.Done()
	defer close(p.out)
	var carried []uint64 // skipped pair ids of batches that had no usable row
	send := func(r result) bool {
		select {
		case p.out <- r:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for j := range pending {
		if j.err != nil {
			send(result{err: j.err})
			return
		}
		j.wg.Wait()
		if ctx.Err() != nil {
			return
		}
		b, errs, err := j.finish(&p.cfg, p.tok)
		p.mu.Lock()
		p.stats.Images += len(j.images)
		p.stats.SkippedImages += len(errs)
		for _, e := range errs {
			p.stats.RecentErrors = append(p.stats.RecentErrors, e.Error())
		}
		if n := len(p.stats.RecentErrors); n > maxRecentErrors {
			p.stats.RecentErrors = append([]string(nil), p.stats.RecentErrors[n-maxRecentErrors:]...)
		}
		if b != nil {
			p.stats.SkippedPairs += len(b.SkippedIDs)
		} else {
			p.stats.SkippedPairs += len(j.examples)
		}
		p.mu.Unlock()
		if b == nil {
			if errors.Is(err, ErrCorruptImage) { // nothing usable: carry on
				for _, e := range j.examples {
					if e.check() == nil {
						carried = append(carried, e.PairID())
					}
				}
				continue
			}
			send(result{err: err})
			return
		}
		if len(carried) > 0 {
			b.SkippedIDs = append(carried, b.SkippedIDs...)
			carried = nil
		}
		p.mu.Lock()
		p.stats.Batches++
		p.stats.Rows += b.Size
		p.mu.Unlock()
		if !send(result{b: b}) {
			return
		}
	}
}

// Next returns the next batch, io.EOF after the last one, or the error that
// ended the stream. It is meant for one consumer goroutine.
func (p *Pipeline) Next(ctx context.Context) (*Batch, error) {
	p.mu.Lock()
	closed, sticky := p.closed, p.err
	p.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if sticky != nil {
		return nil, sticky
	}
	select {
	case r, ok := <-p.out:
		if !ok {
			r.err = io.EOF
		}
		if r.err != nil {
			p.mu.Lock()
			p.err = r.err
			p.mu.Unlock()
			return nil, r.err
		}
		return r.b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Stats returns a snapshot of the counters.
func (p *Pipeline) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.RecentErrors = append([]string(nil), s.RecentErrors...)
	return s
}

// Close stops the goroutines and waits for them to exit. It is safe to call
// more than once.
func (p *Pipeline) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	return nil
}
