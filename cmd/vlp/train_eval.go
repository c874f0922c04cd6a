package main

import (
	"errors"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/e2evlp/vlp/checkpoint"
	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/sharding"
	"github.com/e2evlp/vlp/synth"
	"github.com/e2evlp/vlp/torch"
	"github.com/e2evlp/vlp/worker"
	"github.com/urfave/cli/v2"
)

// evalSeedMix makes the held-out world's seed differ from every training
// world's: its scenes are new.
const evalSeedMix = 0x5eed0fe7a1

// evalBatch is the rows per forward pass of the evaluation.
const evalBatch = 16

// evalReport holds the end-of-run metrics on the held-out set.
type evalReport struct {
	Images                      int
	Checkpoint                  checkpoint.Info
	ColourMasked, ColourCorrect int // MLM on every colour word, masked
	ITMRows, ITMCorrect         int // half the rows mismatched
	AP50                        float64
	Captions                    [][2]string // truth, generated
	BoxesPNG                    string
}

// evalData is the held-out set and what interprets it: a fresh synthetic
// world (a seed no training world uses), one caption per image, its classes
// and attributes indexed like the training data's.
type evalData struct {
	examples       []data.Example
	tok            *data.Tokenizer
	classes, attrs []string
	imageSize      int
	colourIDs      map[int64]bool
}

func newEvalData(c *cli.Context, spec coordinator.JobSpec, images int) (*evalData, error) {
	o, err := worker.ParseVLPOptions(spec)
	if err != nil {
		return nil, err
	}
	ev := &evalData{imageSize: o.ImageSize, classes: synth.ClassNames, attrs: synth.AttributeNames}
	if d := c.String("data"); d != "synth" && (d != "" || spec.Dataset.Manifest != "") {
		js, err := openJobShards(spec, c.String("data"), c.String("vocab"))
		if err != nil {
			return nil, err
		}
		ev.tok, ev.classes, ev.attrs = js.tokenizer, js.manifest.Classes, js.manifest.Attributes
	} else {
		w, _, err := synthWorld(spec)
		if err != nil {
			return nil, err
		}
		ev.tok = w.Tokenizer
	}
	world, err := data.NewSynthWorld(synth.Config{Seed: spec.Seed ^ evalSeedMix, Images: images, Width: o.ImageSize, Height: o.ImageSize, MaxObjects: 2}, false)
	if err != nil {
		return nil, err
	}
	index := func(names []string) map[string]int {
		m := map[string]int{}
		for i, n := range names {
			m[n] = i
		}
		return m
	}
	ci, ai := index(ev.classes), index(ev.attrs)
	for _, meta := range world.Metas {
		// Index the objects like the training data (a manifest orders its
		// vocabularies its own way); drop what it does not know.
		var objs []sharding.Object
		for _, ob := range meta.Objects {
			k, ok := ci[synth.ClassNames[ob.Class]]
			if !ok {
				continue
			}
			var attrs []int
			for _, a := range ob.Attributes {
				if j, ok := ai[synth.AttributeNames[a]]; ok {
					attrs = append(attrs, j)
				}
			}
			objs = append(objs, sharding.Object{Box: ob.Box, Class: k, Attributes: attrs})
		}
		meta.Objects = objs
	}
	seen := map[*sharding.SampleMeta]bool{}
	for _, e := range world.Examples {
		if !seen[e.Meta] {
			seen[e.Meta] = true
			ev.examples = append(ev.examples, e)
		}
	}
	ev.colourIDs = map[int64]bool{}
	for _, name := range synth.ColourNames {
		if id, ok := ev.tok.Vocab().ID(name); ok {
			ev.colourIDs[id] = true
		}
	}
	return ev, nil
}

// runTrainEval restores the run's latest verified checkpoint into a fresh
// model and measures it on the held-out set; it writes boxes.png into dir.
func runTrainEval(c *cli.Context, spec coordinator.JobSpec, dir string, images int, log *slog.Logger) (*evalReport, error) {
	ev, err := newEvalData(c, spec, images)
	if err != nil {
		return nil, err
	}
	store, err := checkpoint.Open(filepath.Join(dir, "checkpoints", "checkpoints.db"), checkpoint.Options{})
	if err != nil {
		return nil, err
	}
	restored, err := store.LatestVerified()
	store.Close()
	if err != nil {
		return nil, err
	}
	// The learner builds the model exactly as the workers did (preset,
	// vocabulary, classes); LibTorch work stays on this OS thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	l, closeL, _, err := newVLPLearner(c, spec, log)
	if err != nil {
		return nil, err
	}
	defer closeL()
	if err := l.Restore(restored.Snapshot); err != nil {
		return nil, err
	}
	m := l.(*worker.VLPLearner).Model()
	rep := &evalReport{Images: len(ev.examples), Checkpoint: restored.Info}
	var dets []model.Detection
	var gts []model.GroundTruth
	for lo := 0; lo < len(ev.examples); lo += evalBatch {
		rows := ev.examples[lo:min(lo+evalBatch, len(ev.examples))]
		if err := evalChunk(m, ev, rows, lo, rep, &dets, &gts, dir); err != nil {
			return nil, err
		}
	}
	rep.AP50, _ = model.AveragePrecision(dets, gts, 0.5)
	return rep, nil
}

func evalConfig(m *model.Model, ev *evalData, rows int) data.Config {
	dc := data.DefaultConfig()
	dc.BatchSize, dc.Workers, dc.Seed = rows, 1, 1
	dc.Image = data.SquareImageConfig(ev.imageSize)
	dc.MaxTextLen, dc.MaxCaptionLen = m.Config.MaxTextLen, m.Config.MaxCaptionLen
	return dc
}

// evalForward uploads b and runs the model on it in evaluation mode; the
// caller holds torch.NoGrad.
func evalForward(s *torch.Scope, m *model.Model, b *data.Batch) (*model.Inputs, *model.Outputs, error) {
	in, err := model.BatchToTensors(s, b, m.Device)
	if err != nil {
		return nil, nil, err
	}
	out, err := m.Forward(s, in, false, nil)
	return in, out, err
}

// evalChunk measures one batch of held-out images: every colour word
// masked (all rows matched), detections and captions from the image
// alone, then ITM with half the rows mismatched.
func evalChunk(m *model.Model, ev *evalData, rows []data.Example, first int, rep *evalReport, dets *[]model.Detection, gts *[]model.GroundTruth, dir string) error {
	dc := evalConfig(m, ev, len(rows))
	dc.MLMProb, dc.ITMNegProb = 0, 0
	b, err := data.BuildBatch(dc, ev.tok, rows)
	if err != nil {
		return err
	}
	v := ev.tok.Vocab()
	for k, id := range b.TokenIDs {
		if ev.colourIDs[id] && !b.TokenMask[k] {
			b.TokenIDs[k], b.MLMLabels[k] = v.MaskID, id
		}
	}
	s := torch.NewScope()
	defer s.Close()
	var fwdErr error
	torch.NoGrad(func() {
		in, out, err := evalForward(s, m, b)
		if err != nil {
			fwdErr = err
			return
		}
		if in.NumMasked > 0 {
			pred, err := out.MLMLogits.Argmax(-1, false).Int64s()
			if err != nil {
				fwdErr = err
				return
			}
			for i, p := range pred {
				rep.ColourMasked++
				if p == in.MLMLabels[i] {
					rep.ColourCorrect++
				}
			}
		}
		objs, err := m.PostProcess(s, in, out.Det)
		if err != nil {
			fwdErr = err
			return
		}
		for i := range objs {
			h, w := unpadded(b, i)
			for _, o := range objs[i] {
				*dets = append(*dets, model.Detection{Image: first + i, Class: o.Class, Score: o.Score, Box: o.Box})
			}
			t := b.Targets[i]
			for j, bx := range t.Boxes {
				xy := model.CxcywhToXyxy(model.Box{float64(bx[0]), float64(bx[1]), float64(bx[2]), float64(bx[3])})
				*gts = append(*gts, model.GroundTruth{Image: first + i, Class: int(t.Classes[j]),
					Box: model.Box{xy[0] * float64(w), xy[1] * float64(h), xy[2] * float64(w), xy[3] * float64(h)}})
			}
		}
		if len(rep.Captions) < 4 {
			n := min(4-len(rep.Captions), len(rows))
			ids, err := m.GenerateCaptions(s, in, v.CLSID, v.SEPID, m.Config.MaxCaptionLen)
			if err != nil {
				fwdErr = err
				return
			}
			for i := 0; i < n; i++ {
				rep.Captions = append(rep.Captions, [2]string{rows[i].Meta.Texts[rows[i].Text].Text, detokenize(v, ids[i])})
			}
		}
		if first == 0 {
			path := filepath.Join(dir, "boxes.png")
			if err := drawPredictions(path, rows[0], objs[0], ev, unpaddedSide(b, 0)); err != nil {
				fwdErr = err
				return
			}
			rep.BoxesPNG = path
		}
	})
	if fwdErr != nil {
		return fwdErr
	}
	// ITM: the same images, half the texts another image's or a colour swap.
	dc = evalConfig(m, ev, len(rows))
	dc.MLMProb = 0
	b, err = data.BuildBatch(dc, ev.tok, rows)
	if err != nil {
		return err
	}
	torch.NoGrad(func() {
		_, out, err := evalForward(s, m, b)
		if err != nil {
			fwdErr = err
			return
		}
		for i, p := range m.ITMScores(out) {
			rep.ITMRows++
			if (p > 0.5) == (b.ITMLabels[i] == 1) {
				rep.ITMCorrect++
			}
		}
	})
	return fwdErr
}

// unpadded is row i's image size in the batch (padding is bottom/right).
func unpadded(b *data.Batch, i int) (h, w int) {
	m := b.PixelMask[i*b.Height*b.Width : (i+1)*b.Height*b.Width]
	for h = 0; h < b.Height && !m[h*b.Width]; h++ {
	}
	for w = 0; w < b.Width && !m[w]; w++ {
	}
	return h, w
}

func unpaddedSide(b *data.Batch, i int) [2]int {
	h, w := unpadded(b, i)
	return [2]int{w, h}
}

// detokenize joins WordPiece tokens back into words.
func detokenize(v *data.Vocab, ids []int64) string {
	var sb strings.Builder
	for _, id := range ids {
		t := v.Token(id)
		if rest, ok := strings.CutPrefix(t, "##"); ok {
			sb.WriteString(rest)
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(t)
	}
	return sb.String()
}

// boxScore is the least class probability of a drawn prediction.
const boxScore = 0.5

// confident are the detections with class probability ≥ boxScore, or, when
// there is none, the three most probable (an early model is unsure).
func confident(objs []model.ObjectDetection) []model.ObjectDetection {
	var out []model.ObjectDetection
	for _, o := range objs {
		if o.Score >= boxScore {
			out = append(out, o)
		}
	}
	if len(out) > 0 {
		return out
	}
	out = append(out, objs...)
	sort.Slice(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	return out[:min(3, len(out))]
}

// drawPredictions writes an eval image with the model's confident
// detections (class, top attributes) drawn on it, and the true caption
// beneath.
func drawPredictions(path string, e data.Example, objs []model.ObjectDetection, ev *evalData, size [2]int) error {
	if e.Image == nil {
		return errors.New("eval: the held-out example has no decoded image")
	}
	jpg, err := synth.EncodeJPEG(e.Image)
	if err != nil {
		return err
	}
	w, h := float64(size[0]), float64(size[1])
	meta := &sharding.SampleMeta{Key: "predicted", Source: "held-out", Width: e.Meta.Width, Height: e.Meta.Height,
		Texts: []sharding.Text{{Kind: "truth", Text: e.Meta.Texts[e.Text].Text}}}
	drawn := confident(objs)
	for _, o := range drawn {
		cx := model.XyxyToCxcywh(model.Box{o.Box[0] / w, o.Box[1] / h, o.Box[2] / w, o.Box[3] / h})
		meta.Objects = append(meta.Objects, sharding.Object{
			Box: [4]float32{float32(cx[0]), float32(cx[1]), float32(cx[2]), float32(cx[3])}, Class: o.Class, Attributes: o.Attributes[:min(1, len(o.Attributes))]})
	}
	img, err := sharding.DrawSample(meta, jpg, ev.classes, ev.attrs)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// printEval prints the metrics and the captions next to the truth.
func printEval(w io.Writer, r *evalReport) {
	pct := func(a, b int) float64 {
		if b == 0 {
			return 0
		}
		return 100 * float64(a) / float64(b)
	}
	fmt.Fprintf(w, "evaluation on %d held-out images (checkpoint step %d):\n", r.Images, r.Checkpoint.Step())
	fmt.Fprintf(w, "  MLM accuracy on masked colour words: %.1f%% (%d/%d)\n", pct(r.ColourCorrect, r.ColourMasked), r.ColourCorrect, r.ColourMasked)
	fmt.Fprintf(w, "  ITM accuracy: %.1f%% (%d/%d, half mismatched)\n", pct(r.ITMCorrect, r.ITMRows), r.ITMCorrect, r.ITMRows)
	fmt.Fprintf(w, "  detection AP50: %.3f\n", r.AP50)
	for _, c := range r.Captions {
		fmt.Fprintf(w, "  caption: truth %q\n           model %q\n", c[0], c[1])
	}
	if r.BoxesPNG != "" {
		fmt.Fprintf(w, "  boxes: %s (predictions with class probability ≥ %.1f, else the 3 most probable)\n", r.BoxesPNG, boxScore)
	}
}
