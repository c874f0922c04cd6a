package coordinator

import (
	"slices"
	"strings"
)

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

// Peers is where every coordinator replica, leader or not, answers who it is and what it knows of
// the Raft group (PeerInfoRequest → PeerInfoReply): "vlp.<job>.peers.info". A replica starting on
// an empty data dir asks it before it bootstraps (membership.go). Outside "coord.>", so that the
// leader's API subscription does not answer it, and outside every worker permission.
func (s Subjects) Peers() string { return s.Prefix() + ".peers.info" }

// Ring is the wildcard under which the all-reduce puts its subjects: "vlp.<job>.ring.>".
func (s Subjects) Ring() string { return s.Prefix() + ".ring.>" }

// A worker that authenticates with its own nkey (NATSConfig.WorkerNkeysFile) calls the worker
// operations on subjects that carry its public key, "vlp.<job>.coord.w.<key>.<op>", and receives
// ring frames under "vlp.<job>.ring.<key>". Its NATS permissions allow exactly those subjects, so
// the server vouches for the key in the subject: the coordinator checks it against the worker
// the request names (identity.go).

// identityOps is the token that introduces an identity in a request subject.
const identityOps = "w"

// WorkerOp is the request subject of a worker operation called by the worker that authenticated
// as identity (a public user nkey): "vlp.<job>.coord.w.<identity>.<op>". With no identity it is
// Op(op).
func (s Subjects) WorkerOp(identity, op string) string {
	if identity == "" {
		return s.Op(op)
	}
	return s.Op(identityOps + "." + identity + "." + op)
}

// WorkerRing is the subject prefix under which the worker that authenticated as identity receives
// ring frames ("vlp.<job>.ring.<identity>"; allreduce.Member.Subject); with no identity, "" (the
// all-reduce's shared default, vlp.<job>.ring).
func (s Subjects) WorkerRing(identity string) string {
	if identity == "" {
		return ""
	}
	return s.Prefix() + ".ring." + identity
}

// splitOp splits what follows "vlp.<job>.coord." into the operation and the identity that the
// subject carries ("" for the shared subjects). ok is false for an identity subject that does not
// name a worker operation.
func splitOp(rest string) (op, identity string, ok bool) {
	after, found := strings.CutPrefix(rest, identityOps+".")
	if !found {
		return rest, "", true
	}
	identity, op, found = strings.Cut(after, ".")
	if !found || identity == "" || !slices.Contains(WorkerOps, op) {
		return rest, "", false
	}
	return op, identity, true
}
