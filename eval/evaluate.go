package eval

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/synth"
	"github.com/e2evlp/vlp/torch"
)

// Config says how Evaluate runs.
type Config struct {
	Tokenizer *data.Tokenizer // the job's tokenizer
	ImageSize int             // the job's square image side in pixels (options.image_size)
	// Batch is the rows per forward pass: 16 if 0.
	Batch int
	// Beams > 1 also generates captions by beam search with that many
	// beams (greedy captions are always generated).
	Beams int
	// Retrieval is N, the first N images ranked against each other's
	// texts: N² forward passes. 0: no retrieval.
	Retrieval int
	// Samples is how many images' captions the report shows next to the
	// truth.
	Samples int
	// BoxesPNG, when set, is where the first image is drawn with its
	// confident detections.
	BoxesPNG string
}

// Validate names the first field out of range.
func (c Config) Validate() error {
	switch {
	case c.Tokenizer == nil:
		return errors.New("eval: Config.Tokenizer is nil")
	case c.ImageSize < 1:
		return fmt.Errorf("eval: Config.ImageSize %d, want >= 1", c.ImageSize)
	case c.Batch < 0:
		return fmt.Errorf("eval: Config.Batch %d, want >= 0", c.Batch)
	case c.Beams < 0:
		return fmt.Errorf("eval: Config.Beams %d, want >= 0", c.Beams)
	case c.Retrieval < 0:
		return fmt.Errorf("eval: Config.Retrieval %d, want >= 0", c.Retrieval)
	case c.Samples < 0:
		return fmt.Errorf("eval: Config.Samples %d, want >= 0", c.Samples)
	}
	return nil
}

// Evaluate measures m on set: colour-word MLM, ITM, detection (COCO AP and
// AR, attributes), captions (BLEU, CIDEr-D; greedy and by beam search) and
// retrieval. LibTorch work runs on the calling goroutine, locked to its OS
// thread meanwhile; m is only read.
func Evaluate(m *model.Model, set *Set, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Batch == 0 {
		cfg.Batch = 16
	}
	if len(set.Examples) == 0 {
		return nil, errors.New("eval: the held-out set is empty")
	}
	if cfg.Retrieval > len(set.Examples) {
		return nil, fmt.Errorf("eval: retrieval over %d images, the held-out set has %d", cfg.Retrieval, len(set.Examples))
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r := &runner{m: m, set: set, cfg: cfg, rep: &Report{Images: len(set.Examples), DroppedObjects: set.DroppedObjects}}
	r.colourIDs = map[int64]bool{}
	for _, name := range synth.ColourNames {
		if id, ok := cfg.Tokenizer.Vocab().ID(name); ok {
			r.colourIDs[id] = true
		}
	}
	p := &r.rep.Predictions
	p.Classes = set.Classes
	for lo := 0; lo < len(set.Examples); lo += cfg.Batch {
		rows := set.Examples[lo:min(lo+cfg.Batch, len(set.Examples))]
		if err := r.visualAndMLM(lo, rows); err != nil {
			return nil, err
		}
		if err := r.itm(rows); err != nil {
			return nil, err
		}
	}
	if err := r.scoreDetections(); err != nil {
		return nil, err
	}
	var err error
	if r.rep.Greedy, err = scoreCaptions(p.Greedy, set.Refs); err != nil {
		return nil, err
	}
	if cfg.Beams > 1 {
		b, err := scoreCaptions(p.Beam, set.Refs)
		if err != nil {
			return nil, err
		}
		r.rep.Beam = &b
	}
	for i := range min(cfg.Samples, len(set.Examples)) {
		e := set.Examples[i]
		refs, regions := set.Refs[i], set.regions(i)
		s := Sample{Truth: e.Meta.Texts[e.Text].Text, Greedy: p.Greedy[i], References: len(refs), Regions: len(regions),
			GreedyIs: matchOf(p.Greedy[i], refs, regions)}
		if cfg.Beams > 1 {
			s.Beam, s.BeamIs = p.Beam[i], matchOf(p.Beam[i], refs, regions)
		}
		r.rep.Samples = append(r.rep.Samples, s)
	}
	if cfg.Retrieval > 0 {
		ret, err := r.retrieval(set.Examples[:cfg.Retrieval])
		if err != nil {
			return nil, err
		}
		r.rep.Retrieval = &ret
	}
	return r.rep, nil
}

// runner holds one evaluation's state.
type runner struct {
	m         *model.Model
	set       *Set
	cfg       Config
	rep       *Report
	colourIDs map[int64]bool
}

// dataConfig is how the rows of a forward pass are batched: no MLM
// masking, no ITM negatives, unless the caller sets them.
func (r *runner) dataConfig(rows int) data.Config {
	dc := data.DefaultConfig()
	dc.BatchSize, dc.Workers, dc.Seed = rows, 1, 1
	dc.Image = data.SquareImageConfig(r.cfg.ImageSize)
	dc.MaxTextLen, dc.MaxCaptionLen = r.m.Config.MaxTextLen, r.m.Config.MaxCaptionLen
	dc.MLMProb, dc.ITMNegProb = 0, 0
	return dc
}

// maskColours returns b with colour words masked for MLM (b is not
// changed): every one of each text (all), or one per text, the
// ((lo+row) mod n)-th of its n, the others shown — as the learning test
// measures, so that across a set each position is asked about.
func (r *runner) maskColours(b *data.Batch, lo int, all bool) *data.Batch {
	maskID := r.cfg.Tokenizer.Vocab().MaskID
	c := *b
	c.TokenIDs = slices.Clone(b.TokenIDs)
	c.MLMLabels = slices.Clone(b.MLMLabels)
	L := b.SeqLen
	for row := range b.Size {
		var at []int
		for k := row * L; k < (row+1)*L; k++ {
			if r.colourIDs[b.TokenIDs[k]] && !b.TokenMask[k] {
				at = append(at, k)
			}
		}
		if !all && len(at) > 0 {
			at = at[(lo+row)%len(at):][:1]
		}
		for _, k := range at {
			c.TokenIDs[k], c.MLMLabels[k] = maskID, b.TokenIDs[k]
		}
	}
	return &c
}

// countMLM adds the masked tokens of in that out predicts right to acc.
func countMLM(in *model.Inputs, out *model.Outputs, acc *Accuracy) error {
	if in.NumMasked == 0 {
		return nil
	}
	pred, err := out.MLMLogits.Argmax(-1, false).Int64s() // [M]
	if err != nil {
		return fmt.Errorf("eval: mlm: %w", err)
	}
	for i, p := range pred {
		acc.Total++
		if p == in.MLMLabels[i] {
			acc.Correct++
		}
	}
	return nil
}

// forward uploads b and runs the model on it in evaluation mode.
func (r *runner) forward(s *torch.Scope, b *data.Batch) (in *model.Inputs, out *model.Outputs, err error) {
	torch.NoGrad(func() {
		if in, err = model.BatchToTensors(s, b, r.m.Device); err != nil {
			return
		}
		out, err = r.m.Forward(s, in, false, nil)
	})
	return in, out, err
}

// visualAndMLM runs one batch of images (rows start at set index lo):
// MLM on colour words — one per text masked, then every one at once —
// the detections, greedy (and beam) captions from the image alone, and
// the boxes picture of the first image.
func (r *runner) visualAndMLM(lo int, rows []data.Example) error {
	v := r.cfg.Tokenizer.Vocab()
	b, err := data.BuildBatch(r.dataConfig(len(rows)), r.cfg.Tokenizer, rows)
	if err != nil {
		return fmt.Errorf("eval: batch: %w", err)
	}
	s := torch.NewScope()
	defer s.Close()
	in, out, err := r.forward(s, r.maskColours(b, lo, false))
	if err != nil {
		return fmt.Errorf("eval: forward: %w", err)
	}
	if err := countMLM(in, out, &r.rep.ColourMLM); err != nil {
		return err
	}
	inAll, outAll, err := r.forward(s, r.maskColours(b, lo, true))
	if err != nil {
		return fmt.Errorf("eval: forward: %w", err)
	}
	if err := countMLM(inAll, outAll, &r.rep.ColourMLMAll); err != nil {
		return err
	}
	objs, err := r.m.PostProcess(s, in, out.Det)
	if err != nil {
		return fmt.Errorf("eval: detections: %w", err)
	}
	r.addDetections(b, rows, objs)
	maxLen := r.m.Config.MaxCaptionLen
	greedy, err := r.m.GenerateCaptions(s, in, v.CLSID, v.SEPID, maxLen)
	if err != nil {
		return fmt.Errorf("eval: greedy captions: %w", err)
	}
	p := &r.rep.Predictions
	for _, ids := range greedy {
		p.Greedy = append(p.Greedy, Detokenize(v, ids))
	}
	if r.cfg.Beams > 1 {
		if err := r.beamCaptions(rows); err != nil {
			return err
		}
	}
	if r.cfg.BoxesPNG != "" && r.rep.BoxesPNG == "" {
		h, w := Unpadded(b, 0)
		if err := drawPredictions(r.cfg.BoxesPNG, rows[0], objs[0], r.set, [2]int{w, h}); err != nil {
			return fmt.Errorf("eval: %s: %w", r.cfg.BoxesPNG, err)
		}
		r.rep.BoxesPNG = r.cfg.BoxesPNG
	}
	return nil
}

// beamCaptions generates the rows' captions by beam search, the whole
// batch in one call.
func (r *runner) beamCaptions(rows []data.Example) error {
	v := r.cfg.Tokenizer.Vocab()
	b, err := data.BuildBatch(r.dataConfig(len(rows)), r.cfg.Tokenizer, rows)
	if err != nil {
		return fmt.Errorf("eval: batch: %w", err)
	}
	s := torch.NewScope()
	defer s.Close()
	in, err := model.BatchToTensors(s, b, r.m.Device)
	if err != nil {
		return fmt.Errorf("eval: beam captions: %w", err)
	}
	caps, err := r.m.BeamCaptions(s, in, v.CLSID, v.SEPID, r.m.Config.MaxCaptionLen, r.cfg.Beams)
	if err != nil {
		return fmt.Errorf("eval: beam captions: %w", err)
	}
	for _, c := range caps {
		r.rep.Predictions.Beam = append(r.rep.Predictions.Beam, Detokenize(v, c.IDs))
	}
	return nil
}

// addDetections records every query's detection and the ground truth of
// the batch's images, both in pixels of the original image (COCO's area
// ranges are in those units).
func (r *runner) addDetections(b *data.Batch, rows []data.Example, objs [][]model.ObjectDetection) {
	p := &r.rep.Predictions
	for i, e := range rows {
		id, W, H := int(e.Meta.ImageID), float64(e.Meta.Width), float64(e.Meta.Height)
		p.Images = append(p.Images, ImageInfo{ID: id, Width: e.Meta.Width, Height: e.Meta.Height, Key: e.Meta.Key})
		h, w := Unpadded(b, i)
		sx, sy := W/float64(w), H/float64(h) // model pixels → original pixels
		for _, o := range objs[i] {
			p.Dets = append(p.Dets, Detection{Image: id, Class: o.Class, Score: o.Score, Attributes: o.Attributes,
				Box: Box{X: o.Box[0] * sx, Y: o.Box[1] * sy, W: (o.Box[2] - o.Box[0]) * sx, H: (o.Box[3] - o.Box[1]) * sy}})
		}
		for _, ob := range e.Meta.Objects {
			cx, cy, bw, bh := float64(ob.Box[0])*W, float64(ob.Box[1])*H, float64(ob.Box[2])*W, float64(ob.Box[3])*H
			p.GTs = append(p.GTs, GroundTruth{Image: id, Class: ob.Class, Attributes: ob.Attributes,
				Box: Box{X: cx - bw/2, Y: cy - bh/2, W: bw, H: bh}})
		}
	}
}

// itm runs one batch with half the texts replaced (another image's, or a
// colour swapped) and counts the right calls.
func (r *runner) itm(rows []data.Example) error {
	dc := r.dataConfig(len(rows))
	dc.ITMNegProb = data.DefaultConfig().ITMNegProb
	b, err := data.BuildBatch(dc, r.cfg.Tokenizer, rows)
	if err != nil {
		return fmt.Errorf("eval: itm batch: %w", err)
	}
	s := torch.NewScope()
	defer s.Close()
	_, out, err := r.forward(s, b)
	if err != nil {
		return fmt.Errorf("eval: itm forward: %w", err)
	}
	for i, p := range r.m.ITMScores(out) {
		r.rep.ITM.Total++
		if (p > 0.5) == (b.ITMLabels[i] == 1) {
			r.rep.ITM.Correct++
		}
	}
	return nil
}

// scoreDetections runs the COCO evaluation and the attribute accuracy.
func (r *runner) scoreDetections() error {
	p := &r.rep.Predictions
	ids := make([]int, len(p.Images))
	for i, im := range p.Images {
		ids[i] = im.ID
	}
	classes := make([]int, len(r.set.Classes))
	for i := range classes {
		classes[i] = i
	}
	res, err := EvaluateCOCO(ids, classes, p.GTs, p.Dets)
	if err != nil {
		return err
	}
	r.rep.Detection = res.Stats
	r.rep.ClassAP = map[string]float64{}
	for c, ap := range res.ClassAP {
		r.rep.ClassAP[r.set.Classes[c]] = ap
	}
	r.rep.Attributes = MatchedAttributes(p.Dets, p.GTs, res.Matches50)
	return nil
}

// scoreCaptions scores generated captions against the references of the
// images that have some.
func scoreCaptions(generated []string, refs [][]string) (CaptionScores, error) {
	var hyps [][]string
	var rs [][][]string
	for i, g := range generated {
		if len(refs[i]) == 0 {
			continue
		}
		hyps = append(hyps, CaptionTokens(g))
		var toks [][]string
		for _, ref := range refs[i] {
			toks = append(toks, CaptionTokens(ref))
		}
		rs = append(rs, toks)
	}
	sc := CaptionScores{Images: len(hyps)}
	if len(hyps) == 0 {
		return sc, nil
	}
	var err error
	if sc.BLEU, err = CorpusBLEU(hyps, rs); err != nil {
		return sc, err
	}
	sc.CIDErD, _, err = CIDErD(hyps, rs)
	return sc, err
}

// Unpadded is row i's image size in the batch in pixels (padding is
// bottom/right).
func Unpadded(b *data.Batch, i int) (h, w int) {
	m := b.PixelMask[i*b.Height*b.Width : (i+1)*b.Height*b.Width]
	for h = 0; h < b.Height && !m[h*b.Width]; h++ {
	}
	for w = 0; w < b.Width && !m[w]; w++ {
	}
	return h, w
}

// matchOf says what a generated caption is among an image's reference captions and region
// descriptions, each compared as scoreCaptions's tokenizer sees it (case and punctuation aside).
func matchOf(caption string, refs, regions []string) TextMatch {
	got := strings.Join(CaptionTokens(caption), " ")
	for _, texts := range []struct {
		m     TextMatch
		texts []string
	}{{TextIsCaption, refs}, {TextIsRegion, regions}} {
		for _, t := range texts.texts {
			if strings.Join(CaptionTokens(t), " ") == got {
				return texts.m
			}
		}
	}
	return TextIsNone
}

// regions are image i's region descriptions (none where the set has none).
func (s *Set) regions(i int) []string {
	if i < len(s.Regions) {
		return s.Regions[i]
	}
	return nil
}
