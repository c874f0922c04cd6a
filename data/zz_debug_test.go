package data

import (
	"context"
	"testing"
	"time"
)

func TestZZDebugPipelineRate(t *testing.T) {
	var jpegs [][]byte
	for i := 0; i < 8; i++ {
		j, _ := PhotoLikeJPEG(640, 480, uint64(i+1), 90)
		jpegs = append(jpegs, j)
	}
	for _, w := range []int{1, 2} {
		cfg := DefaultConfig()
		cfg.Image = SquareImageConfig(384)
		cfg.Workers = w
		t0 := time.Now()
		r, err := BenchPipeline(context.Background(), cfg, jpegs, 128, 1)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("workers %d: %+v wall %v", w, r, time.Since(t0))
	}
}
