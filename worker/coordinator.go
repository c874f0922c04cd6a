package worker

import (
	"context"

	"github.com/e2evlp/vlp/coordinator"
)

// Coordinator is what a worker asks of the job's coordinator. It is
// implemented by *coordinator.Client, whose every call has a deadline and
// retries across a leader failover.
type Coordinator interface {
	Join(ctx context.Context, req coordinator.JoinRequest) (*coordinator.JoinReply, error)
	Heartbeat(ctx context.Context, workerID, generation uint64) (*coordinator.HeartbeatReply, error)
	Leave(ctx context.Context, workerID uint64) (*coordinator.LeaveReply, error)
	LeaseUnits(ctx context.Context, req coordinator.LeaseRequest) (*coordinator.LeaseReply, error)
	ReportProgress(ctx context.Context, req coordinator.ProgressRequest) (*coordinator.ProgressReply, error)
	RecordCheckpoint(ctx context.Context, req coordinator.CheckpointRequest) (*coordinator.CheckpointReply, error)
	Status(ctx context.Context) (*coordinator.JobStatus, error)
	// LostState says that no member of the generation holds the job's state.
	LostState(ctx context.Context, generation uint64) (*coordinator.LostStateReply, error)
	// Watch delivers the newest generation whenever it changes until ctx ends.
	Watch(ctx context.Context) (<-chan coordinator.GenerationInfo, error)
}

var _ Coordinator = (*coordinator.Client)(nil)
