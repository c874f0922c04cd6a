package data

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/e2evlp/vlp/sharding"
)

// benchJPEGs encodes n photo-like 640×480 JPEGs (COCO's typical size).
func benchJPEGs(b *testing.B, n int) [][]byte {
	b.Helper()
	var jpegs [][]byte
	for i := 0; i < n; i++ {
		j, err := PhotoLikeJPEG(640, 480, uint64(i+1), 90)
		if err != nil {
			b.Fatal(err)
		}
		jpegs = append(jpegs, j)
	}
	return jpegs
}

// benchDecoders returns image/jpeg and, when it loads, libjpeg-turbo.
func benchDecoders(b *testing.B) []Decoder {
	b.Helper()
	decs := []Decoder{GoDecoder{}}
	if t, err := LoadTurboDecoder(""); err == nil {
		b.Cleanup(func() { t.Close() })
		decs = append(decs, t)
	} else {
		b.Logf("libjpeg-turbo not measured: %v", err)
	}
	return decs
}

var benchSizes = []struct {
	name string
	ic   ImageConfig
}{{"384", SquareImageConfig(384)}, {"base", DefaultImageConfig()}}

// BenchmarkPrepareImage measures decode + resize + normalise of 640×480
// photo-like JPEGs on GOMAXPROCS goroutines (-cpu 1,2,4,…): images/s is the
// total rate, images/s/core the rate per goroutine.
func BenchmarkPrepareImage(b *testing.B) {
	jpegs := benchJPEGs(b, 8)
	for _, sz := range benchSizes {
		for _, dec := range benchDecoders(b) {
			b.Run(fmt.Sprintf("%s/%s", sz.name, dec.Name()), func(b *testing.B) {
				cfg := Config{Image: sz.ic, Decoder: dec}
				meta := benchMeta()
				var next atomic.Int64
				cpu0 := cpuSeconds()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := int(next.Add(1))
						r := prepareImage(Example{Meta: meta, JPEG: jpegs[i%len(jpegs)]}, &cfg)
						if r.err != nil {
							b.Error(r.err)
							return
						}
						putFloats(r.img.Pix) // as the collator does
					}
				})
				cpu := cpuSeconds() - cpu0
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
				b.ReportMetric(float64(b.N)/cpu, "images/cpu-s")
			})
		}
	}
}

// BenchmarkPipeline runs the whole pipeline (decode, resize, normalise,
// tokenise, ITM, MLM, pad; batches of 32, one image per sample) with
// GOMAXPROCS decode goroutines.
func BenchmarkPipeline(b *testing.B) {
	jpegs := benchJPEGs(b, 8)
	for _, sz := range benchSizes {
		for _, dec := range benchDecoders(b) {
			b.Run(fmt.Sprintf("%s/%s", sz.name, dec.Name()), func(b *testing.B) {
				cfg := DefaultConfig()
				cfg.Image, cfg.Decoder, cfg.Workers = sz.ic, dec, runtime.GOMAXPROCS(0)
				// Rates from BenchPipeline's own clocks: b.Elapsed is not
				// reliable here on the first run of a b.Loop benchmark.
				samples, images, cpu, wall := 0, 0, 0.0, 0.0
				for b.Loop() {
					// Enough batches that start-up and drain are a small part.
					r, err := BenchPipeline(context.Background(), cfg, jpegs, max(4, 2*cfg.Workers)*cfg.BatchSize, 1)
					if err != nil {
						b.Fatal(err)
					}
					samples, images, cpu, wall = samples+r.Samples, images+r.Images, cpu+r.CPUSeconds, wall+r.Seconds
				}
				b.ReportMetric(float64(samples)/wall, "samples/s")
				b.ReportMetric(float64(samples)/cpu, "samples/cpu-s")
				b.ReportMetric(float64(images)/float64(samples), "decodes/sample")
			})
		}
	}
}

// BenchmarkResizeNormalize isolates the resize + normalise stage.
func BenchmarkResizeNormalize(b *testing.B) {
	src := solid(640, 480, [3]uint8{10, 100, 200})
	for _, sz := range []struct {
		name   string
		tw, th int
	}{{"384", 384, 384}, {"base", 683, 512}} {
		b.Run(sz.name, func(b *testing.B) {
			for b.Loop() {
				ResizeNormalize(src, sz.tw, sz.th)
			}
		})
	}
}

func benchMeta() *sharding.SampleMeta {
	return &sharding.SampleMeta{Key: "bench", Texts: []sharding.Text{{Text: "a"}}}
}
