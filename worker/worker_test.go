package worker

import (
	"math"
	"testing"
	"time"
)

// Two workers with the same global batch as one must end with the same
// parameters up to float rounding: data parallelism is correct.
func TestTwoWorkersMatchOne(t *testing.T) {
	const steps = 20
	run := func(n int) []float32 {
		spec := testSpec(4096, 4, 8, n) // units of B/2 pairs: both runs see the same pairs in every step
		c := newCluster(t, spec)
		var nodes []*node
		for i := range n {
			nodes = append(nodes, c.start("w"+string(rune('a'+i)), nodeOpts{maxSteps: steps}))
		}
		waitAll(t, 60*time.Second, nodes...)
		for _, nd := range nodes {
			if nd.res.Step != steps || nd.res.Reason != "max-steps" {
				t.Fatalf("%s ended at step %d (%q), want %d max-steps", nd.name, nd.res.Step, nd.res.Reason, steps)
			}
		}
		p := nodes[0].learner.Params()
		for _, nd := range nodes[1:] {
			if q := nd.learner.Params(); !bitsEqual(p, q) {
				t.Fatalf("ranks of one run hold different parameters")
			}
		}
		return p
	}
	one, two := run(1), run(2)
	moved := 0.0
	for i := range one {
		if d := math.Abs(float64(one[i] - two[i])); d > 1e-4 {
			t.Fatalf("param %d: 1 worker %v, 2 workers %v", i, one[i], two[i])
		}
		moved += math.Abs(float64(one[i]))
	}
	if moved < 0.1 {
		t.Fatalf("parameters barely moved (%v): the test proves nothing", moved)
	}
}

func bitsEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
