package sharding

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// startBar draws a progress bar on w until the returned stop is called.
func startBar(w io.Writer, total int64, done *atomic.Int64) (stop func()) {
	if w == nil {
		return func() {}
	}
	start := time.Now()
	draw := func() {
		n := done.Load()
		frac := 1.0
		if total > 0 {
			frac = float64(n) / float64(total)
		}
		const width = 30
		bar := make([]byte, width)
		for i := range bar {
			if float64(i) < frac*width {
				bar[i] = '='
			} else {
				bar[i] = ' '
			}
		}
		rate := float64(n) / max(time.Since(start).Seconds(), 1e-3)
		fmt.Fprintf(w, "\rshard [%s] %d/%d images %5.1f%% %.0f img/s", bar, n, total, 100*frac, rate)
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				draw()
				fmt.Fprintln(w)
				return
			case <-t.C:
				draw()
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}
