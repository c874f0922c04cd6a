package data

import (
	"context"
	"errors"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/e2evlp/vlp/sharding"
	"github.com/e2evlp/vlp/synth"
)

// jpegWorld renders a small shapes world and encodes its images as JPEG, so
// the pipeline runs its real decode path.
func jpegWorld(t *testing.T, images int) *SynthWorld {
	t.Helper()
	w, err := NewSynthWorld(synth.Config{Seed: 11, Images: images, Width: 80, Height: 64}, true)
	if err != nil {
		t.Fatal(err)
	}
	enc := map[any][]byte{}
	for i := range w.Examples {
		e := &w.Examples[i]
		b, ok := enc[e.Meta]
		if !ok {
			if b, err = synth.EncodeJPEG(e.Image); err != nil {
				t.Fatal(err)
			}
			enc[e.Meta] = b
		}
		e.JPEG, e.Image = b, nil
	}
	return w
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.BatchSize = 12
	cfg.Image = ImageConfig{ShorterSide: 48, MaxSide: 80, PadMultiple: 8}
	cfg.Seed = 42
	cfg.Epoch = 3
	cfg.Prefetch = 2
	return cfg
}

// drain reads every batch of a pipeline with a deadline.
func drain(t *testing.T, p *Pipeline) []*Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []*Batch
	for {
		b, err := p.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
}

func runPipeline(t *testing.T, cfg Config, tok *Tokenizer, src Source) ([]*Batch, Stats) {
	t.Helper()
	p, err := NewPipeline(context.Background(), cfg, tok, src)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	bs := drain(t, p)
	return bs, p.Stats()
}

func TestPipelineDeterministicAcrossWorkers(t *testing.T) {
	w := jpegWorld(t, 24)
	var runs [][]*Batch
	for _, workers := range []int{1, 4} {
		cfg := testConfig()
		cfg.Workers = workers
		bs, st := runPipeline(t, cfg, w.Tokenizer, w.Source(cfg.Seed, cfg.Epoch))
		if st.SkippedImages != 0 {
			t.Fatalf("workers=%d: %d images skipped", workers, st.SkippedImages)
		}
		rows, distinct := 0, 0
		for _, b := range bs {
			checkBatchShapes(t, b)
			rows += b.Size
			ids := map[uint64]bool{}
			for _, id := range b.ImageIDs {
				ids[id] = true
			}
			distinct += len(ids)
		}
		// Pairs of one image in a batch share one decode.
		if st.Images != distinct || distinct >= rows {
			t.Fatalf("workers=%d: %d images decoded for %d distinct images in %d rows", workers, st.Images, distinct, rows)
		}
		if rows != len(w.Examples) {
			t.Fatalf("workers=%d: %d rows, want %d", workers, rows, len(w.Examples))
		}
		runs = append(runs, bs)
	}
	if len(runs[0]) != len(runs[1]) {
		t.Fatalf("%d vs %d batches", len(runs[0]), len(runs[1]))
	}
	for i := range runs[0] {
		if !reflect.DeepEqual(runs[0][i], runs[1][i]) {
			t.Fatalf("batch %d differs between 1 and 4 workers", i)
		}
	}
	// The same pairs through the serial in-memory path give the same bits.
	cfg := testConfig()
	src := w.Source(cfg.Seed, cfg.Epoch)
	b0, err := BuildBatch(cfg, w.Tokenizer, src.Examples[:cfg.BatchSize])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b0, runs[0][0]) {
		t.Fatal("BuildBatch and the pipeline disagree on the first batch")
	}
	// Another epoch draws other masks and negatives.
	cfg.Epoch++
	b1, err := BuildBatch(cfg, w.Tokenizer, src.Examples[:cfg.BatchSize])
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(b1.TokenIDs, b0.TokenIDs) && reflect.DeepEqual(b1.ITMLabels, b0.ITMLabels) {
		t.Fatal("epoch does not change the random choices")
	}
}

func TestPipelineSkipsCorruptImage(t *testing.T) {
	w := jpegWorld(t, 8)
	cfg := testConfig()
	cfg.Workers = 2
	src := w.Source(cfg.Seed, cfg.Epoch)
	bad := src.Examples[5].Meta
	truncated := append([]byte(nil), src.Examples[5].JPEG[:len(src.Examples[5].JPEG)/3]...)
	badPairs := 0
	for i := range src.Examples {
		if src.Examples[i].Meta == bad {
			src.Examples[i].JPEG = truncated
			src.Examples[i].Shard = "shard-000007.tar"
			badPairs++
		}
	}
	bs, st := runPipeline(t, cfg, w.Tokenizer, src)
	if st.SkippedImages < 1 || st.SkippedPairs != badPairs {
		t.Fatalf("stats %+v, want ≥1 skipped image and %d skipped pairs", st, badPairs)
	}
	if len(st.RecentErrors) == 0 || !strings.Contains(st.RecentErrors[0], "shard-000007.tar") || !strings.Contains(st.RecentErrors[0], bad.Key) {
		t.Fatalf("skip reason %q does not name the shard and key %s", st.RecentErrors, bad.Key)
	}
	rows, skipped := 0, 0
	for _, b := range bs {
		rows += b.Size
		skipped += len(b.SkippedIDs)
		for _, id := range b.ImageIDs {
			if id == bad.ImageID {
				t.Fatal("a row of the corrupt image reached a batch")
			}
		}
	}
	if rows+skipped != len(src.Examples) || skipped != badPairs {
		t.Fatalf("rows %d + skipped %d, want %d + %d", rows, skipped, len(src.Examples)-badPairs, badPairs)
	}
}

// failingSource returns an error after n examples.
type failingSource struct {
	inner *SliceSource
	n     int
}

func (f *failingSource) Next(ctx context.Context) (Example, error) {
	if f.n == 0 {
		return Example{}, errors.New("disk on fire")
	}
	f.n--
	return f.inner.Next(ctx)
}

func TestPipelineSourceError(t *testing.T) {
	w := jpegWorld(t, 6)
	cfg := testConfig()
	p, err := NewPipeline(context.Background(), cfg, w.Tokenizer, &failingSource{inner: w.Source(1, 1), n: 2*cfg.BatchSize + 3})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n int
	for {
		_, err := p.Next(ctx)
		if err != nil {
			if !strings.Contains(err.Error(), "disk on fire") {
				t.Fatalf("err = %v, want the source's error", err)
			}
			break
		}
		n++
	}
	if n != 3 { // two full batches and the 3 pairs read before the error
		t.Fatalf("%d batches before the error, want 3", n)
	}
}

// blockingSource never ends: it serves its examples in a loop.
type blockingSource struct {
	ex []Example
	i  int
}

func (s *blockingSource) Next(ctx context.Context) (Example, error) {
	if err := ctx.Err(); err != nil {
		return Example{}, err
	}
	s.i++
	return s.ex[s.i%len(s.ex)], nil
}

func TestPipelineCancelNoLeak(t *testing.T) {
	w := jpegWorld(t, 6)
	before := runtime.NumGoroutine()
	for _, stopBy := range []string{"close", "context"} {
		ctx, cancel := context.WithCancel(context.Background())
		cfg := testConfig()
		cfg.Workers = 3
		p, err := NewPipeline(ctx, cfg, w.Tokenizer, &blockingSource{ex: w.Examples})
		if err != nil {
			t.Fatal(err)
		}
		// Take one batch, then leave the pipeline blocked on a full queue.
		rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
		if _, err := p.Next(rctx); err != nil {
			t.Fatal(err)
		}
		rcancel()
		time.Sleep(50 * time.Millisecond)
		if stopBy == "context" {
			cancel()
		}
		done := make(chan struct{})
		go func() { p.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: Close did not return", stopBy)
		}
		cancel()
		if _, err := p.Next(context.Background()); !errors.Is(err, ErrClosed) {
			t.Fatalf("Next after Close: %v, want ErrClosed", err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after Close, %d before", n, before)
	}
}

func TestReleasedBuffersAreCleanInTheNextBatch(t *testing.T) {
	w := jpegWorld(t, 12)
	cfg := testConfig()
	src := w.Source(1, 1).Examples
	for round := 0; round < 3; round++ {
		b, err := BuildBatch(cfg, w.Tokenizer, src[round*5:round*5+5])
		if err != nil {
			t.Fatal(err)
		}
		checkBatchShapes(t, b) // padding is zero and masked
		for i := range b.Images {
			b.Images[i] = 7 // stale data a reused buffer would carry
		}
		for i := range b.PixelMask {
			b.PixelMask[i] = i%3 == 0
		}
		b.Release()
		if b.Images != nil || b.PixelMask != nil {
			t.Fatal("Release left the slices in the batch")
		}
	}
}

func TestDirectAndCopyModesAgree(t *testing.T) {
	// Pixels resized straight into the batch (the record knows its size)
	// and pixels resized apart and copied in (it does not) are the same
	// bits, with rows sharing an image and with a corrupt image dropped.
	w := jpegWorld(t, 10)
	cfg := testConfig()
	cfg.Image = ImageConfig{ShorterSide: 40, MaxSide: 72, PadMultiple: 8}
	for _, corrupt := range []bool{false, true} {
		var direct, copied []Example
		unsized := map[*sharding.SampleMeta]*sharding.SampleMeta{}
		for _, e := range w.Examples[:30] { // image by image: rows share images
			if corrupt && e.Meta == w.Examples[12].Meta {
				e.JPEG = e.JPEG[:len(e.JPEG)/2]
			}
			direct = append(direct, e)
			m, ok := unsized[e.Meta]
			if !ok {
				c := *e.Meta
				c.Width, c.Height = 0, 0
				m = &c
				unsized[e.Meta] = m
			}
			e.Meta = m
			copied = append(copied, e)
		}
		a, err := BuildBatch(cfg, w.Tokenizer, direct)
		if err != nil {
			t.Fatal(err)
		}
		b, err := BuildBatch(cfg, w.Tokenizer, copied)
		if err != nil {
			t.Fatal(err)
		}
		checkBatchShapes(t, a)
		if corrupt && len(a.SkippedIDs) == 0 {
			t.Fatal("the corrupt image was not skipped")
		}
		if !reflect.DeepEqual(a.Images, b.Images) || !reflect.DeepEqual(a.PixelMask, b.PixelMask) ||
			a.Height != b.Height || a.Width != b.Width || !reflect.DeepEqual(a.SkippedIDs, b.SkippedIDs) {
			t.Fatalf("corrupt=%v: direct and copy modes differ (%dx%d vs %dx%d)", corrupt, a.Width, a.Height, b.Width, b.Height)
		}
	}
}
