package integration

import (
	"fmt"
	"sort"
	"time"

	"github.com/e2evlp/vlp/worker"
)

// Tally counts the pairs of the surviving timeline of committed steps.
type Tally struct {
	Steps      int           // committed steps of the surviving timeline
	Once       int           // pairs consumed by exactly one committed step
	Duplicated int           // pairs consumed by more than one
	Missing    int           // pairs of the expected epochs consumed by none
	Stall      time.Duration // longest wall-clock gap between consecutive committed steps
	StallAfter uint64        // the step after which it happened
}

func (t Tally) String() string {
	return fmt.Sprintf("%d steps, pairs once %d, duplicated %d, missing %d, longest stall %v (after step %d)",
		t.Steps, t.Once, t.Duplicated, t.Missing, t.Stall.Round(time.Millisecond), t.StallAfter)
}

// TallyCommits reads the workers' commit logs and counts the pairs of the surviving timeline:
// a generation whose first step is S supersedes every step >= S of older generations (a
// rollback), and a step logged by several workers counts once. epochs is how many epochs must
// be complete; each has pairs pairs in units of perUnit (the last unit shorter), and every pair
// of them missing from the timeline counts in Missing.
func TallyCommits(paths []string, pairs, perUnit, epochs int) (Tally, error) {
	byGen := map[uint64]map[uint64]worker.CommitLine{}
	for _, p := range paths {
		lines, err := worker.ReadCommitLog(p)
		if err != nil {
			return Tally{}, err
		}
		for _, l := range lines {
			g := byGen[l.Generation]
			if g == nil {
				g = map[uint64]worker.CommitLine{}
				byGen[l.Generation] = g
			}
			if old, ok := g[l.Step]; !ok || l.AtMS < old.AtMS {
				g[l.Step] = l // the earliest write: when the step committed
			}
		}
	}
	gens := make([]uint64, 0, len(byGen))
	for g := range byGen {
		gens = append(gens, g)
	}
	sort.Slice(gens, func(i, j int) bool { return gens[i] < gens[j] })
	timeline := map[uint64]worker.CommitLine{}
	for _, g := range gens {
		first := ^uint64(0)
		for s := range byGen[g] {
			first = min(first, s)
		}
		for s := range timeline {
			if s >= first {
				delete(timeline, s)
			}
		}
		for s, l := range byGen[g] {
			timeline[s] = l
		}
	}
	type pair struct {
		epoch  uint64
		unit   uint32
		offset uint32
	}
	counts := map[pair]int{}
	steps := make([]uint64, 0, len(timeline))
	for s, l := range timeline {
		steps = append(steps, s)
		for _, r := range l.Ranks {
			for _, seg := range r.Segments {
				for i := range seg.Count {
					counts[pair{seg.Epoch, seg.Unit, seg.Offset + i}]++
				}
			}
		}
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i] < steps[j] })
	t := Tally{Steps: len(steps)}
	for i := 1; i < len(steps); i++ {
		gap := time.Duration(timeline[steps[i]].AtMS-timeline[steps[i-1]].AtMS) * time.Millisecond
		if gap > t.Stall {
			t.Stall, t.StallAfter = gap, steps[i-1]
		}
	}
	for _, n := range counts {
		if n == 1 {
			t.Once++
		} else {
			t.Duplicated++
		}
	}
	units := (pairs + perUnit - 1) / perUnit
	for e := range epochs {
		for u := range units {
			size := min(perUnit, pairs-u*perUnit)
			for o := range size {
				if counts[pair{uint64(e), uint32(u), uint32(o)}] == 0 {
					t.Missing++
				}
			}
		}
	}
	return t, nil
}
