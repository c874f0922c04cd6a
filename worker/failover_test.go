package worker

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The coordinator leader of a 3-replica group dies while two workers train:
// a follower takes over, the client retries reach it, and training
// continues to the end of the epoch, every pair consumed exactly once.
func TestCoordinatorFailoverWhileTraining(t *testing.T) {
	const pairs = 480
	c := newClusterN(t, 3, testSpec(pairs, 8, 12, 2))
	var led ledger
	o := nodeOpts{ledger: &led, compute: 3 * time.Millisecond}
	a, b := c.start("a", o), c.start("b", o)
	led.waitStep(t, 5, 30*time.Second)
	leader := c.c.Leader(t)
	at := led.maxStep()
	c.c.Kill(leader)
	killed := time.Now()
	led.waitStep(t, at+8, 30*time.Second)
	t.Logf("leader killed at step %d; step %d committed %v later", at, at+8, time.Since(killed).Round(time.Millisecond))
	waitAll(t, 90*time.Second, a, b)
	if a.res.Reason != "complete" || b.res.Reason != "complete" {
		t.Fatalf("workers ended with %q / %q at step %d", a.res.Reason, b.res.Reason, a.res.Step)
	}
	checkExactlyOnce(t, led.consumed(t, []string{"a", "b"}, a.res.Step, 8), pairs)
	if nl := c.c.Leader(t); nl == leader {
		t.Fatal("no new leader")
	}
}

// The worker's Prometheus metrics count committed steps and pairs, split
// the step time by phase, and hold the losses.
func TestWorkerMetrics(t *testing.T) {
	c := newCluster(t, testSpec(4096, 8, 8, 1))
	reg := prometheus.NewRegistry()
	a := c.start("a", nodeOpts{maxSteps: 12, metrics: NewMetrics(reg), ckptDir: t.TempDir()})
	waitAll(t, 30*time.Second, a)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "/" + l.GetValue()
			}
			switch {
			case m.GetCounter() != nil:
				got[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				got[key] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				got[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	want := map[string]float64{
		"vlp_worker_steps_total": 12, "vlp_worker_pairs_total": 96, "vlp_worker_global_step": 12,
		"vlp_worker_step_phase_seconds/data": 12, "vlp_worker_step_phase_seconds/forward_backward": 12,
		"vlp_worker_step_phase_seconds/allreduce": 12, "vlp_worker_step_phase_seconds/optimizer": 12,
		"vlp_worker_step_phase_seconds/total": 12, "vlp_worker_generations_total": 1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if got["vlp_worker_loss/total"] <= 0 || got["vlp_worker_checkpoint_bytes_total"] <= 0 {
		t.Errorf("loss %v, checkpoint bytes %v", got["vlp_worker_loss/total"], got["vlp_worker_checkpoint_bytes_total"])
	}
}
