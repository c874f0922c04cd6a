package train

import (
	"bytes"
	"github.com/e2evlp/vlp/worker"
	"github.com/e2evlp/vlp/worker/workertest"
	"testing"

	"github.com/e2evlp/vlp/model"
)

// withoutPrefetch is a learner that ignores the worker's hints: every batch is built on time.
type withoutPrefetch struct{ *Learner }

func (withoutPrefetch) Prepare([]worker.Pair) {}

// Units of four steps' pairs let the worker name the next step's pairs while this one computes:
// those batches are built ahead (the learner counts them), and the run ends with the same bits as
// one whose batches are all built on time.
func TestVLPPrefetchTrainsAsOnTime(t *testing.T) {
	spec := workertest.Spec("tiny", int64(16*5), 8, 4, 2) // units of 8 pairs, 2 a rank a step
	spec.Model = "tiny"
	var learners []*Learner
	mk := vlpFactoryConfig(t, 8, spec.Seed, func(*model.TrainConfig) {}, func(c *Config) { c.Overlap = true })
	ahead := trainTwoVLPWorkers(t, spec, func() worker.Learner {
		l := mk().(*Learner)
		learners = append(learners, l)
		return l
	})
	for i, l := range learners {
		if l.data.early == 0 {
			t.Errorf("worker %d built no batch ahead in three steps of units four steps long", i)
		}
	}
	onTime := trainTwoVLPWorkers(t, spec, func() worker.Learner { return withoutPrefetch{mk().(*Learner)} })
	if !bytes.Equal(ahead, onTime) {
		t.Fatalf("batches built ahead train to other bits (first difference at byte %d of %d)", firstDiff(ahead, onTime), len(ahead))
	}
}
