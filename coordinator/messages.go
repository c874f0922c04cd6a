package coordinator

import (
	"encoding/json"
)

// APIVersion is the version of the request/reply envelopes and bodies below. A server answers a
// request of another version with ErrUnsupportedVersion; fields may be added within a version
// (decoders ignore unknown fields), never removed or re-typed.
const APIVersion = 1

// Request is the envelope of every API request: JSON on "vlp.<job>.coord.<op>".
type Request struct {
	V     int             `json:"v"`
	Token string          `json:"token"`
	Body  json.RawMessage `json:"body,omitempty"`
}

// Reply is the envelope of every reply: either Error or Body.
type Reply struct {
	V     int             `json:"v"`
	Error *APIError       `json:"error,omitempty"`
	Body  json.RawMessage `json:"body,omitempty"`
}

// JoinRequest asks to become a member. Instance is a nonce the worker draws once per process: a
// retried join with the same Instance returns the same membership instead of a second one.
type JoinRequest struct {
	Name     string `json:"name"`
	Instance string `json:"instance"`
	// Addr is where ring neighbours can reach this worker directly (TCP ring transport); optional.
	Addr   string `json:"addr,omitempty"`
	Device string `json:"device,omitempty"`
	// Server names the NATS server the worker's connection reached
	// (nats.Conn.ConnectedServerName); optional. Members on one server are
	// kept next to each other in the ring (allreduce.TopologyOrder).
	Server string `json:"server,omitempty"`
	// Identity is the public nkey the worker authenticated with, as the subject of its request
	// showed it (Subjects.WorkerOp); "" on the shared subjects. The server sets it: whatever a
	// client puts here is overwritten.
	Identity string `json:"identity,omitempty"`
}

// JoinReply gives the new member its id, the generation it is in, and the job.
type JoinReply struct {
	WorkerID   uint64         `json:"worker_id"`
	Rank       int            `json:"rank"`
	Generation GenerationInfo `json:"generation"`
	// HeartbeatIntervalMS is how often to heartbeat; LeaseTTLMS how long without one before the
	// worker is declared dead.
	HeartbeatIntervalMS int64   `json:"heartbeat_interval_ms"`
	LeaseTTLMS          int64   `json:"lease_ttl_ms"`
	Job                 JobSpec `json:"job"`
	// Restore, when set, says the ring holds no parameters: load this checkpoint (Step 0 with no
	// Location: initialise from the seed).
	Restore *Restore `json:"restore,omitempty"`
}

// HeartbeatRequest keeps a worker's lease alive.
type HeartbeatRequest struct {
	WorkerID   uint64 `json:"worker_id"`
	Generation uint64 `json:"generation"`
}

// HeartbeatReply tells the worker the current generation, its rank in it, and whether to stop.
type HeartbeatReply struct {
	Generation uint64   `json:"generation"`
	Rank       int      `json:"rank"`
	JobState   JobState `json:"job_state"`
	// Stop asks the worker to finish its step and leave (the job was stopped or is complete).
	Stop bool `json:"stop,omitempty"`
}

// LeaveRequest ends a membership; the worker's units are handed over like a dead worker's.
type LeaveRequest struct {
	WorkerID uint64 `json:"worker_id"`
}

// LeaveReply names the generation the departure created.
type LeaveReply struct {
	Generation uint64 `json:"generation"`
}

// LeaseRequest asks for work units for one or more members of the current generation. Asks are
// served in order in one Raft entry, so rank 0 leasing for every rank in rank order gets a
// deterministic assignment. RequestID makes a retry idempotent: the same id returns the same
// grant.
type LeaseRequest struct {
	Generation uint64     `json:"generation"`
	RequestID  string     `json:"request_id"`
	Asks       []LeaseAsk `json:"asks"`
}

// LeaseAsk asks for Count units for one worker.
type LeaseAsk struct {
	WorkerID uint64 `json:"worker_id"`
	Count    int    `json:"count"`
}

// LeaseReply carries one grant per ask. Exhausted: no pending unit was left (more may come back
// from a dead worker or the next epoch); Complete: every epoch is done.
type LeaseReply struct {
	Generation uint64       `json:"generation"`
	Grants     []LeaseGrant `json:"grants"`
	Exhausted  bool         `json:"exhausted,omitempty"`
	Complete   bool         `json:"complete,omitempty"`
}

// LeaseGrant lists the units leased to one worker, in the order it should consume them. A unit
// whose Offset > 0 was partly consumed: start at that pair.
type LeaseGrant struct {
	WorkerID uint64      `json:"worker_id"`
	Units    []UnitLease `json:"units"`
}

// UnitLease is one leased unit.
type UnitLease struct {
	Epoch  uint64 `json:"epoch"`
	Unit   uint32 `json:"unit"`
	Pairs  uint32 `json:"pairs"`
	Offset uint32 `json:"offset"`
}

// RankCursor is where one rank's data stream stood after a committed step: the next pair it reads
// is pair Offset of unit Unit of epoch Epoch. Unit -1: the rank holds no unit.
type RankCursor struct {
	Rank     int    `json:"rank"`
	WorkerID uint64 `json:"worker_id"`
	Epoch    uint64 `json:"epoch"`
	Unit     int64  `json:"unit"`
	Offset   uint32 `json:"offset"`
}

// DoneUnit says a unit's last pair was consumed in committed step Step.
type DoneUnit struct {
	Epoch uint64 `json:"epoch"`
	Unit  uint32 `json:"unit"`
	Step  uint64 `json:"step"`
}

// ProgressRequest reports committed steps: Step is the last committed global step, Cursors every
// rank's cursor after it (all ranks of the generation that committed it, as all-gathered by the
// ring), Done the units finished since the previous report.
//
// Handover: after a member died or left, the survivors report the cursors of the last step the old
// ring committed (Generation = the generation that committed it), with Handover set, before their
// new ring commits any step; only then do the departed member's units go back to pending, each
// with the offset its cursor had.
type ProgressRequest struct {
	Generation uint64       `json:"generation"`
	Step       uint64       `json:"step"`
	Handover   bool         `json:"handover,omitempty"`
	Cursors    []RankCursor `json:"cursors"`
	Done       []DoneUnit   `json:"done,omitempty"`
	// Checkpoint says a checkpoint of this step is being written: the coordinator remembers the
	// data state at it (a "writing" record) so that a rollback to it is exact. Record the
	// checkpoint (CheckpointRequest, durable) once it is on disk.
	Checkpoint bool `json:"checkpoint,omitempty"`
}

// ProgressReply acknowledges a report.
type ProgressReply struct {
	Step       uint64 `json:"step"`
	Generation uint64 `json:"generation"`
}

// CheckpointStatus is what is known of a checkpoint.
type CheckpointStatus string

const (
	// CheckpointWriting: announced by a progress report (ProgressRequest.Checkpoint), not yet
	// durable; never restored.
	CheckpointWriting CheckpointStatus = "writing"
	// CheckpointDurable: written and fsynced by its writer.
	CheckpointDurable CheckpointStatus = "durable"
	// CheckpointVerified: read back and every checksum matched.
	CheckpointVerified CheckpointStatus = "verified"
	// CheckpointCorrupt: verification failed; it is never restored.
	CheckpointCorrupt CheckpointStatus = "corrupt"
)

// CheckpointRequest records a checkpoint once it is on disk (Status durable: the step must be the
// reported step, or one announced by ProgressRequest.Checkpoint), or a verification result
// (verified or corrupt) for a recorded one.
type CheckpointRequest struct {
	Step     uint64           `json:"step"`
	Epoch    uint64           `json:"epoch"`
	Location string           `json:"location"`
	Checksum string           `json:"checksum"`
	Bytes    int64            `json:"bytes,omitempty"`
	Cursors  []RankCursor     `json:"cursors,omitempty"`
	Status   CheckpointStatus `json:"status"`
}

// CheckpointReply returns the latest usable checkpoint and, when a corrupt report made the job
// fall back, the restore point now in force.
type CheckpointReply struct {
	Latest  *CheckpointRecord `json:"latest,omitempty"`
	Restore *Restore          `json:"restore,omitempty"`
}

// StatusRequest asks for the job's status; it has no fields.
type StatusRequest struct{}

// SubmitRequest submits the job. Submitting the identical spec again is a no-op.
type SubmitRequest struct {
	Spec JobSpec `json:"spec"`
}

// StopRequest stops the job: heartbeats answer Stop, leases are refused.
type StopRequest struct {
	Reason string `json:"reason,omitempty"`
}

// RollbackRequest makes the job restart from the checkpoint at ToStep (0: from scratch): every unit
// consumed after it returns to pending and every member must reload.
type RollbackRequest struct {
	ToStep uint64 `json:"to_step"`
}

// RollbackReply names the new generation and restore point.
type RollbackReply struct {
	Generation uint64   `json:"generation"`
	Restore    *Restore `json:"restore"`
}

// LostStateRequest: the members of Generation found that none of them holds the job's state
// (every holder left before passing it on, e.g. the last old worker of a rolling upgrade) and the
// generation names no restore point. The job must go back to its latest usable checkpoint.
type LostStateRequest struct {
	Generation uint64 `json:"generation"`
}

// LostStateReply names the generation and restore point to train from. RolledBack: the job went
// back to Restore in a new generation, which the members must sync in.
type LostStateReply struct {
	Generation uint64   `json:"generation"`
	Restore    *Restore `json:"restore"`
	RolledBack bool     `json:"rolled_back"`
}

// MembersRequest asks for the Raft configuration; it has no fields.
type MembersRequest struct{}

// MembersReply lists the coordinators.
type MembersReply struct {
	Leader  string       `json:"leader"`
	Term    uint64       `json:"term"`
	Servers []RaftMember `json:"servers"`
}

// RaftMember is one coordinator replica.
type RaftMember struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
}

// AddPeerRequest adds a coordinator replica as a voter (what `coordinator start --join` sends).
type AddPeerRequest struct {
	ID      string `json:"id"`
	Address string `json:"address"`
}

// RemovePeerRequest removes a coordinator replica.
type RemovePeerRequest struct {
	ID string `json:"id"`
}

// PeerInfoRequest asks every coordinator replica of the job, on Subjects.Peers, what it knows of
// the Raft group. From is the asking replica's id (for the logs).
type PeerInfoRequest struct {
	From string `json:"from"`
}

// PeerInfoReply is one replica's answer: its id, whether it holds Raft state (a log, a snapshot
// or a configuration: it belongs, or belonged, to a group), the leader it knows ("" for none;
// the leader's own reply names itself), and the latest Raft configuration it has.
type PeerInfoReply struct {
	ID       string       `json:"id"`
	HasState bool         `json:"has_state"`
	Leader   string       `json:"leader"`
	Servers  []RaftMember `json:"servers"`
}

// Empty is the body of replies that carry nothing.
type Empty struct{}

// GenerationInfo is one ring generation: its number and members in rank order.
type GenerationInfo struct {
	Number  uint64   `json:"number"`
	Members []Member `json:"members"`
	// Ready: the generation has at least min_workers members.
	Ready bool `json:"ready"`
	// Restore, when set: no member holds parameters, load this checkpoint first.
	Restore *Restore `json:"restore,omitempty"`
	// HandoverPending: a member departed and the survivors must report the last committed step's
	// cursors (ProgressRequest.Handover) before stepping in this generation.
	HandoverPending bool `json:"handover_pending,omitempty"`
	// RollbackGen is the generation the job's last rollback created: a member's state committed
	// in an older generation belongs to the abandoned timeline and must not be synced.
	RollbackGen uint64 `json:"rollback_gen,omitempty"`
}

// Member is a worker in a generation.
type Member struct {
	WorkerID uint64 `json:"worker_id"`
	Rank     int    `json:"rank"`
	Name     string `json:"name"`
	Addr     string `json:"addr,omitempty"`
	Device   string `json:"device,omitempty"`
	Server   string `json:"server,omitempty"`
	// Identity is the public nkey the member authenticated with ("" on the shared worker
	// credential); it receives NATS ring frames under Subjects.WorkerRing(Identity).
	Identity string `json:"identity,omitempty"`
}

// Restore is where a ring that holds no parameters starts from: the checkpoint at Step (Location
// and Checksum empty for Step 0: initialise from the seed).
type Restore struct {
	Step     uint64       `json:"step"`
	Location string       `json:"location,omitempty"`
	Checksum string       `json:"checksum,omitempty"`
	Cursors  []RankCursor `json:"cursors,omitempty"`
}

// JobStatus is the reply to a status request.
type JobStatus struct {
	Job        *JobSpec       `json:"job,omitempty"`
	State      JobState       `json:"state"`
	Reason     string         `json:"reason,omitempty"`
	Generation GenerationInfo `json:"generation"`
	Step       uint64         `json:"step"`
	// Epoch is the lowest epoch not yet done; EpochProgress its fraction of pairs consumed.
	Epoch         uint64             `json:"epoch"`
	EpochProgress float64            `json:"epoch_progress"`
	EpochsDone    int                `json:"epochs_done"`
	Units         UnitCounts         `json:"units"`
	Cursors       []RankCursor       `json:"cursors,omitempty"`
	Checkpoints   []CheckpointRecord `json:"checkpoints,omitempty"`
	// Leader is the Raft id of the replica that answered; Term its Raft term.
	Leader string `json:"leader"`
	Term   uint64 `json:"term"`
	// AppliedIndex is the Raft index the answer reflects.
	AppliedIndex uint64 `json:"applied_index"`
}

// UnitCounts counts the units of the open epochs by state.
type UnitCounts struct {
	Pending  int `json:"pending"`
	Leased   int `json:"leased"`
	Orphaned int `json:"orphaned"`
	Done     int `json:"done"`
}

// CheckpointRecord is a checkpoint the coordinator knows of.
type CheckpointRecord struct {
	Step     uint64           `json:"step"`
	Epoch    uint64           `json:"epoch"`
	Location string           `json:"location"`
	Checksum string           `json:"checksum"`
	Bytes    int64            `json:"bytes,omitempty"`
	Cursors  []RankCursor     `json:"cursors,omitempty"`
	Status   CheckpointStatus `json:"status"`
	// Partials are the units partly consumed at Step (in a rank's hands or returned by a
	// handover), with their offsets: a rollback restores exactly these.
	Partials []UnitOffset `json:"partials,omitempty"`
	// AtMS is when the leader recorded it, Unix milliseconds.
	AtMS int64 `json:"at_ms"`
}

// UnitOffset is a unit and how many of its pairs were consumed.
type UnitOffset struct {
	Epoch  uint64 `json:"epoch"`
	Unit   uint32 `json:"unit"`
	Offset uint32 `json:"offset"`
}

// JobState is the job's life-cycle state.
type JobState string

const (
	JobNone      JobState = ""
	JobRunning   JobState = "running"
	JobStopped   JobState = "stopped"
	JobCompleted JobState = "completed"
)
