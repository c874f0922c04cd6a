package data

import (
	"errors"
	"fmt"
	"sync"
)

// batchJob is one batch on its way through the pipeline: its examples, the
// distinct images they use, and a countdown of the images still being
// prepared.
type batchJob struct {
	seq      uint64
	examples []Example
	rowImage []int // example i uses images[rowImage[i]]
	images   []imageTask
	wg       sync.WaitGroup
	err      error // set on the marker job that ends the stream with a source error
}

// imageTask is one distinct image of a batch; a decode goroutine fills result.
type imageTask struct {
	job     *batchJob
	example Example // the first example using the image
	result  prepared
}

func newBatchJob(seq uint64, examples []Example) *batchJob {
	j := &batchJob{seq: seq, examples: examples, rowImage: make([]int, len(examples))}
	index := make(map[any]int)
	for i, e := range examples {
		if err := e.check(); err != nil {
			// A malformed example gets its own task that reports the error.
			j.rowImage[i] = len(j.images)
			j.images = append(j.images, imageTask{job: j, example: e, result: prepared{err: err}})
			continue
		}
		k := imageKey(e)
		at, ok := index[k]
		if !ok {
			at = len(j.images)
			index[k] = at
			j.images = append(j.images, imageTask{job: j, example: e})
		}
		j.rowImage[i] = at
	}
	return j
}

// finish collates the rows whose image is ready. It returns the batch (nil
// when no row is usable), the errors of the skipped images, and an error
// only for a failure that is not the data's fault.
func (j *batchJob) finish(cfg *Config, tok *Tokenizer) (*Batch, []error, error) {
	var (
		rows    []Example
		imgs    []*Image
		skipped []uint64
		errs    []error
	)
	for k := range j.images {
		if err := j.images[k].result.err; err != nil {
			errs = append(errs, err)
		}
	}
	for i, e := range j.examples {
		r := j.images[j.rowImage[i]].result
		if r.err != nil {
			if e.Meta != nil && e.Text >= 0 && e.Text < len(e.Meta.Texts) {
				skipped = append(skipped, e.PairID())
			}
			continue
		}
		rows = append(rows, e)
		imgs = append(imgs, r.img)
	}
	if len(rows) == 0 {
		return nil, errs, fmt.Errorf("%w: every image of batch %d failed: %w", ErrCorruptImage, j.seq, errors.Join(errs...))
	}
	b, err := collate(cfg, tok, rows, imgs)
	// The pixels are in the batch now; recycle each distinct image once.
	for k := range j.images {
		if im := j.images[k].result.img; im != nil {
			putFloats(im.Pix)
			j.images[k].result.img = nil
		}
	}
	if err != nil {
		return nil, errs, err
	}
	b.SkippedIDs = skipped
	return b, errs, nil
}
