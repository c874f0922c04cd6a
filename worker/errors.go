package worker

import "errors"

// Errors a Worker returns.
var (
	// ErrConfig: a Config field is out of bounds; the message names it.
	ErrConfig = errors.New("worker: invalid configuration")
	// ErrJobSpec: the job spec asks for something the job's model cannot do (a field only
	// another model has, an unknown option, a value out of range); the message names the field.
	ErrJobSpec = errors.New("worker: the job spec does not fit its model")
	// ErrGeneration: the generation ended under the worker (a collective
	// failed, or the coordinator announced a newer one); the step in flight
	// was abandoned. Internal: Run handles it by syncing the next generation.
	ErrGeneration = errors.New("worker: generation changed")
	// ErrNoGeneration: no usable generation came before Config.GenerationTimeout.
	ErrNoGeneration = errors.New("worker: no new generation before the deadline")
	// ErrRemoved: the coordinator no longer knows this worker (declared dead).
	ErrRemoved = errors.New("worker: removed from the job")
	// ErrState: a broadcast or restored training state is unusable.
	ErrState = errors.New("worker: bad training state")
	// ErrRestore: the checkpoint to restore could not be loaded.
	ErrRestore = errors.New("worker: restore failed")
)
