package data

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/e2evlp/vlp/sharding"
)

// PhotoLikeJPEG encodes a w×h test image with detail at every scale (colour
// value noise summed over octaves from 256 px down to single pixels), so
// that JPEG sizes and decode times resemble COCO's rather than those of flat
// synthetic drawings: about 150 KB at 640×480 and quality 90, where COCO
// train2017 averages ~155 KB (18 GB over 118K images). Decode time grows
// with the entropy-coded bytes, so flat test images would flatter it.
func PhotoLikeJPEG(w, h int, seed uint64, quality int) ([]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	const octaves = 9
	// lattice values per octave and channel
	val := func(o, c, x, y int) float64 {
		return float64(mix64(seed^uint64(o)<<56^uint64(c)<<48^uint64(x)<<24^uint64(y))>>11)/(1<<53) - 0.5
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var rgb [3]float64
			for o := 0; o < octaves; o++ {
				cell := float64(int(256) >> o) // 256 px down to 1 px
				fx, fy := float64(x)/cell, float64(y)/cell
				x0, y0 := int(math.Floor(fx)), int(math.Floor(fy))
				tx, ty := fx-float64(x0), fy-float64(y0)
				tx, ty = tx*tx*(3-2*tx), ty*ty*(3-2*ty)
				amp := 100 / math.Pow(1.12, float64(o))
				for c := 0; c < 3; c++ {
					v00, v10 := val(o, c, x0, y0), val(o, c, x0+1, y0)
					v01, v11 := val(o, c, x0, y0+1), val(o, c, x0+1, y0+1)
					v := (v00*(1-tx)+v10*tx)*(1-ty) + (v01*(1-tx)+v11*tx)*ty
					rgb[c] += amp * v
				}
			}
			i := img.PixOffset(x, y)
			for c := 0; c < 3; c++ {
				img.Pix[i+c] = uint8(max(0, min(255, 128+rgb[c])))
			}
			img.Pix[i+3] = 255
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ImageBenchResult is one measurement of the image stage.
type ImageBenchResult struct {
	Decoder    string
	Goroutines int
	Images     int
	Seconds    float64 // wall clock
	CPUSeconds float64 // user + system time of the whole process
	PerSecond  float64 // images/s, all goroutines
	PerCore    float64 // PerSecond / Goroutines
	PerCPUSec  float64 // images per CPU-second: the rate one fully busy core sustains
}

// cpuSeconds returns the process's user + system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchImages decodes, resizes and normalises the given JPEGs over and over
// on g goroutines for about d, and reports the rate.
func BenchImages(ctx context.Context, dec Decoder, ic ImageConfig, jpegs [][]byte, g int, d time.Duration) (ImageBenchResult, error) {
	cfg := Config{Image: ic, Decoder: dec}
	var (
		n    atomic.Int64
		wg   sync.WaitGroup
		errV atomic.Value
	)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	meta := &sharding.SampleMeta{Key: "bench", Texts: []sharding.Text{{}}}
	start, cpu0 := time.Now(), cpuSeconds()
	for k := 0; k < g; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			for i := k; ctx.Err() == nil; i++ {
				r := prepareImage(Example{Meta: meta, JPEG: jpegs[i%len(jpegs)]}, &cfg)
				if r.err != nil {
					errV.Store(r.err)
					cancel()
					return
				}
				putFloats(r.img.Pix) // as the collator does once the batch holds the pixels
				n.Add(1)
			}
		}(k)
	}
	wg.Wait()
	secs, cpu := time.Since(start).Seconds(), cpuSeconds()-cpu0
	if e, ok := errV.Load().(error); ok {
		return ImageBenchResult{}, e
	}
	res := ImageBenchResult{Decoder: dec.Name(), Goroutines: g, Images: int(n.Load()), Seconds: secs, CPUSeconds: cpu}
	res.PerSecond = float64(res.Images) / secs
	res.PerCore = res.PerSecond / float64(g)
	if cpu > 0 {
		res.PerCPUSec = float64(res.Images) / cpu
	}
	return res, nil
}

// PipelineBenchResult is one measurement of the whole pipeline.
type PipelineBenchResult struct {
	Decoder    string
	Workers    int
	Batches    int
	Samples    int
	Images     int // images decoded (one per sample here)
	Seconds    float64
	CPUSeconds float64 // user + system time of the whole process
	PerSecond  float64 // samples (rows) per second
	PerCPUSec  float64 // samples per CPU-second
}

// BenchPipeline runs the whole pipeline (decode, resize, normalise,
// tokenise, ITM, MLM, pad) over a synthetic epoch of images pairs, each image
// with pairsPerImage captions, consecutive pairs sharing their image as in a
// shard, and reports samples/s.
func BenchPipeline(ctx context.Context, cfg Config, jpegs [][]byte, images, pairsPerImage int) (PipelineBenchResult, error) {
	words := []string{"a", "small", "red", "circle", "left", "of", "large", "blue", "square", "man", "riding", "horse", "on", "beach", "near", "the", "water"}
	var texts []string
	var ex []Example
	for i := 0; i < images; i++ {
		jpg := jpegs[i%len(jpegs)]
		// Shards record each image's size, which lets the pipeline resize
		// straight into the batch.
		ic, err := jpeg.DecodeConfig(bytes.NewReader(jpg))
		if err != nil {
			return PipelineBenchResult{}, fmt.Errorf("%w: %v", ErrCorruptImage, err)
		}
		meta := &sharding.SampleMeta{Key: fmt.Sprintf("img%06d", i), ImageID: uint64(i + 1), Width: ic.Width, Height: ic.Height}
		for k := 0; k < pairsPerImage; k++ {
			var s string
			for j := 0; j < 8+(i+k)%6; j++ {
				s += words[int(mix64(uint64(i*131+k*17+j))%uint64(len(words)))] + " "
			}
			meta.Texts = append(meta.Texts, sharding.Text{PairID: uint64(i*pairsPerImage + k), Kind: "caption", Text: s})
			texts = append(texts, s)
		}
		meta.Objects = []sharding.Object{{Box: [4]float32{0.5, 0.5, 0.3, 0.3}, Class: 1, Attributes: []int{2}}}
		ex = append(ex, PairsOf("bench", meta, jpg)...)
	}
	v, err := BuildVocab(texts, 100)
	if err != nil {
		return PipelineBenchResult{}, err
	}
	p, err := NewPipeline(ctx, cfg, NewTokenizer(v), &SliceSource{Examples: ex})
	if err != nil {
		return PipelineBenchResult{}, err
	}
	defer p.Close()
	res := PipelineBenchResult{Decoder: cfg.decoder().Name(), Workers: cfg.Workers}
	start, cpu0 := time.Now(), cpuSeconds()
	for {
		b, err := p.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, err
		}
		res.Batches++
		res.Samples += b.Size
		b.Release() // as a worker does once the batch is in tensors
	}
	res.Seconds, res.CPUSeconds = time.Since(start).Seconds(), cpuSeconds()-cpu0
	res.Images = p.Stats().Images
	res.PerSecond = float64(res.Samples) / res.Seconds
	if res.CPUSeconds > 0 {
		res.PerCPUSec = float64(res.Samples) / res.CPUSeconds
	}
	return res, nil
}
