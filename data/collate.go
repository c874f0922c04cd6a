package data

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// prepared is one decoded, resized, normalised image.
type prepared struct {
	img *Image
	err error // wraps ErrCorruptImage when the image could not be decoded
}

// prepareImage decodes (or converts) the example's image and resizes and
// normalises it.
func prepareImage(e Example, cfg *Config) prepared {
	var rgb *RGB
	if e.Image != nil {
		rgb = ToRGB(e.Image)
	} else {
		var err error
		rgb, err = cfg.decoder().Decode(e.JPEG, cfg.Image.TargetSize)
		if err != nil {
			return prepared{err: fmt.Errorf("%s: %w", e.where(), err)}
		}
	}
	if rgb.W < 1 || rgb.H < 1 {
		return prepared{err: fmt.Errorf("%s: %w: empty image", e.where(), ErrCorruptImage)}
	}
	// The target comes from the record's original size when known, so a
	// decoder's DCT downscaling does not change the output size.
	w, h := rgb.W, rgb.H
	if e.Meta.Width > 0 && e.Meta.Height > 0 {
		w, h = e.Meta.Width, e.Meta.Height
	}
	tw, th := cfg.Image.TargetSize(w, h)
	img := ResizeNormalize(rgb, tw, th)
	putBytes(rgb.Pix)
	return prepared{img: img}
}

// imageKey identifies an image inside a batch, so pairs of one image are
// decoded once: pairs share their image's record (PairsOf, ShardSource and
// SynthWorld hand out one *SampleMeta per image).
func imageKey(e Example) any { return e.Meta }

// collate builds a batch from rows whose images are ready. rows and imgs
// are parallel; rows with a nil image were skipped by the caller.
func collate(cfg *Config, tok *Tokenizer, rows []Example, imgs []*Image) (*Batch, error) {
	if len(rows) == 0 {
		return nil, errors.New("data: collate: no rows")
	}
	v := tok.Vocab()
	B := len(rows)
	b := &Batch{Size: B}

	// Image tensor: pad bottom/right to the largest image, rounded up.
	for _, im := range imgs {
		b.Height, b.Width = max(b.Height, im.H), max(b.Width, im.W)
	}
	m := cfg.Image.PadMultiple
	b.Height = (b.Height + m - 1) / m * m
	b.Width = (b.Width + m - 1) / m * m
	H, W := b.Height, b.Width
	// Recycled buffers (see Batch.Release) have stale contents: every
	// element is written below, padding included.
	b.Images = getFloats(B * 3 * H * W)
	b.PixelMask = getBools(B * H * W)
	// Rows are copied in parallel (disjoint memory, so the result does not
	// depend on scheduling): at the base size a batch is ~170 MB of floats,
	// too much for one core to keep up with many decoders.
	copyRow := func(i int) {
		im := imgs[i]
		for c := 0; c < 3; c++ {
			plane := b.Images[(i*3+c)*H*W : (i*3+c+1)*H*W]
			for y := 0; y < im.H; y++ {
				row := plane[y*W : (y+1)*W]
				copy(row, im.Pix[(c*im.H+y)*im.W:(c*im.H+y+1)*im.W])
				clear(row[im.W:])
			}
			clear(plane[im.H*W:])
		}
		mask := b.PixelMask[i*H*W : (i+1)*H*W]
		for y := 0; y < H; y++ {
			row := mask[y*W : (y+1)*W]
			for x := range row {
				row[x] = y >= im.H || x >= im.W
			}
		}
	}
	parallelFor(B, cfg.Workers, copyRow)

	// Texts: ITM choice, encoder ids with MLM, decoder caption.
	texts := make([]string, B)
	imageIDs := make([]uint64, B)
	for i, e := range rows {
		texts[i] = e.Meta.Texts[e.Text].Text
		imageIDs[i] = e.Meta.ImageID
	}
	enc := make([][]int64, B)
	lab := make([][]int64, B)
	caps := make([][]int64, B)
	b.ITMLabels = make([]int64, B)
	b.NegKinds = make([]NegKind, B)
	b.SampleIDs = make([]uint64, B)
	b.ImageIDs = imageIDs
	b.Targets = make([]DetectionTarget, B)
	for i, e := range rows {
		pair := e.PairID()
		b.SampleIDs[i] = pair
		own := make(map[string]bool, len(e.Meta.Texts))
		for _, t := range e.Meta.Texts {
			own[t.Text] = true
		}
		choice := chooseITM(i, texts, imageIDs, own, cfg, v, newStream(cfg.Seed, cfg.Epoch, pair, purposeITM))
		b.NegKinds[i] = choice.kind
		ids, err := tok.Encode(choice.text, cfg.MaxTextLen)
		if err != nil {
			return nil, err
		}
		labels := make([]int64, len(ids))
		if choice.kind == NegNone {
			b.ITMLabels[i] = 1
			maskTokens(ids, labels, v, cfg.MLMProb, newStream(cfg.Seed, cfg.Epoch, pair, purposeMLM))
		} else {
			for j := range labels {
				labels[j] = IgnoreIndex
			}
		}
		enc[i], lab[i] = ids, labels
		b.SeqLen = max(b.SeqLen, len(ids))
		if caps[i], err = tok.Encode(texts[i], cfg.MaxCaptionLen); err != nil {
			return nil, err
		}
		b.CapLen = max(b.CapLen, len(caps[i]))
		b.Targets[i] = targetOf(e)
	}
	L, T := b.SeqLen, b.CapLen
	b.TokenIDs = make([]int64, B*L)
	b.TokenMask = make([]bool, B*L)
	b.MLMLabels = make([]int64, B*L)
	b.CaptionIDs = make([]int64, B*T)
	b.CaptionMask = make([]bool, B*T)
	for i := 0; i < B; i++ {
		for j := 0; j < L; j++ {
			if j < len(enc[i]) {
				b.TokenIDs[i*L+j], b.MLMLabels[i*L+j] = enc[i][j], lab[i][j]
			} else {
				b.TokenIDs[i*L+j], b.MLMLabels[i*L+j], b.TokenMask[i*L+j] = v.PadID, IgnoreIndex, true
			}
		}
		for j := 0; j < T; j++ {
			if j < len(caps[i]) {
				b.CaptionIDs[i*T+j] = caps[i][j]
			} else {
				b.CaptionIDs[i*T+j], b.CaptionMask[i*T+j] = v.PadID, true
			}
		}
	}
	return b, nil
}

// targetOf copies the record's objects into a detection target.
func targetOf(e Example) DetectionTarget {
	objs := e.Meta.Objects
	t := DetectionTarget{
		Boxes:      make([][4]float32, len(objs)),
		Classes:    make([]int64, len(objs)),
		Attributes: make([][]int64, len(objs)),
	}
	for i, o := range objs {
		t.Boxes[i] = o.Box
		t.Classes[i] = int64(o.Class)
		attrs := make([]int64, len(o.Attributes))
		for k, a := range o.Attributes {
			attrs[k] = int64(a)
		}
		t.Attributes[i] = attrs
	}
	return t
}

// BuildBatch decodes, resizes and collates examples into one batch on the
// calling goroutine: the in-memory path for tests, tools and the model's
// own tests. Examples whose image cannot be decoded are skipped; their pair
// ids are returned in the batch's SkippedIDs. It fails with ErrCorruptImage
// only when no example is usable.
func BuildBatch(cfg Config, tok *Tokenizer, examples []Example) (*Batch, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	j := newBatchJob(0, examples)
	for k := range j.images {
		j.images[k].result = prepareImage(j.images[k].example, &cfg)
	}
	b, _, err := j.finish(&cfg, tok)
	return b, err
}

// parallelFor runs f(0..n-1) on at most g goroutines and waits.
func parallelFor(n, g int, f func(i int)) {
	g = min(g, n)
	if g <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	var next atomic.Int64
	for k := 0; k < g; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(i)
			}
		}()
	}
	wg.Wait()
}
