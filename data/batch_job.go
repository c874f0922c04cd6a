package data

import (
	"errors"
	"fmt"
	"sync"
)

// batchJob is one batch on its way through the pipeline: its examples, the
// distinct images they use, and a countdown of the images still being
// prepared.
//
// When every image's output size is known before decoding (the record holds
// the original size, as shards do), the job is in direct mode: it owns the
// batch's [B,3,H,W] buffer from the start and each decode goroutine resizes
// straight into its row, so no image is copied afterwards. Otherwise each
// image gets a buffer of its own and collate copies it into the batch.
type batchJob struct {
	seq      uint64
	examples []Example
	rowImage []int // example i uses images[rowImage[i]]
	images   []imageTask
	wg       sync.WaitGroup
	err      error // set on the marker job that ends the stream with a source error

	direct bool
	buf    []float32 // direct mode: [len(examples),3,H,W]
	H, W   int
}

// imageTask is one distinct image of a batch; a decode goroutine fills result.
type imageTask struct {
	job     *batchJob
	example Example // the first example using the image
	slot    int     // index of that example: its batch row holds the pixels in direct mode
	tw, th  int     // output size, direct mode
	result  prepared
}

func newBatchJob(seq uint64, examples []Example, cfg *Config) *batchJob {
	j := &batchJob{seq: seq, examples: examples, rowImage: make([]int, len(examples)), direct: true}
	index := make(map[any]int)
	for i, e := range examples {
		if err := e.check(); err != nil {
			// A malformed example gets its own task that reports the error.
			j.rowImage[i] = len(j.images)
			j.images = append(j.images, imageTask{job: j, example: e, slot: i, result: prepared{err: err}})
			continue
		}
		k := imageKey(e)
		at, ok := index[k]
		if !ok {
			at = len(j.images)
			index[k] = at
			t := imageTask{job: j, example: e, slot: i}
			if t.tw, t.th, ok = knownTarget(e, cfg); ok {
				j.H, j.W = max(j.H, t.th), max(j.W, t.tw)
			} else {
				j.direct = false
			}
			j.images = append(j.images, t)
		}
		j.rowImage[i] = at
	}
	if j.direct && j.H > 0 {
		m := cfg.Image.PadMultiple
		j.H, j.W = (j.H+m-1)/m*m, (j.W+m-1)/m*m
		j.buf = getFloats(len(examples) * 3 * j.H * j.W)
	} else {
		j.direct = false
	}
	return j
}

// run prepares the task's image.
func (t *imageTask) run(cfg *Config) {
	j := t.job
	if !j.direct {
		t.result = prepareImage(t.example, cfg)
		return
	}
	n := 3 * j.H * j.W
	t.result = prepareInto(t.example, cfg, j.buf[t.slot*n:(t.slot+1)*n], t.tw, t.th, j.W, j.H)
}

// finish collates the rows whose image is ready. It returns the batch (nil
// when no row is usable), the errors of the skipped images, and an error
// only for a failure that is not the data's fault.
func (j *batchJob) finish(cfg *Config, tok *Tokenizer) (*Batch, []error, error) {
	var (
		rows    []Example
		rowTask []int
		skipped []uint64
		errs    []error
	)
	for k := range j.images {
		if err := j.images[k].result.err; err != nil {
			errs = append(errs, err)
		}
	}
	for i, e := range j.examples {
		if j.images[j.rowImage[i]].result.err != nil {
			if e.Meta != nil && e.Text >= 0 && e.Text < len(e.Meta.Texts) {
				skipped = append(skipped, e.PairID())
			}
			continue
		}
		rows = append(rows, e)
		rowTask = append(rowTask, j.rowImage[i])
	}
	if len(rows) == 0 {
		putFloats(j.buf)
		j.buf = nil
		return nil, errs, fmt.Errorf("%w: every image of batch %d failed: %w", ErrCorruptImage, j.seq, errors.Join(errs...))
	}
	var px rowPixels
	n := 3 * j.H * j.W
	switch {
	case j.direct && len(skipped) == 0:
		// Every row is where its example was: nothing moves but the
		// duplicates of an image that several rows share.
		px = rowPixels{buf: j.buf, H: j.H, W: j.W, from: make([]int, len(rows)), sizes: make([][2]int, len(rows))}
		for i, k := range rowTask {
			t := &j.images[k]
			px.from[i], px.sizes[i] = t.slot, [2]int{t.tw, t.th}
		}
	case j.direct:
		// Rows were dropped (rare: a corrupt image): take the good images
		// out of their slots and collate by copying.
		px.imgs = make([]*Image, len(rows))
		out := map[int]*Image{}
		for i, k := range rowTask {
			t := &j.images[k]
			im, ok := out[k]
			if !ok {
				im = &Image{W: t.tw, H: t.th, Pix: getFloats(3 * t.tw * t.th)}
				slot := j.buf[t.slot*n : (t.slot+1)*n]
				for c := 0; c < 3; c++ {
					for y := 0; y < t.th; y++ {
						copy(im.Pix[(c*t.th+y)*t.tw:(c*t.th+y+1)*t.tw], slot[(c*j.H+y)*j.W:])
					}
				}
				out[k] = im
			}
			px.imgs[i] = im
		}
		putFloats(j.buf)
	default:
		px.imgs = make([]*Image, len(rows))
		for i, k := range rowTask {
			px.imgs[i] = j.images[k].result.img
		}
	}
	j.buf = nil
	b, err := collate(cfg, tok, rows, px)
	// The pixels are in the batch now; recycle the per-image buffers once.
	if px.buf == nil {
		seen := map[*Image]bool{}
		for _, im := range px.imgs {
			if !seen[im] {
				seen[im] = true
				putFloats(im.Pix)
			}
		}
	}
	for k := range j.images {
		j.images[k].result.img = nil
	}
	if err != nil {
		return nil, errs, err
	}
	b.SkippedIDs = skipped
	return b, errs, nil
}
