package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/eval/plot"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/torch"
	"github.com/urfave/cli/v2"
)

const catBenchInfer = "BENCH INFER"

var benchInferCommand = &cli.Command{
	Name:  "infer",
	Usage: "inference latency (batch 1) and throughput (batch --batch) per preset and image size, next to a two-step pipeline's cost model",
	Description: "For each --presets model (random weights: the time does not depend on them) and each --sizes\n" +
		"shorter side S (images S×⌊4S/3⌋, COCO's 4:3, with a --text-len token caption), times three\n" +
		"inference passes, each the median of --iters runs after --warmup untimed ones:\n" +
		"  e2e       E2E-VLP as an understanding task runs it: backbone → encoder over text + image\n" +
		"            tokens → ITM head (one pass, no detector);\n" +
		"  detector  the detector forward alone: backbone → the encoder's image-only pass → the\n" +
		"            detection decoder, what a region-feature model must run before its transformer;\n" +
		"  two-step  the cost model of a two-step pipeline: detector + the same encoder over text and\n" +
		"            the decoder's Q regions. A real one (Faster R-CNN, ResNet-101, 600×1000) runs a\n" +
		"            heavier detector: this is a lower bound.\n" +
		"at batch 1 (latency per image–text pair) and at --batch (pairs/s), in wall time or, with\n" +
		"--clock cpu, in this process's CPU time (a shared machine's waits left out). A batch cell above\n" +
		"--batch-up-to px, or predicted to take longer than --max-cell (from its batch-1 time), is skipped\n" +
		"and says so. A batch of 32 large images can take tens of GiB: past --max-memory of resident\n" +
		"memory the command stops with an error (not the kernel's OOM killer, which may pick another\n" +
		"job). Prints a table and draws --out: batch-1 latency against image size. Random weights measure\n" +
		"no accuracy: vlp bench image-size evaluates a checkpoint at each size (docs/bench-infer.md).",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "presets", Value: "tiny,base", Usage: "comma-separated presets (tiny, base, large, rNN-encM)", Category: catBenchInfer},
		&cli.StringFlag{Name: "sizes", Value: "224,320,480", Usage: "comma-separated shorter image sides in pixels (e.g. 224,320,480,640,800)", Category: catBenchInfer},
		&cli.IntFlag{Name: "batch", Value: 32, Usage: "batch size of the throughput measurement (1: latency only)", Category: catBenchInfer},
		&cli.IntFlag{Name: "batch-up-to", Value: 320, Usage: "measure --batch only at sizes up to this shorter side in pixels (0: every size): larger batches take minutes and GiB on a few cores", Category: catBenchInfer},
		&cli.IntFlag{Name: "iters", Value: 3, Usage: "timed runs per pass (the median is reported)", Category: catBenchInfer},
		&cli.IntFlag{Name: "warmup", Value: 2, Usage: "untimed runs before them (allocator, thread pool)", Category: catBenchInfer},
		&cli.IntFlag{Name: "text-len", Value: 16, Usage: "caption tokens, [CLS] and [SEP] included", Category: catBenchInfer},
		&cli.DurationFlag{Name: "max-cell", Value: time.Minute, Usage: "skip a batch measurement predicted to take longer (0: never skip)", Category: catBenchInfer},
		&cli.Float64Flag{Name: "max-memory", Usage: "stop when this process's resident memory passes this many GiB (0: half of the memory available when it starts; Linux)", Category: catBenchInfer},
		&cli.StringFlag{Name: "clock", Value: "wall", Usage: "wall (elapsed time) or cpu (this process's CPU time, user + sys, every thread: on a shared machine it leaves out the time spent waiting for a core; CPU only)", Category: catBenchInfer},
		&cli.StringFlag{Name: "device", Value: "cpu", Usage: "cpu or cuda:N", EnvVars: []string{"VLP_DEVICE"}, Category: catBenchInfer},
		&cli.IntFlag{Name: "threads", Usage: threadsUsage, EnvVars: []string{"VLP_THREADS"}, Category: catBenchInfer},
		&cli.StringFlag{Name: "out", Value: "bench-infer.png", Usage: "the latency-against-size picture (empty: none)", Category: catBenchInfer},
		&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the weights and inputs", Category: catBenchInfer},
	},
	Action: benchInfer,
}

// inferOptions are bench infer's flags, checked.
type inferOptions struct {
	presets              []string
	sizes                []int
	batch, iters, warmup int
	batchUpTo            int // px; 0: every size
	textLen              int
	maxCell              time.Duration
	cpuClock             bool
	maxMemory            int64 // bytes of resident memory
	seed                 uint64
}

// clockName says what the times are.
func (o inferOptions) clockName() string {
	if o.cpuClock {
		return "process CPU"
	}
	return "wall"
}

func parseInferOptions(c *cli.Context) (o inferOptions, err error) {
	o = inferOptions{batch: c.Int("batch"), batchUpTo: c.Int("batch-up-to"), iters: c.Int("iters"), warmup: c.Int("warmup"),
		textLen: c.Int("text-len"), maxCell: c.Duration("max-cell"), seed: c.Uint64("seed")}
	for _, p := range strings.Split(c.String("presets"), ",") {
		p = strings.TrimSpace(p)
		if _, err := model.Preset(p); err != nil {
			return o, fmt.Errorf("bench infer: --presets: %w", err)
		}
		o.presets = append(o.presets, p)
	}
	if o.sizes, err = parseSides("bench infer", c.String("sizes"), 32, 2048, ""); err != nil {
		return o, err
	}
	switch {
	case o.batch < 1:
		return o, fmt.Errorf("bench infer: --batch %d, want ≥ 1", o.batch)
	case o.iters < 1:
		return o, fmt.Errorf("bench infer: --iters %d, want ≥ 1", o.iters)
	case o.warmup < 0:
		return o, fmt.Errorf("bench infer: --warmup %d, want ≥ 0", o.warmup)
	case o.textLen < 2:
		return o, fmt.Errorf("bench infer: --text-len %d, want ≥ 2 ([CLS] and [SEP])", o.textLen)
	case o.maxCell < 0:
		return o, fmt.Errorf("bench infer: --max-cell %v, want ≥ 0", o.maxCell)
	case o.batchUpTo < 0:
		return o, fmt.Errorf("bench infer: --batch-up-to %d, want ≥ 0", o.batchUpTo)
	}
	switch gb := c.Float64("max-memory"); {
	case gb < 0:
		return o, fmt.Errorf("bench infer: --max-memory %g GiB, want ≥ 0", gb)
	case gb > 0:
		o.maxMemory = int64(gb * (1 << 30))
	default:
		o.maxMemory = availableBytes() / 2
	}
	o.cpuClock, err = parseClock("bench infer", c)
	return o, err
}

// parseSides reads a comma-separated --sizes list of image sides in
// lo..hi pixels; why, when set, says where the range comes from.
func parseSides(cmd, list string, lo, hi int, why string) ([]int, error) {
	var sides []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < lo || n > hi {
			return nil, fmt.Errorf("%s: --sizes: %q is not a side in %d..%d pixels%s", cmd, f, lo, hi, why)
		}
		sides = append(sides, n)
	}
	return sides, nil
}

// parseClock reads --clock: true for the process's CPU time, which only
// --device cpu can use.
func parseClock(cmd string, c *cli.Context) (cpu bool, err error) {
	switch c.String("clock") {
	case "wall":
		return false, nil
	case "cpu":
		if c.String("device") != "cpu" {
			return false, fmt.Errorf("%s: --clock cpu times the host's CPU; on %s use --clock wall", cmd, c.String("device"))
		}
		return true, nil
	}
	return false, fmt.Errorf("%s: --clock %q: want wall or cpu", cmd, c.String("clock"))
}

// inferTimes are one (preset, size, batch) cell's medians; zero when the
// cell was skipped.
type inferTimes struct {
	e2e, detector, regions time.Duration
	skipped                string // why, when skipped
}

// twoStep is the two-step pipeline's cost model: detector, then the
// transformer over text and regions.
func (t inferTimes) twoStep() time.Duration { return t.detector + t.regions }

// inferRow is one preset at one image size.
type inferRow struct {
	preset      string
	h, w        int
	tokens      int // image tokens the encoder sees
	one, batchT inferTimes
}

func benchInfer(c *cli.Context) error {
	o, err := parseInferOptions(c)
	if err != nil {
		return err
	}
	dev, err := loadTorch(c, c.String("device"))
	if err != nil {
		return fmt.Errorf("bench infer: %w", err)
	}
	runtime.LockOSThread() // LibTorch work stays on one OS thread
	defer runtime.UnlockOSThread()
	threads := torch.NumThreads(c.Int("threads"))
	w := c.App.Writer
	stop := watchMemory(o.maxMemory, c.App.ErrWriter)
	defer stop()
	fmt.Fprintf(w, "bench infer on %s, %d LibTorch thread(s), %s time, %d+%d runs per pass (warm-up excluded, median reported), caption %d tokens\n",
		dev, threads, o.clockName(), o.warmup, o.iters, o.textLen)
	var rows []inferRow
	for _, p := range o.presets {
		pr, err := benchInferPreset(w, dev, p, o)
		if err != nil {
			return err
		}
		rows = append(rows, pr...)
	}
	writeInferTable(w, rows, o.batch)
	if hwm := procBytes("/proc/self/status", "VmHWM"); hwm > 0 {
		fmt.Fprintf(w, "peak resident memory %.1f GiB (--max-memory %.1f GiB)\n", gib(hwm), gib(o.maxMemory))
	}
	if path := c.String("out"); path != "" {
		if err := inferChart(rows, dev, threads, o).WritePNG(path); err != nil {
			return fmt.Errorf("bench infer: %w", err)
		}
		fmt.Fprintf(w, "latency against image size: %s (accuracy against size: vlp bench image-size --checkpoint)\n", path)
	}
	return nil
}

// benchInferPreset measures one preset at every size.
func benchInferPreset(w io.Writer, dev torch.Device, preset string, o inferOptions) ([]inferRow, error) {
	cfg, err := model.Preset(preset)
	if err != nil {
		return nil, err
	}
	if o.textLen > cfg.MaxTextLen {
		return nil, fmt.Errorf("bench infer: --text-len %d exceeds preset %s's %d text positions", o.textLen, preset, cfg.MaxTextLen)
	}
	m, err := model.New(cfg, o.seed, dev)
	if err != nil {
		return nil, fmt.Errorf("bench infer: preset %s: %w", preset, err)
	}
	defer m.Close()
	var rows []inferRow
	for _, side := range o.sizes {
		h, wd := side, side*4/3
		r := inferRow{preset: preset, h: h, w: wd, tokens: m.ImageTokens(h, wd)}
		if r.one, err = timeInferCell(m, dev, 1, h, wd, o); err != nil {
			return nil, err
		}
		fmt.Fprintf(w, "  %s %dx%d: e2e %.1f ms, detector %.1f ms, two-step %.1f ms (batch 1)\n", preset, h, wd,
			ms(r.one.e2e), ms(r.one.detector), ms(r.one.twoStep()))
		if o.batch > 1 {
			predicted := time.Duration(o.batch*(o.warmup+o.iters)) * (r.one.e2e + r.one.twoStep())
			switch {
			case o.batchUpTo > 0 && side > o.batchUpTo:
				r.batchT.skipped = fmt.Sprintf("skipped: %d px > --batch-up-to %d", side, o.batchUpTo)
			case o.maxCell > 0 && predicted > o.maxCell:
				r.batchT.skipped = fmt.Sprintf("skipped: predicted %v > --max-cell %v", predicted.Round(time.Second), o.maxCell)
			default:
				if r.batchT, err = timeInferCell(m, dev, o.batch, h, wd, o); err != nil {
					return nil, err
				}
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// inferBatch is b synthetic rows of h×w pixels and a textLen-token caption:
// ImageNet-normalised noise and random word ids, no padding.
func inferBatch(c model.Config, b, h, w, textLen int, seed uint64) *data.Batch {
	r := rand.New(rand.NewPCG(seed, 0x1f))
	bt := &data.Batch{Size: b, Height: h, Width: w, SeqLen: textLen, CapLen: 2,
		Images:    make([]float32, b*3*h*w), // [B,3,H,W]
		PixelMask: make([]bool, b*h*w),      // [B,H,W] no padding
		TokenIDs:  make([]int64, b*textLen), // [B,L]
		TokenMask: make([]bool, b*textLen),  // [B,L] no padding
		MLMLabels: make([]int64, b*textLen), // [B,L] nothing masked
		ITMLabels: make([]int64, b),
		Targets:   make([]data.DetectionTarget, b),
		// The caption fields are unused by the timed passes; [CLS] [SEP].
		CaptionIDs: make([]int64, b*2), CaptionMask: make([]bool, b*2),
	}
	for i := range bt.Images {
		bt.Images[i] = float32(r.NormFloat64())
	}
	for i := range bt.TokenIDs {
		bt.TokenIDs[i] = 5 + r.Int64N(int64(c.VocabSize-5)) // past the special tokens
		bt.MLMLabels[i] = data.IgnoreIndex
	}
	return bt
}

// timeInferCell times the three passes at batch b.
func timeInferCell(m *model.Model, dev torch.Device, b, h, w int, o inferOptions) (inferTimes, error) {
	batch := inferBatch(m.Config, b, h, w, o.textLen, o.seed)
	q, d := int64(m.Config.NumQueries), int64(m.Config.DModel)
	// Each run uploads its inputs into its own scope, off the clock: an op's
	// result goes to the youngest scope among its inputs, so inputs held in
	// an outer scope would keep every run's temporaries alive there.
	upload := func(s *torch.Scope) (*model.Inputs, error) { return model.BatchToTensors(s, batch, dev) }
	passes := []inferPass{
		func(s *torch.Scope) (func() error, error) {
			in, err := upload(s)
			return func() error { _, err := m.Understand(s, in); return err }, err
		},
		func(s *torch.Scope) (func() error, error) {
			in, err := upload(s)
			return func() error { _, err := m.DetectObjects(s, in, false); return err }, err
		},
		func(s *torch.Scope) (func() error, error) {
			in, err := upload(s)
			regions := torch.Randn(s, nil, []int64{int64(b), q, d}, torch.Float32, dev) // [B,Q,d]
			if err == nil {
				err = s.Err()
			}
			return func() error { _, err := m.EncodeRegions(s, in, regions); return err }, err
		},
	}
	med, err := medianRuns(dev, o.warmup, o.iters, o.cpuClock, passes)
	if err != nil {
		return inferTimes{}, fmt.Errorf("bench infer: batch %d, %dx%d: %w", b, h, w, err)
	}
	return inferTimes{e2e: med[0], detector: med[1], regions: med[2]}, nil
}

// inferPass prepares one run in s (untimed) and returns the run to time.
type inferPass func(s *torch.Scope) (run func() error, err error)

// medianRuns runs the passes in turn, warmup rounds untimed then iters
// rounds timed, and returns each pass's median (wall or process CPU
// time). Taking turns spreads the noise of a shared machine over every
// pass alike, so their ratios hold better than their absolute times. Each
// run has a fresh scope, freed before the next; on CUDA the clock is read
// after the device is done.
func medianRuns(dev torch.Device, warmup, iters int, cpuClock bool, passes []inferPass) ([]time.Duration, error) {
	clock := func() time.Duration { return time.Duration(time.Now().UnixNano()) }
	if cpuClock {
		clock = processCPUTime
	}
	ds := make([][]time.Duration, len(passes))
	for i := 0; i < warmup+iters; i++ {
		for k, prepare := range passes {
			s := torch.NewScope()
			run, err := prepare(s)
			var el time.Duration
			if err == nil {
				start := clock()
				err = run()
				if err == nil && dev.IsCUDA() {
					err = torch.CUDASynchronize(dev.Index())
				}
				el = clock() - start
			}
			s.Close()
			if err != nil {
				return nil, err
			}
			if i >= warmup {
				ds[k] = append(ds[k], el)
			}
		}
	}
	med := make([]time.Duration, len(passes))
	for k := range ds {
		slices.Sort(ds[k])
		med[k] = ds[k][len(ds[k])/2]
	}
	return med, nil
}

// processCPUTime is the user + system CPU time of every thread of this
// process so far.
func processCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }

// writeInferTable prints one line per preset and size.
func writeInferTable(w io.Writer, rows []inferRow, batch int) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\npreset\timage (px)\timage tokens\te2e b1 (ms)\tdetector b1 (ms)\ttwo-step b1 (ms)\ttwo-step / e2e")
	if batch > 1 {
		fmt.Fprintf(tw, "\te2e b%d (pairs/s)\ttwo-step b%d (pairs/s)", batch, batch)
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%dx%d\t%d\t%.1f\t%.1f\t%.1f\t%.2f", r.preset, r.h, r.w, r.tokens, ms(r.one.e2e), ms(r.one.detector),
			ms(r.one.twoStep()), r.one.twoStep().Seconds()/r.one.e2e.Seconds())
		switch {
		case batch <= 1:
		case r.batchT.skipped != "":
			fmt.Fprintf(tw, "\t%s\t", r.batchT.skipped)
		default:
			fmt.Fprintf(tw, "\t%.1f\t%.1f", float64(batch)/r.batchT.e2e.Seconds(), float64(batch)/r.batchT.twoStep().Seconds())
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// inferChartWidth leaves the legend of three presets room beside the plot.
const inferChartWidth = 1100

// inferChart is batch-1 latency against the shorter side: per preset the
// end-to-end model (solid) and the two-step cost model (dashed).
func inferChart(rows []inferRow, dev torch.Device, threads int, o inferOptions) plot.LineChart {
	c := plot.LineChart{
		Title: fmt.Sprintf("vlp bench infer: latency per image–text pair at batch 1\n%s, %d LibTorch thread(s), %s time, median of %d",
			dev, threads, o.clockName(), o.iters),
		Width:  1100,
		XLabel: "image size (px, shorter side; 4:3 images)", YLabel: "latency (ms, log scale)", LogY: true,
	}
	for _, s := range o.sizes {
		c.XTicks = append(c.XTicks, float64(s))
	}
	for _, p := range o.presets {
		e2e := plot.Series{Name: p + " E2E-VLP", Points: true, Thick: true}
		two := plot.Series{Name: p + " two-step (cost model)", Points: true, Dashed: true}
		for _, r := range rows {
			if r.preset != p {
				continue
			}
			e2e.X, e2e.Y = append(e2e.X, float64(r.h)), append(e2e.Y, ms(r.one.e2e))
			two.X, two.Y = append(two.X, float64(r.h)), append(two.Y, ms(r.one.twoStep()))
		}
		c.Series = append(c.Series, e2e, two)
	}
	return c
}
