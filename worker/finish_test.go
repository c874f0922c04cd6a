package worker

import "testing"

// TestFinishPhases walks the stop state machine's transitions (finish.go)
// and the reason and barrier each phase gives at a step boundary.
func TestFinishPhases(t *testing.T) {
	type event func(w *Worker)
	commit := func(own, all bool) event { return func(w *Worker) { w.committed(own, all, false) } }
	jobCommit := func(w *Worker) { w.committed(false, false, true) }
	lease := func(w *Worker) { w.leaseSaysStopped() }
	complete := func(w *Worker) { w.phase = phaseComplete }
	regen := func(w *Worker) { w.newGeneration() }
	for _, tc := range []struct {
		name     string
		events   []event
		phase    finishPhase
		reason   string
		together bool
	}{
		{"nothing heard", []event{commit(false, false)}, phaseTraining, "", false},
		{"own stop published alone", []event{commit(true, false)}, phaseStopAlone, "stopped", false},
		{"every rank published", []event{commit(true, true)}, phaseStopJoint, "stopped", true},
		{"lease says stopped", []event{lease}, phaseStopJoint, "stopped", true},
		{"every rank heard the job stop", []event{jobCommit}, phaseStopJoint, "stopped", true},
		{"complete stays complete", []event{complete, commit(true, true), lease, regen}, phaseComplete, "complete", true},
		{"a new generation forgets a published stop", []event{commit(true, false), regen}, phaseTraining, "", false},
		{"a joint stop forgotten too", []event{lease, regen}, phaseTraining, "", false},
		{"published again in the new generation", []event{commit(true, false), regen, commit(true, true)}, phaseStopJoint, "stopped", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &Worker{}
			for _, e := range tc.events {
				e(w)
			}
			if w.phase != tc.phase || w.finishReason() != tc.reason || w.finishTogether() != tc.together {
				t.Fatalf("phase %v reason %q together %v; want %v %q %v", w.phase, w.finishReason(), w.finishTogether(), tc.phase, tc.reason, tc.together)
			}
		})
	}
	// The lease's stop is the job's: a new generation publishes it.
	w := &Worker{}
	w.leaseSaysStopped()
	if !w.jobStop.Load() {
		t.Fatal("a stopped lease did not set the job stop")
	}
	// max_steps ends every rank together whatever the phase.
	w = &Worker{cfg: Config{MaxSteps: 5}}
	w.rec.Step = 5
	if w.finishReason() != "max-steps" || !w.finishTogether() {
		t.Fatalf("at max_steps: reason %q together %v", w.finishReason(), w.finishTogether())
	}
}
