package coordinator

import (
	"errors"
	"fmt"
)

// Errors a caller can test with errors.Is. They are grouped by when they happen.
//
// Configuration, when a Server or Client is built:
var (
	// ErrInvalidConfig wraps every configuration error; the message names the field and its bound.
	ErrInvalidConfig = errors.New("coordinator: invalid config")
	// ErrInvalidSpec wraps every job-spec validation error; the message names the field.
	ErrInvalidSpec = errors.New("coordinator: invalid job spec")
)

// Request errors, carried by an API error reply and returned by the Client. None of them changed the
// coordinator's state.
var (
	// ErrBadRequest: the request could not be decoded or a field is out of range.
	ErrBadRequest = errors.New("coordinator: bad request")
	// ErrTooLarge: the request is larger than the server's MaxRequestBytes.
	ErrTooLarge = errors.New("coordinator: request too large")
	// ErrUnsupportedVersion: the envelope's version is not one this server speaks.
	ErrUnsupportedVersion = errors.New("coordinator: unsupported message version")
	// ErrUnauthorized: the job token is missing or wrong, or the worker nkey a request's subject
	// carries is not registered (revoked, or never added to NATSConfig.WorkerNkeysFile).
	ErrUnauthorized = errors.New("coordinator: unauthorized")
	// ErrForbidden: the request acts for a worker that authenticated as someone else: a worker
	// that joined with its own nkey is acted for only through that nkey's subjects (identity.go).
	ErrForbidden = errors.New("coordinator: forbidden")
	// ErrNotLeader: the replica that answered lost leadership; the Client retries.
	ErrNotLeader = errors.New("coordinator: not the leader")
	// ErrNoJob: no job has been submitted yet.
	ErrNoJob = errors.New("coordinator: no job")
	// ErrJobExists: a different job was already submitted to this group.
	ErrJobExists = errors.New("coordinator: a job already exists")
	// ErrJobNotRunning: the job is stopped or complete.
	ErrJobNotRunning = errors.New("coordinator: job is not running")
	// ErrUnknownWorker: the worker id is not a live member (it left or was declared dead): rejoin.
	ErrUnknownWorker = errors.New("coordinator: unknown worker")
	// ErrStaleGeneration: the request names a generation that is no longer current.
	ErrStaleGeneration = errors.New("coordinator: stale generation")
	// ErrJobFull: the job already has max_workers members.
	ErrJobFull = errors.New("coordinator: job is full")
	// ErrHandoverPending: a member died and the survivors have not yet reported the cursors of the
	// last committed step (see ProgressRequest.Handover).
	ErrHandoverPending = errors.New("coordinator: handover pending")
	// ErrConflict: the request contradicts the committed state (a unit not leased to that worker,
	// a step going backwards, an unknown checkpoint, …).
	ErrConflict = errors.New("coordinator: conflict")
	// ErrUnavailable: no leader answered before the deadline.
	ErrUnavailable = errors.New("coordinator: unavailable")
	// ErrInternal: the server failed for a reason of its own (Raft shut down, …).
	ErrInternal = errors.New("coordinator: internal error")
)

// Error codes as they travel in APIError.Code.
const (
	CodeBadRequest         = "bad_request"
	CodeTooLarge           = "too_large"
	CodeUnsupportedVersion = "unsupported_version"
	CodeUnauthorized       = "unauthorized"
	CodeForbidden          = "forbidden"
	CodeNotLeader          = "not_leader"
	CodeNoJob              = "no_job"
	CodeJobExists          = "job_exists"
	CodeJobNotRunning      = "job_not_running"
	CodeUnknownWorker      = "unknown_worker"
	CodeStaleGeneration    = "stale_generation"
	CodeJobFull            = "job_full"
	CodeHandoverPending    = "handover_pending"
	CodeConflict           = "conflict"
	CodeUnavailable        = "unavailable"
	CodeInternal           = "internal"
)

var codeErrors = map[string]error{
	CodeBadRequest:         ErrBadRequest,
	CodeTooLarge:           ErrTooLarge,
	CodeUnsupportedVersion: ErrUnsupportedVersion,
	CodeUnauthorized:       ErrUnauthorized,
	CodeForbidden:          ErrForbidden,
	CodeNotLeader:          ErrNotLeader,
	CodeNoJob:              ErrNoJob,
	CodeJobExists:          ErrJobExists,
	CodeJobNotRunning:      ErrJobNotRunning,
	CodeUnknownWorker:      ErrUnknownWorker,
	CodeStaleGeneration:    ErrStaleGeneration,
	CodeJobFull:            ErrJobFull,
	CodeHandoverPending:    ErrHandoverPending,
	CodeConflict:           ErrConflict,
	CodeUnavailable:        ErrUnavailable,
	CodeInternal:           ErrInternal,
}

// APIError is the error of an API reply: a stable code and a human message.
// errors.Is(apiErr, ErrXxx) holds for the sentinel of its code.
type APIError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return "coordinator: " + e.Code
	}
	return fmt.Sprintf("coordinator: %s: %s", e.Code, e.Message)
}

// Unwrap returns the sentinel of the code, or nil for a code this version does not know.
func (e *APIError) Unwrap() error { return codeErrors[e.Code] }

// errorf builds an APIError with a code.
func errorf(code, format string, args ...any) *APIError {
	return &APIError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// toAPIError turns any error into an APIError, keeping the code of a wrapped sentinel.
func toAPIError(err error) *APIError {
	if err == nil {
		return nil
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	for code, sentinel := range codeErrors {
		if errors.Is(err, sentinel) {
			return &APIError{Code: code, Message: err.Error()}
		}
	}
	if errors.Is(err, ErrInvalidSpec) {
		return &APIError{Code: CodeBadRequest, Message: err.Error()}
	}
	return &APIError{Code: CodeInternal, Message: err.Error()}
}
