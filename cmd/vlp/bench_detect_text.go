package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/eval"
	"github.com/e2evlp/vlp/eval/plot"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/torch"
	"github.com/urfave/cli/v2"
)

const catBenchDetectText = "BENCH DETECT-TEXT"

// evalBatch is the rows per forward pass of the study (eval.Config.Batch's
// default).
const evalBatch = 16

var benchDetectTextCommand = &cli.Command{
	Name:  "detect-text",
	Usage: "detection AP of a checkpoint with and without the paired caption in the encoder",
	Description: "Restores --checkpoint STORE[#ID] (as vlp eval does: default the latest that verifies) and\n" +
		"detects the objects of --images held-out images (--data: a fresh synthetic world, or shards)\n" +
		"three ways:\n" +
		"  no text       the encoder sees [CLS] and the image tokens (how E2E-VLP trains and infers);\n" +
		"  paired text   the decoder reads the image tokens' outputs of the pass over the image's own\n" +
		"                caption and the image;\n" +
		"  other text    the same with another image's caption (the next row's): a control that tells\n" +
		"                the caption's content from the mere presence of text tokens.\n" +
		"Prints COCO's AP, AP50, AP75 and AR@100 per way (package eval, pycocotools' semantics) and\n" +
		"draws --out: AP at each IoU threshold .50:.05:.95. The model trained without text in its\n" +
		"detection pass: the study measures what the caption does to that detector.",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "checkpoint", Required: true, Usage: "checkpoint store file, optionally #ID (default: the latest checkpoint that verifies)", EnvVars: []string{"VLP_EVAL_CHECKPOINT"}, Category: catBenchDetectText},
		&cli.StringFlag{Name: "data", Value: "synth", Usage: "held-out data: synth (a fresh synthetic world, seeded apart from the job's) or a shard directory", Category: catBenchDetectText},
		&cli.IntFlag{Name: "images", Value: 256, Usage: "held-out images (with shards: the first N)", Category: catBenchDetectText},
		&cli.StringFlag{Name: "train-data", Usage: "the job's training shard directory, for its class vocabularies (default: the job spec's)", Category: catBenchDetectText},
		&cli.StringFlag{Name: "vocab", Usage: "the job's vocab.txt (default: the job spec's path)", Category: catBenchDetectText},
		&cli.StringFlag{Name: "device", Value: "cpu", Usage: "cpu or cuda:N", EnvVars: []string{"VLP_DEVICE"}, Category: catBenchDetectText},
		&cli.IntFlag{Name: "threads", Usage: threadsUsage, EnvVars: []string{"VLP_THREADS"}, Category: catBenchDetectText},
		&cli.StringFlag{Name: "out", Value: "detect-text.png", Usage: "AP against the IoU threshold (empty: none)", Category: catBenchDetectText},
	},
	Action: benchDetectText,
}

// textMode is how the detection pass treats the caption.
type textMode struct {
	name     string
	withText bool
	shift    bool // another row's caption
}

var textModes = []textMode{{"no text", false, false}, {"paired text", true, false}, {"other text", true, true}}

// iouThresholds are COCO's .50:.05:.95.
var iouThresholds = []float64{0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95}

func benchDetectText(c *cli.Context) error {
	if n := c.Int("images"); n < 2 {
		return fmt.Errorf("bench detect-text: --images %d, want ≥ 2 (the control borrows another image's caption)", n)
	}
	if c.Int("threads") < 0 {
		return fmt.Errorf("bench detect-text: --threads %d, want ≥ 0", c.Int("threads"))
	}
	runtime.LockOSThread() // LibTorch work stays on one OS thread
	defer runtime.UnlockOSThread()
	em, err := benchCheckpoint(c, "bench detect-text")
	if err != nil {
		return err
	}
	defer em.model.Close()
	var set *eval.Set
	if d := c.String("data"); d == "synth" {
		set, err = eval.SynthSet(em.spec.Seed, c.Int("images"), em.imageSize, em.classes, em.attrs)
	} else {
		set, err = eval.ShardSet(d, c.Int("images"), em.classes, em.attrs)
	}
	if err != nil {
		return fmt.Errorf("bench detect-text: %w", err)
	}
	if len(set.Examples) < 2 {
		return fmt.Errorf("bench detect-text: %s holds %d image(s), want ≥ 2", c.String("data"), len(set.Examples))
	}
	res, err := detectWithText(em, set)
	if err != nil {
		return fmt.Errorf("bench detect-text: %w", err)
	}
	w := c.App.Writer
	title := fmt.Sprintf("vlp bench detect-text: checkpoint %d (step %d, %s), %d held-out images",
		em.ref.ID, em.ref.Step, em.spec.Model, len(set.Examples))
	fmt.Fprintln(w, strings.TrimPrefix(title, "vlp bench detect-text: "))
	writeDetectTextTable(w, res)
	if path := c.String("out"); path != "" {
		if err := detectTextChart(res, title).WritePNG(path); err != nil {
			return fmt.Errorf("bench detect-text: %w", err)
		}
		fmt.Fprintf(w, "AP against IoU threshold: %s\n", path)
	}
	return nil
}

// benchCheckpoint restores the model of --checkpoint STORE[#ID] for the
// bench command cmd as vlp eval does (--train-data, --vocab, --device,
// --threads); the caller keeps its OS thread locked while it uses it.
func benchCheckpoint(c *cli.Context, cmd string) (*evalModel, error) {
	store, id, hasID, err := parseCheckpointRef(c.String("checkpoint"))
	if err != nil {
		return nil, err
	}
	em, err := loadEvalModel(c, store, id, hasID, c.String("train-data"), c.String("vocab"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return em, nil
}

// textModeResult is one textMode's COCO statistics and its AP at each of
// eval's IoU thresholds (.50:.05:.95).
type textModeResult struct {
	stats  eval.COCOStats
	perIoU []float64
}

// detectWithText detects every held-out image in each textMode, in
// batches of evalBatch rows (never a batch of one: it has no other row's
// caption), and scores each mode.
func detectWithText(em *evalModel, set *eval.Set) ([]textModeResult, error) {
	var p detectTextPreds
	dets := make([][]eval.Detection, len(textModes))
	n := len(set.Examples)
	for lo := 0; lo < n; {
		hi := min(lo+evalBatch, n)
		if n-hi == 1 {
			hi = n
		}
		dc := data.DefaultConfig()
		dc.BatchSize, dc.Workers, dc.Seed = hi-lo, 1, 1
		dc.Image = data.SquareImageConfig(em.imageSize)
		dc.MaxTextLen, dc.MaxCaptionLen = em.model.Config.MaxTextLen, em.model.Config.MaxCaptionLen
		dc.MLMProb, dc.ITMNegProb = 0, 0 // every row its own caption, unmasked
		b, err := data.BuildBatch(dc, em.tok, set.Examples[lo:hi])
		if err != nil {
			return nil, err
		}
		p.addGroundTruth(b, lo)
		for k, mode := range textModes {
			bk := b
			if mode.shift {
				bk = withNextCaption(b)
			}
			objs, err := detectBatch(em.model, bk, mode.withText)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", mode.name, err)
			}
			dets[k] = appendDetections(dets[k], objs, lo)
		}
		lo = hi
	}
	classes := make([]int, len(set.Classes))
	for i := range classes {
		classes[i] = i
	}
	out := make([]textModeResult, len(textModes))
	for k := range textModes {
		res, err := eval.EvaluateCOCO(p.images, classes, p.gts, dets[k])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", textModes[k].name, err)
		}
		out[k].stats = res.Stats
		out[k].perIoU = perIoUAP(dets[k], p.gts)
	}
	return out, nil
}

// detectTextPreds is the held-out set's images and ground truth in model
// pixels (AP and AR over all areas do not depend on the pixel unit).
type detectTextPreds struct {
	images []int
	gts    []eval.GroundTruth
}

func (p *detectTextPreds) addGroundTruth(b *data.Batch, first int) {
	for i := 0; i < b.Size; i++ {
		p.images = append(p.images, first+i)
		h, w := eval.Unpadded(b, i)
		t := b.Targets[i]
		for j, bx := range t.Boxes {
			bw, bh := float64(bx[2])*float64(w), float64(bx[3])*float64(h)
			p.gts = append(p.gts, eval.GroundTruth{Image: first + i, Class: int(t.Classes[j]),
				Box: eval.Box{X: float64(bx[0])*float64(w) - bw/2, Y: float64(bx[1])*float64(h) - bh/2, W: bw, H: bh}})
		}
	}
}

// appendDetections adds every query's detection of a batch whose first
// row is image first.
func appendDetections(dets []eval.Detection, objs [][]model.ObjectDetection, first int) []eval.Detection {
	for i := range objs {
		for _, o := range objs[i] {
			dets = append(dets, eval.Detection{Image: first + i, Class: o.Class, Score: o.Score,
				Box: eval.Box{X: o.Box[0], Y: o.Box[1], W: o.Box[2] - o.Box[0], H: o.Box[3] - o.Box[1]}})
		}
	}
	return dets
}

// perIoUAP is AP at each IoU threshold of the chart, by model's
// single-threshold AveragePrecision (101-point interpolated like COCO's,
// but with no area ranges or detection cap: with Q ≤ 100 queries per
// image the cap never binds).
func perIoUAP(dets []eval.Detection, gts []eval.GroundTruth) []float64 {
	xyxy := func(b eval.Box) model.Box { return model.Box{b.X, b.Y, b.X + b.W, b.Y + b.H} }
	md := make([]model.Detection, len(dets))
	for i, d := range dets {
		md[i] = model.Detection{Image: d.Image, Class: d.Class, Score: d.Score, Box: xyxy(d.Box)}
	}
	mg := make([]model.GroundTruth, len(gts))
	for i, g := range gts {
		mg[i] = model.GroundTruth{Image: g.Image, Class: g.Class, Box: xyxy(g.Box)}
	}
	var aps []float64
	for _, thr := range iouThresholds {
		ap, _ := model.AveragePrecision(md, mg, thr)
		aps = append(aps, ap)
	}
	return aps
}

// withNextCaption is b with row i's encoder text replaced by row i+1's
// (the last row takes the first's).
func withNextCaption(b *data.Batch) *data.Batch {
	o := *b
	L := b.SeqLen
	o.TokenIDs = make([]int64, len(b.TokenIDs))  // [B,L]
	o.TokenMask = make([]bool, len(b.TokenMask)) // [B,L]
	for i := 0; i < b.Size; i++ {
		j := (i + 1) % b.Size
		copy(o.TokenIDs[i*L:(i+1)*L], b.TokenIDs[j*L:(j+1)*L])
		copy(o.TokenMask[i*L:(i+1)*L], b.TokenMask[j*L:(j+1)*L])
	}
	return &o
}

// detectBatch runs the detection pass on b and post-processes it.
func detectBatch(m *model.Model, b *data.Batch, withText bool) ([][]model.ObjectDetection, error) {
	s := torch.NewScope()
	defer s.Close()
	in, err := model.BatchToTensors(s, b, m.Device)
	if err != nil {
		return nil, err
	}
	det, err := m.DetectObjects(s, in, withText)
	if err != nil {
		return nil, err
	}
	var objs [][]model.ObjectDetection
	torch.NoGrad(func() { objs, err = m.PostProcess(s, in, det) })
	return objs, err
}

func writeDetectTextTable(w io.Writer, res []textModeResult) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "encoder input\tAP\tAP50\tAP75\tAR@100\tAP − no text\n")
	for k, mode := range textModes {
		st := res[k].stats
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%.3f\t%+.3f\n", mode.name, st.AP, st.AP50, st.AP75, st.AR100, st.AP-res[0].stats.AP)
	}
	tw.Flush()
}

func detectTextChart(res []textModeResult, title string) plot.LineChart {
	c := plot.LineChart{Title: title, XLabel: "IoU threshold (match criterion, unitless)", YLabel: "AP (0–1)",
		XTicks: iouThresholds}
	for k, mode := range textModes {
		c.Series = append(c.Series, plot.Series{Name: mode.name, X: iouThresholds, Y: res[k].perIoU, Points: true, Thick: k == 0, Dashed: mode.shift})
	}
	return c
}
