package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/e2evlp/vlp/worker"
)

// TestTallyCommits checks the counting the scenarios rely on, without namespaces: a step logged
// by two workers counts once, a rollback's later generation supersedes the abandoned steps, a
// pair committed twice is a duplicate and one never committed is missing.
func TestTallyCommits(t *testing.T) {
	seg := func(unit, off, n uint32) []worker.Segment {
		return []worker.Segment{{Epoch: 0, Unit: unit, Offset: off, Count: n}}
	}
	line := func(step, gen uint64, at int64, segs ...[]worker.Segment) worker.CommitLine {
		l := worker.CommitLine{Step: step, Generation: gen, AtMS: at}
		for i, s := range segs {
			l.Ranks = append(l.Ranks, worker.RankLog{Worker: uint64(i + 1), Segments: s})
		}
		return l
	}
	write := func(name string, lines ...worker.CommitLine) string {
		path := filepath.Join(t.TempDir(), name)
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, l := range lines {
			b, _ := json.Marshal(l)
			f.Write(append(b, '\n'))
		}
		f.WriteString(`{"step": 9, "torn`) // a writer killed mid-line
		return path
	}
	// 2 units of 4 pairs. Generation 1 commits steps 1-3; a rollback to step 1 makes generation 3
	// redo steps 2-3 differently (the abandoned step 3 consumed unit 1's first pairs).
	a := write("a", line(1, 1, 1000, seg(0, 0, 2)), line(2, 1, 2000, seg(0, 2, 2)), line(3, 1, 3000, seg(1, 0, 2)))
	b := write("b", line(1, 1, 1001, seg(0, 0, 2)), line(2, 3, 9000, seg(0, 2, 2)), line(3, 3, 9500, seg(1, 0, 4)))
	got, err := TallyCommits([]string{a, b}, 8, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Steps != 3 || got.Once != 8 || got.Duplicated != 0 || got.Missing != 0 {
		t.Fatalf("rollback timeline: %v, want 3 steps, 8 pairs once", got)
	}
	if got.StallAfter != 1 || got.Stall.Milliseconds() != 8000 {
		t.Fatalf("stall %v after step %d, want 8 s after step 1", got.Stall, got.StallAfter)
	}
	c := write("c", line(1, 1, 1000, seg(0, 0, 4)), line(2, 1, 2000, seg(0, 2, 2), seg(1, 0, 1)))
	got, err = TallyCommits([]string{c}, 8, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Duplicated != 2 || got.Missing != 3 || got.Once != 3 {
		t.Fatalf("duplicates and gaps: %v, want 2 duplicated, 3 missing, 3 once", got)
	}
}
