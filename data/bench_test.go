package data

import (
	"fmt"
	"testing"

	"github.com/e2evlp/vlp/sharding"
)

// BenchmarkPrepareImage measures decode + resize + normalise of one
// 640×480 photo-like JPEG per op on one goroutine; `vlp bench data` runs the
// same work on several goroutines and the whole pipeline.
func BenchmarkPrepareImage(b *testing.B) {
	var jpegs [][]byte
	for i := 0; i < 4; i++ {
		j, err := PhotoLikeJPEG(640, 480, uint64(i+1), 90)
		if err != nil {
			b.Fatal(err)
		}
		jpegs = append(jpegs, j)
	}
	decs := []Decoder{GoDecoder{}}
	if t, err := LoadTurboDecoder(""); err == nil {
		defer t.Close()
		decs = append(decs, t)
	} else {
		b.Logf("libjpeg-turbo not measured: %v", err)
	}
	sizes := []struct {
		name string
		ic   ImageConfig
	}{{"384", SquareImageConfig(384)}, {"base", DefaultImageConfig()}}
	for _, sz := range sizes {
		for _, dec := range decs {
			b.Run(fmt.Sprintf("%s/%s", sz.name, dec.Name()), func(b *testing.B) {
				cfg := Config{Image: sz.ic, Decoder: dec}
				meta := benchMeta()
				for i := 0; b.Loop(); i++ {
					r := prepareImage(Example{Meta: meta, JPEG: jpegs[i%len(jpegs)]}, &cfg)
					if r.err != nil {
						b.Fatal(r.err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
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
