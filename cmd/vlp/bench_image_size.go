package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/e2evlp/vlp/eval"
	"github.com/e2evlp/vlp/eval/plot"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/synth"
	"github.com/e2evlp/vlp/torch"
	"github.com/urfave/cli/v2"
)

const catBenchImageSize = "BENCH IMAGE-SIZE"

var benchImageSizeCommand = &cli.Command{
	Name:  "image-size",
	Usage: "a checkpoint's accuracy (AP50, AP, colour MLM, ITM) and latency against the image size, on the synthetic world",
	Description: "Restores --checkpoint STORE[#ID] (as vlp eval does: default the latest that verifies) and, for\n" +
		"each --sizes side S (default: ½, ¾, 1, 1½ and 2 times the size the checkpoint trained at),\n" +
		"renders a fresh held-out synthetic world of --images S×S images, evaluates the model on it\n" +
		"(package eval: COCO AP50 and AP, colour-word MLM and ITM accuracy) and times its batch-1\n" +
		"inference at S×S (e2e: backbone → encoder over text and image → ITM head; detector: the\n" +
		"image-only pass and the detection decoder), the median of --iters runs. Prints one table and\n" +
		"draws --out: latency (top) and accuracy (bottom) against S. This is one model, trained at its\n" +
		"own size, evaluated at other sizes: a train/test resolution mismatch away from that size, not\n" +
		"the paper's study of a model trained at each size (docs/bench-infer.md).",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "checkpoint", Required: true, Usage: "checkpoint store file, optionally #ID (default: the latest checkpoint that verifies)", EnvVars: []string{"VLP_EVAL_CHECKPOINT"}, Category: catBenchImageSize},
		&cli.StringFlag{Name: "sizes", Usage: "comma-separated square image sides in pixels, 32..1024 (default: ½, ¾, 1, 1½, 2 × the trained size)", Category: catBenchImageSize},
		&cli.IntFlag{Name: "images", Value: 128, Usage: "held-out synthetic images per size", Category: catBenchImageSize},
		&cli.IntFlag{Name: "batch", Value: 16, Usage: "rows per forward pass of the evaluation", Category: catBenchImageSize},
		&cli.IntFlag{Name: "iters", Value: 3, Usage: "timed batch-1 runs per pass and size (the median is reported)", Category: catBenchImageSize},
		&cli.IntFlag{Name: "warmup", Value: 1, Usage: "untimed runs before them", Category: catBenchImageSize},
		&cli.StringFlag{Name: "clock", Value: "wall", Usage: "wall (elapsed time) or cpu (this process's CPU time; CPU only)", Category: catBenchImageSize},
		&cli.StringFlag{Name: "train-data", Usage: "the job's training shard directory, for its class vocabularies (default: the job spec's)", Category: catBenchImageSize},
		&cli.StringFlag{Name: "vocab", Usage: "the job's vocab.txt (default: the job spec's path)", Category: catBenchImageSize},
		&cli.StringFlag{Name: "device", Value: "cpu", Usage: "cpu or cuda:N", EnvVars: []string{"VLP_DEVICE"}, Category: catBenchImageSize},
		&cli.IntFlag{Name: "threads", Usage: threadsUsage, EnvVars: []string{"VLP_THREADS"}, Category: catBenchImageSize},
		&cli.StringFlag{Name: "out", Value: "bench-image-size.png", Usage: "latency and accuracy against image size (empty: none)", Category: catBenchImageSize},
	},
	Action: benchImageSize,
}

// imageSizeTextLen is the caption of the timed passes, [CLS] and [SEP]
// included (bench infer's default; capped by the model's text positions).
const imageSizeTextLen = 16

// imageSizeOptions are bench image-size's flags, checked.
type imageSizeOptions struct {
	sizes                        []int // nil: from the trained size
	images, batch, iters, warmup int
	cpuClock                     bool
}

func parseImageSizeOptions(c *cli.Context) (o imageSizeOptions, err error) {
	o = imageSizeOptions{images: c.Int("images"), batch: c.Int("batch"), iters: c.Int("iters"), warmup: c.Int("warmup")}
	if s := strings.TrimSpace(c.String("sizes")); s != "" {
		if o.sizes, err = parseSides("bench image-size", s, synth.MinSide, synth.MaxSide, " (the synthetic world's range)"); err != nil {
			return o, err
		}
	}
	switch {
	case o.images < 1:
		return o, fmt.Errorf("bench image-size: --images %d, want ≥ 1", o.images)
	case o.batch < 1:
		return o, fmt.Errorf("bench image-size: --batch %d, want ≥ 1", o.batch)
	case o.iters < 1:
		return o, fmt.Errorf("bench image-size: --iters %d, want ≥ 1", o.iters)
	case o.warmup < 0:
		return o, fmt.Errorf("bench image-size: --warmup %d, want ≥ 0", o.warmup)
	case c.Int("threads") < 0:
		return o, fmt.Errorf("bench image-size: --threads %d, want ≥ 0", c.Int("threads"))
	}
	o.cpuClock, err = parseClock("bench image-size", c)
	return o, err
}

// defaultImageSizes are ½, ¾, 1, 1½ and 2 times the trained side, inside
// the synthetic world's range, without repeats.
func defaultImageSizes(trained int) []int {
	var sizes []int
	for _, f := range []float64{0.5, 0.75, 1, 1.5, 2} {
		s := min(max(int(math.Round(f*float64(trained))), synth.MinSide), synth.MaxSide)
		if len(sizes) == 0 || sizes[len(sizes)-1] != s {
			sizes = append(sizes, s)
		}
	}
	return sizes
}

// imageSizeRow is the checkpoint at one image size.
type imageSizeRow struct {
	side, tokens  int
	e2e, detector time.Duration // batch-1 medians
	ap50, ap      float64       // COCO; -1: no ground truth
	mlm, itm      eval.Accuracy
	dropped       int // synthetic objects of classes the checkpoint does not know
}

func benchImageSize(c *cli.Context) error {
	o, err := parseImageSizeOptions(c)
	if err != nil {
		return err
	}
	runtime.LockOSThread() // LibTorch work stays on one OS thread
	defer runtime.UnlockOSThread()
	em, err := benchCheckpoint(c, "bench image-size")
	if err != nil {
		return err
	}
	defer em.model.Close()
	if o.sizes == nil {
		o.sizes = defaultImageSizes(em.imageSize)
	}
	w := c.App.Writer
	dev, threads := em.model.Device, torch.NumThreads(0)
	clock := "wall"
	if o.cpuClock {
		clock = "process CPU"
	}
	title := fmt.Sprintf("checkpoint %d (step %d, %s, trained at %d px), %d held-out synthetic images per size",
		em.ref.ID, em.ref.Step, em.spec.Model, em.imageSize, o.images)
	fmt.Fprintf(w, "%s; %s, %d LibTorch thread(s), %s time, batch 1, median of %d\n", title, dev, threads, clock, o.iters)
	var rows []imageSizeRow
	for _, side := range o.sizes {
		r, err := imageSizeMeasure(em, side, o)
		if err != nil {
			return fmt.Errorf("bench image-size: %d px: %w", side, err)
		}
		fmt.Fprintf(w, "  %dx%d: AP50 %s, e2e %.1f ms\n", side, side, apCell(r.ap50), ms(r.e2e))
		if r.dropped > 0 {
			fmt.Fprintf(c.App.ErrWriter, "vlp: %d px: %d synthetic objects are of classes checkpoint %d does not know (it trained on other data): left out of AP\n",
				side, r.dropped, em.ref.ID)
		}
		rows = append(rows, r)
	}
	writeImageSizeTable(w, rows, em.imageSize)
	if path := c.String("out"); path != "" {
		lat, acc := imageSizeCharts(rows, em.imageSize, fmt.Sprintf("vlp bench image-size: %s\n%s, %d LibTorch thread(s), %s time",
			title, dev, threads, clock))
		if err := plot.WritePanelsPNG(path, lat, acc); err != nil {
			return fmt.Errorf("bench image-size: %w", err)
		}
		fmt.Fprintf(w, "latency and accuracy against image size: %s\n", path)
	}
	return nil
}

// imageSizeMeasure evaluates em on a fresh held-out synthetic world of
// side×side images and times its batch-1 passes at that size.
func imageSizeMeasure(em *evalModel, side int, o imageSizeOptions) (imageSizeRow, error) {
	r := imageSizeRow{side: side, tokens: em.model.ImageTokens(side, side)}
	set, err := eval.SynthSet(em.spec.Seed, o.images, side, em.classes, em.attrs)
	if err != nil {
		return r, err
	}
	rep, err := eval.Evaluate(em.model, set, eval.Config{Tokenizer: em.tok, ImageSize: side, Batch: o.batch, Beams: 1})
	if err != nil {
		return r, err
	}
	r.ap50, r.ap, r.mlm, r.itm, r.dropped = rep.Detection.AP50, rep.Detection.AP, rep.ColourMLM, rep.ITM, set.DroppedObjects
	m := em.model
	batch := inferBatch(m.Config, 1, side, side, min(imageSizeTextLen, m.Config.MaxTextLen), 1)
	passes := []inferPass{
		func(s *torch.Scope) (func() error, error) {
			in, err := model.BatchToTensors(s, batch, m.Device)
			return func() error { _, err := m.Understand(s, in); return err }, err
		},
		func(s *torch.Scope) (func() error, error) {
			in, err := model.BatchToTensors(s, batch, m.Device)
			return func() error { _, err := m.DetectObjects(s, in, false); return err }, err
		},
	}
	med, err := medianRuns(m.Device, o.warmup, o.iters, o.cpuClock, passes)
	if err != nil {
		return r, err
	}
	r.e2e, r.detector = med[0], med[1]
	return r, nil
}

// apCell is a COCO AP for the table: n/a without ground truth.
func apCell(v float64) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.3f", v)
}

// writeImageSizeTable prints one line per size; the trained size says so.
func writeImageSizeTable(w io.Writer, rows []imageSizeRow, trained int) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nimage (px)\timage tokens\te2e b1 (ms)\tdetector b1 (ms)\tAP50\tAP\tcolour MLM\tITM")
	for _, r := range rows {
		fmt.Fprintf(tw, "%dx%d\t%d\t%.1f\t%.1f\t%s\t%s\t%.3f (%d/%d)\t%.3f (%d/%d)", r.side, r.side, r.tokens, ms(r.e2e), ms(r.detector),
			apCell(r.ap50), apCell(r.ap), r.mlm.Rate(), r.mlm.Correct, r.mlm.Total, r.itm.Rate(), r.itm.Correct, r.itm.Total)
		if r.side == trained {
			fmt.Fprint(tw, "\ttrained size")
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// imageSizeCharts are the two panels: batch-1 latency (log y) and
// accuracy (0–1) against the image side. An AP without ground truth is
// NaN: the line breaks there.
func imageSizeCharts(rows []imageSizeRow, trained int, title string) (lat, acc plot.LineChart) {
	var ticks []float64
	e2e := plot.Series{Name: "e2e (ITM pass)", Points: true, Thick: true}
	det := plot.Series{Name: "detector", Points: true, Dashed: true}
	ap50 := plot.Series{Name: "AP50", Points: true, Thick: true}
	ap := plot.Series{Name: "AP @[.50:.95]", Points: true}
	mlm := plot.Series{Name: "colour MLM accuracy", Points: true, Dashed: true}
	itm := plot.Series{Name: "ITM accuracy", Points: true, Dashed: true}
	nanIfNeg := func(v float64) float64 {
		if v < 0 {
			return math.NaN()
		}
		return v
	}
	for _, r := range rows {
		x := float64(r.side)
		ticks = append(ticks, x)
		e2e.X, e2e.Y = append(e2e.X, x), append(e2e.Y, ms(r.e2e))
		det.X, det.Y = append(det.X, x), append(det.Y, ms(r.detector))
		ap50.X, ap50.Y = append(ap50.X, x), append(ap50.Y, nanIfNeg(r.ap50))
		ap.X, ap.Y = append(ap.X, x), append(ap.Y, nanIfNeg(r.ap))
		mlm.X, mlm.Y = append(mlm.X, x), append(mlm.Y, r.mlm.Rate())
		itm.X, itm.Y = append(itm.X, x), append(itm.Y, r.itm.Rate())
	}
	xl := fmt.Sprintf("image size (px, square side; trained at %d)", trained)
	lat = plot.LineChart{Title: title + "\nlatency per image–text pair at batch 1", XLabel: xl, YLabel: "latency (ms, log scale)", LogY: true,
		XTicks: ticks, Series: []plot.Series{e2e, det}, Width: inferChartWidth}
	acc = plot.LineChart{Title: "accuracy on the held-out synthetic world (one model, evaluated at each size)", XLabel: xl, YLabel: "accuracy (0–1)",
		XTicks: ticks, Series: []plot.Series{ap50, ap, mlm, itm}, Width: inferChartWidth}
	return lat, acc
}
