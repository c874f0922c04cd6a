package main

import (
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/e2evlp/vlp/data"
	"github.com/urfave/cli/v2"
)

const catBenchData = "BENCH DATA"

// benchDataTarget is what the pipeline must deliver per GPU: twice the ~340
// samples/s a PyTorch eager E2E-VLP base consumes on an H100 at 384 px.
const benchDataTarget = 2 * 340

var benchDataCommand = &cli.Command{
	Name:  "data",
	Usage: "measure the input pipeline: decoded, resized, normalised images/s per core",
	Description: "Encodes --images photo-like JPEGs of --src-width×--src-height (COCO's typical 640×480),\n" +
		"then for each size (384: 384×384 square; base: shorter side 512, longer ≤ 853), decoder\n" +
		"(image/jpeg, libjpeg-turbo) and goroutine count, decodes + resizes + normalises for --seconds\n" +
		"and prints images/s. --pipeline also runs the whole pipeline (tokenise, ITM, MLM, pad into\n" +
		"batches of --batch), one image per sample. Finally it states the cores a worker needs for\n" +
		"2× 340 samples/s.",
	Flags: []cli.Flag{
		&cli.IntFlag{Name: "src-width", Usage: "source image width in pixels", Value: 640, Category: catBenchData},
		&cli.IntFlag{Name: "src-height", Usage: "source image height in pixels", Value: 480, Category: catBenchData},
		&cli.IntFlag{Name: "images", Usage: "distinct source JPEGs", Value: 8, Category: catBenchData},
		&cli.IntFlag{Name: "quality", Usage: "JPEG quality of the sources", Value: 90, Category: catBenchData},
		&cli.Float64Flag{Name: "seconds", Usage: "seconds per measurement", Value: 3, Category: catBenchData},
		&cli.StringFlag{Name: "goroutines", Usage: "comma-separated goroutine counts", Value: "1,2", Category: catBenchData},
		&cli.StringFlag{Name: "sizes", Usage: "comma-separated sizes: 384, base, or a number (square side)", Value: "384,base", Category: catBenchData},
		&cli.StringFlag{Name: "decoder", Usage: "go, turbo or both", Value: "both", EnvVars: []string{"VLP_BENCH_DECODER"}, Category: catBenchData},
		&cli.BoolFlag{Name: "pipeline", Usage: "also measure the whole pipeline", Value: true, Category: catBenchData},
		&cli.IntFlag{Name: "batch", Usage: "batch size of the pipeline measurement", Value: 32, Category: catBenchData},
	},
	Action: benchData,
}

func parseSizes(s string) (map[string]data.ImageConfig, []string, error) {
	out := map[string]data.ImageConfig{}
	var order []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch {
		case f == "base":
			out[f] = data.DefaultImageConfig()
		case f != "":
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 {
				return nil, nil, fmt.Errorf("bench data: bad size %q", f)
			}
			out[f] = data.SquareImageConfig(n)
		default:
			continue
		}
		order = append(order, f)
	}
	return out, order, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bench data: bad goroutine count %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func benchData(c *cli.Context) error {
	sizes, order, err := parseSizes(c.String("sizes"))
	if err != nil {
		return err
	}
	gs, err := parseInts(c.String("goroutines"))
	if err != nil {
		return err
	}
	var decs []data.Decoder
	switch c.String("decoder") {
	case "go":
		decs = []data.Decoder{data.GoDecoder{}}
	case "turbo", "both":
		t, err := data.LoadTurboDecoder("")
		if err != nil {
			return fmt.Errorf("bench data: %w", err)
		}
		defer t.Close()
		if c.String("decoder") == "both" {
			decs = append(decs, data.GoDecoder{})
		}
		decs = append(decs, t)
	default:
		return fmt.Errorf("bench data: --decoder %q: want go, turbo or both", c.String("decoder"))
	}
	var jpegs [][]byte
	total := 0
	for i := 0; i < c.Int("images"); i++ {
		b, err := data.PhotoLikeJPEG(c.Int("src-width"), c.Int("src-height"), uint64(i+1), c.Int("quality"))
		if err != nil {
			return err
		}
		jpegs = append(jpegs, b)
		total += len(b)
	}
	if len(jpegs) == 0 {
		return fmt.Errorf("bench data: --images must be ≥ 1")
	}
	w := c.App.Writer
	d := time.Duration(c.Float64("seconds") * float64(time.Second))
	fmt.Fprintf(w, "sources: %d JPEGs %dx%d q%d, mean %.0f KB; GOMAXPROCS %d, NumCPU %d\n",
		len(jpegs), c.Int("src-width"), c.Int("src-height"), c.Int("quality"), float64(total)/float64(len(jpegs))/1024,
		runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Fprintf(w, "%-6s %-14s %10s %10s %14s %14s\n", "size", "decoder", "goroutines", "images/s", "per goroutine", "per CPU-second")
	best := map[string]float64{} // size → best images per CPU-second
	for _, name := range order {
		for _, dec := range decs {
			for _, g := range gs {
				r, err := data.BenchImages(c.Context, dec, sizes[name], jpegs, g, d)
				if err != nil {
					return fmt.Errorf("bench data: %w", err)
				}
				fmt.Fprintf(w, "%-6s %-14s %10d %10.1f %14.1f %14.1f\n", name, r.Decoder, g, r.PerSecond, r.PerCore, r.PerCPUSec)
				if r.PerCPUSec > best[name] {
					best[name] = r.PerCPUSec
				}
			}
		}
	}
	if c.Bool("pipeline") {
		fmt.Fprintf(w, "whole pipeline (batch %d, one decode per sample):\n", c.Int("batch"))
		fmt.Fprintf(w, "%-6s %-14s %10s %10s %14s\n", "size", "decoder", "workers", "samples/s", "per CPU-second")
		bestImages := best
		best = map[string]float64{}
		for _, name := range order {
			for _, dec := range decs {
				for _, g := range gs {
					cfg := data.DefaultConfig()
					cfg.BatchSize, cfg.Image, cfg.Decoder, cfg.Workers = c.Int("batch"), sizes[name], dec, g
					n := max(2*cfg.BatchSize, int(bestImages[name]*float64(g)*d.Seconds()))
					r, err := data.BenchPipeline(c.Context, cfg, jpegs, n, 1)
					if err != nil {
						return fmt.Errorf("bench data: %w", err)
					}
					fmt.Fprintf(w, "%-6s %-14s %10d %10.1f %14.1f\n", name, r.Decoder, g, r.PerSecond, r.PerCPUSec)
					if r.PerCPUSec > best[name] {
						best[name] = r.PerCPUSec
					}
				}
			}
		}
	}
	for _, name := range order {
		if best[name] > 0 {
			fmt.Fprintf(w, "%s: %.0f samples per CPU-second (fastest decoder) → %d cores for %d samples/s\n",
				name, best[name], int(math.Ceil(benchDataTarget/best[name])), benchDataTarget)
		}
	}
	return nil
}
