package allreduce

import (
	"errors"
	"fmt"
)

// Errors a collective returns. Every error of this package matches one of them
// with errors.Is; after any of them the Ring is finished (see Ring).
var (
	// ErrPeerLost: a member of the generation died, cut its connection, left,
	// or stopped answering heartbeats. The error is a *PeerError naming the rank.
	ErrPeerLost = errors.New("allreduce: peer lost")
	// ErrDeadline: the call's deadline passed before the collective finished.
	ErrDeadline = errors.New("allreduce: deadline exceeded")
	// ErrStale: a newer generation of the job exists; this one is over.
	ErrStale = errors.New("allreduce: stale generation")
	// ErrAborted: another rank abandoned the collective (its deadline passed or
	// its caller cancelled), or this caller cancelled it.
	ErrAborted = errors.New("allreduce: aborted")
	// ErrMismatch: the ranks disagree on the call: buffer length, wire type or
	// the kind of collective.
	ErrMismatch = errors.New("allreduce: ranks disagree")
	// ErrClosed: the Ring or its Transport was closed.
	ErrClosed = errors.New("allreduce: closed")
	// ErrAuth: a TCP peer failed the job-token handshake.
	ErrAuth = errors.New("allreduce: authentication failed")
	// ErrConfig: a Config, Generation or option is invalid; the message names
	// the field and its bound.
	ErrConfig = errors.New("allreduce: invalid configuration")
)

// PeerError reports which rank was lost and why. It matches ErrPeerLost.
type PeerError struct {
	Rank   int    // rank in the generation
	Member string // the member's ID, when known
	Reason string // "connection closed", "no heartbeat for 5s", "left after op 12", …
	Err    error  // the underlying error, if any
}

func (e *PeerError) Error() string {
	s := fmt.Sprintf("allreduce: peer lost: rank %d", e.Rank)
	if e.Member != "" {
		s += fmt.Sprintf(" (%s)", e.Member)
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is makes errors.Is(err, ErrPeerLost) true.
func (e *PeerError) Is(target error) bool { return target == ErrPeerLost }

// Unwrap exposes the underlying cause.
func (e *PeerError) Unwrap() error { return e.Err }

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
}
