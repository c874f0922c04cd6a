package worker

// How a worker leaves training is one state machine, owned by the Run
// goroutine. Its inputs are this worker's stop order (stopReq: Stop or
// SIGTERM), the job's stop (jobStop: a heartbeat reply saying the job was
// stopped), both set by other goroutines and never cleared, the committed
// steps' metadata, the lease broadcast, and max_steps. docs/worker.md draws
// it with the test that exercises each transition.
//
//	training ──commit: own stop order published, not every rank's───▶ stopAlone
//	training ──commit: every rank's stop order published────────────▶ stopJoint
//	training ──commit: every rank heard the job stop────────────────▶ stopJoint
//	training ──lease broadcast: the job is stopped──────────────────▶ stopJoint
//	training ──lease: no pairs left anywhere────────────────────────▶ complete
//	stopAlone, stopJoint ──a new generation─────────────────────────▶ training
//
// At every step boundary finishReason reads the phase (and max_steps):
// complete, max-steps and stopJoint end every rank together through the
// final barrier; stopAlone ends this rank only, and its peers go on in a
// new generation. A stop takes effect only once it rode in a committed
// step's metadata, so every rank knows who is leaving at that step. A job
// stop never ends a rank alone: ranks hear it at different heartbeats, and
// one leaving first would break the ring before rank 0 could report the
// last step and write the final checkpoint. The exits on failure are the
// Run loop's: a stop (order or job) and a step that cannot finish leave at
// once; a rejoin the coordinator refuses because the job is no longer
// running leaves cleanly.
type finishPhase int

const (
	phaseTraining finishPhase = iota
	// phaseStopAlone: this rank's stop rode in the last committed step's
	// metadata and not every rank's did: it finishes alone.
	phaseStopAlone
	// phaseStopJoint: every rank's stop rode in the same committed step,
	// or the lease broadcast said the job was stopped: all finish together.
	phaseStopJoint
	// phaseComplete: the lease found every epoch done.
	phaseComplete
)

func (p finishPhase) String() string {
	switch p {
	case phaseTraining:
		return "training"
	case phaseStopAlone:
		return "stop-alone"
	case phaseStopJoint:
		return "stop-joint"
	case phaseComplete:
		return "complete"
	}
	return "unknown"
}

// committed moves the phase after a step commits: own says whether this
// rank's metadata carried its stop order, all whether every rank's did, job
// whether every rank had heard the job stop.
func (w *Worker) committed(own, all, job bool) {
	if w.phase == phaseComplete {
		return
	}
	switch {
	case (own && all) || job:
		w.phase = phaseStopJoint
	case own:
		w.phase = phaseStopAlone
	default:
		w.phase = phaseTraining
	}
}

// leaseSaysStopped: every rank received the same broadcast, a joint stop.
func (w *Worker) leaseSaysStopped() {
	w.jobStop.Store(true)
	if w.phase != phaseComplete {
		w.phase = phaseStopJoint
	}
}

// newGeneration: a stop published in the last generation ended only the
// ranks that published it; in this one the stop (still set) is published
// again.
func (w *Worker) newGeneration() {
	if w.phase == phaseStopAlone || w.phase == phaseStopJoint {
		w.phase = phaseTraining
	}
}

// atMaxSteps: the step limit is reached.
func (w *Worker) atMaxSteps() bool { return w.cfg.MaxSteps > 0 && w.rec.Step >= w.cfg.MaxSteps }

// finishReason says whether training ends at this step boundary. Every rank
// reaches the same answer from the shared record, except for a stop that
// not every rank published: it ends only the ranks that did. Acting on an
// unpublished stop would let a rank leave while rank 0 still records the
// final checkpoint of a joint stop.
func (w *Worker) finishReason() string {
	switch {
	case w.phase == phaseComplete:
		return "complete"
	case w.atMaxSteps():
		return "max-steps"
	case w.phase == phaseStopAlone || w.phase == phaseStopJoint:
		return "stopped"
	}
	return ""
}

// finishTogether: every rank of the ring ends at this step boundary, so
// they pass the final barrier after rank 0's final checkpoint.
func (w *Worker) finishTogether() bool {
	return w.phase == phaseComplete || w.atMaxSteps() || w.phase == phaseStopJoint
}
