package data

import (
	"errors"
	"sync"
	"sync/atomic"
)

// rowPixels tells collate where the rows' normalised pixels are: either one
// Image per row (copy mode), or already in buf, a [B,3,H,W] buffer the
// decoders wrote into (direct mode), row i's pixels in slot from[i].
type rowPixels struct {
	imgs []*Image // copy mode: row i's image

	buf   []float32 // direct mode
	H, W  int
	from  []int    // slot holding row i's pixels (i, or an earlier row of the same image)
	sizes [][2]int // row i's un-padded width and height
}

// collate builds a batch from rows whose images are ready.
func collate(cfg *Config, tok *Tokenizer, rows []Example, px rowPixels) (*Batch, error) {
	if len(rows) == 0 {
		return nil, errors.New("data: collate: no rows")
	}
	v := tok.Vocab()
	B := len(rows)
	b := &Batch{Size: B}

	sizes := px.sizes
	if px.buf == nil {
		// Copy mode: pad bottom/right to the largest image, rounded up.
		sizes = make([][2]int, B)
		for i, im := range px.imgs {
			sizes[i] = [2]int{im.W, im.H}
			b.Height, b.Width = max(b.Height, im.H), max(b.Width, im.W)
		}
		m := cfg.Image.PadMultiple
		b.Height = (b.Height + m - 1) / m * m
		b.Width = (b.Width + m - 1) / m * m
		// Recycled buffers (see Batch.Release) have stale contents: every
		// element is written below, padding included.
		b.Images = getFloats(B * 3 * b.Height * b.Width)
	} else {
		b.Height, b.Width = px.H, px.W
		b.Images = px.buf[:B*3*px.H*px.W]
	}
	H, W := b.Height, b.Width
	b.PixelMask = getBools(B * H * W)
	// Rows are filled in parallel (disjoint memory, so the result does not
	// depend on scheduling): at the base size a batch is ~170 MB of floats.
	fillRow := func(i int) {
		row := b.Images[i*3*H*W : (i+1)*3*H*W]
		if px.buf == nil {
			copyImageRow(row, px.imgs[i], W, H)
		} else if f := px.from[i]; f != i {
			copy(row, b.Images[f*3*H*W:(f+1)*3*H*W])
		}
		w, h := sizes[i][0], sizes[i][1]
		mask := b.PixelMask[i*H*W : (i+1)*H*W]
		for y := 0; y < H; y++ {
			mr := mask[y*W : (y+1)*W]
			for x := range mr {
				mr[x] = y >= h || x >= w
			}
		}
	}
	parallelFor(B, cfg.Workers, fillRow)

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
	colours, attrs := newColourTokens(v), attributeTokens(v, cfg.AttributeWords)
	for i, e := range rows {
		pair := e.PairID()
		b.SampleIDs[i] = pair
		own := make(map[string]bool, len(e.Meta.Texts))
		for _, t := range e.Meta.Texts {
			own[t.Text] = true
		}
		rt := rowText{texts: texts, images: imageIDs, own: own}
		mlm := func() *stream { return newStream(cfg.Seed, cfg.Epoch, pair, purposeMLM) }
		row, err := buildITMRow(i, rt, cfg, tok, colours, attrs, newStream(cfg.Seed, cfg.Epoch, pair, purposeITM), mlm)
		if err != nil {
			return nil, err
		}
		b.NegKinds[i] = row.kind
		if row.kind == NegNone {
			b.ITMLabels[i] = 1
		}
		enc[i], lab[i] = row.ids, row.labels
		b.SeqLen = max(b.SeqLen, len(row.ids))
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

// copyImageRow copies im into a [3,H,W] batch row, zeros in the padding.
func copyImageRow(row []float32, im *Image, W, H int) {
	for c := 0; c < 3; c++ {
		plane := row[c*H*W : (c+1)*H*W]
		for y := 0; y < im.H; y++ {
			r := plane[y*W : (y+1)*W]
			copy(r, im.Pix[(c*im.H+y)*im.W:(c*im.H+y+1)*im.W])
			clear(r[im.W:])
		}
		clear(plane[im.H*W:])
	}
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
	j := newBatchJob(0, examples, &cfg)
	for k := range j.images {
		if j.images[k].result.err == nil {
			j.images[k].run(&cfg)
		}
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
