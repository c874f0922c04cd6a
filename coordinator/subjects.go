package coordinator

// The API's operations. A request for op X of job J is published on "vlp.J.coord.X".
const (
	OpJoin       = "join"
	OpHeartbeat  = "heartbeat"
	OpLeave      = "leave"
	OpLease      = "lease"
	OpProgress   = "progress"
	OpCheckpoint = "checkpoint"
	OpStatus     = "status"
	OpLostState  = "lost-state"

	// Operator operations live under "admin." so that NATS permissions can keep workers off them.
	OpSubmit     = "admin.submit"
	OpStop       = "admin.stop"
	OpRollback   = "admin.rollback"
	OpMembers    = "admin.members"
	OpAddPeer    = "admin.add-peer"
	OpRemovePeer = "admin.remove-peer"
)

// WorkerOps are the operations a worker calls; OperatorOps need the operator's NATS user.
var (
	WorkerOps   = []string{OpJoin, OpHeartbeat, OpLeave, OpLease, OpProgress, OpCheckpoint, OpStatus, OpLostState}
	OperatorOps = []string{OpSubmit, OpStop, OpRollback, OpMembers, OpAddPeer, OpRemovePeer}
)

// Subjects names the NATS subjects of one job. Every subject of job J starts with "vlp.J.".
type Subjects struct{ Job string }

// Prefix is "vlp.<job>".
func (s Subjects) Prefix() string { return "vlp." + s.Job }

// Op is the request subject of an operation: "vlp.<job>.coord.<op>".
func (s Subjects) Op(op string) string { return s.Prefix() + ".coord." + op }

// AllOps is the wildcard the leader serves: "vlp.<job>.coord.>".
func (s Subjects) AllOps() string { return s.Prefix() + ".coord.>" }

// Generation is where the leader announces every ring generation (GenerationInfo, JSON, in a
// Reply envelope), on change and again every few seconds.
func (s Subjects) Generation() string { return s.Prefix() + ".events.generation" }

// Events is the wildcard of everything the leader announces.
func (s Subjects) Events() string { return s.Prefix() + ".events.>" }

// Ring is the wildcard under which the all-reduce puts its subjects: "vlp.<job>.ring.>".
func (s Subjects) Ring() string { return s.Prefix() + ".ring.>" }
