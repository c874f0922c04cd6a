package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// A LibTorch pass keeps every temporary until its scope closes, so a
// batch of large images can take many GiB. On a shared machine the
// kernel's OOM killer then ends the largest process with no word of why,
// or, should ours not be the largest, someone else's job. watchMemory
// ends bench infer first, with an error that names the limit.

// procBytes reads a "Key: N kB" line of a /proc file in bytes (-1 when
// absent: not Linux).
func procBytes(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == key+":" {
			if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				return kb << 10
			}
		}
	}
	return -1
}

// availableBytes is what the kernel says can be had without swapping
// (MemAvailable), or as good as unbounded off Linux.
func availableBytes() int64 {
	if n := procBytes("/proc/meminfo", "MemAvailable"); n > 0 {
		return n
	}
	return math.MaxInt64 / 4
}

// watchMemory checks the resident memory every 20 ms and exits the
// process with status 1 once it passes limit bytes. Call the returned
// function to stop watching.
func watchMemory(limit int64, errw io.Writer) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if rss := procBytes("/proc/self/status", "VmRSS"); rss > limit {
					fmt.Fprintf(errw, "vlp: bench infer: resident memory %.1f GiB passed --max-memory %.1f GiB; stopped (leave out the largest --sizes, lower --batch or raise --max-memory)\n",
						gib(rss), gib(limit))
					os.Exit(1)
				}
			}
		}
	}()
	return func() { close(done) }
}

func gib(b int64) float64 { return float64(b) / (1 << 30) }
