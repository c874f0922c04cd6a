package coordinator

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// FSM is the coordinator's replicated state machine. Raft calls Apply for every committed entry,
// in log order, on one goroutine; Snapshot on that same goroutine; Restore when it installs a
// snapshot. Readers (the API handlers, metrics) go through Read, which holds a read lock.
//
// Apply is deterministic: it reads nothing but the entry and the state (the leader stamped the
// time into the entry), iterates no map, and validates a command completely before it changes
// anything, so a rejected command leaves the state exactly as it was.
type FSM struct {
	mu    sync.RWMutex
	state *State
	// applied is the index of the last entry applied (not part of the snapshot bytes).
	applied uint64
}

var _ raft.FSM = (*FSM)(nil)

// NewFSM returns an FSM holding the empty state.
func NewFSM() *FSM { return &FSM{state: newState()} }

// ApplyResult is what Apply returns for a command entry: the reply body, or the reason the
// command was refused.
type ApplyResult struct {
	Value any
	Err   *APIError
	// GenerationChanged is set when the command started a new ring generation.
	GenerationChanged bool
}

// Apply implements raft.FSM.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	return f.apply(l.Index, l.Data)
}

func (f *FSM) apply(index uint64, data []byte) *ApplyResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = index
	cmd, err := DecodeCommand(data)
	if err != nil {
		return &ApplyResult{Err: toAPIError(err)}
	}
	s := f.state
	gen := s.Generation
	var v any
	switch cmd.Type {
	case CmdSubmit:
		var b SubmitRequest
		if err = decodeBody(cmd.Body, &b); err == nil {
			v, err = s.applySubmit(cmd.AtMS, &b)
		}
	case CmdStop:
		var b StopRequest
		if err = decodeBody(cmd.Body, &b); err == nil {
			v, err = s.applyStop(&b)
		}
	case CmdOpenEpoch:
		var b OpenEpoch
		if err = decodeBody(cmd.Body, &b); err == nil {
			v, err = s.applyOpenEpoch(&b)
		}
	case CmdJoin:
		var b JoinRequest
		if err = decodeBody(cmd.Body, &b); err == nil {
			v, err = s.applyJoin(cmd.AtMS, &b)
		}
	case CmdLeave, CmdDead:
		var b Departure
		if err = decodeBody(cmd.Body, &b); err == nil {
			v, err = s.applyDeparture(cmd.AtMS, &b)
		}
	case CmdLease:
		var b LeaseRequest
		if err = decodeBody(cmd.Body, &b); err == nil {
			v, err = s.applyLease(&b)
		}
	case CmdProgress:
		var b ProgressRequest
		if err = decodeBody(cmd.Body, &b); err == nil {
			v, err = s.applyProgress(cmd.AtMS, &b)
		}
	case CmdCheckpoint:
		var b CheckpointRequest
		if err = decodeBody(cmd.Body, &b); err == nil {
			v, err = s.applyCheckpoint(cmd.AtMS, &b)
		}
	case CmdRollback:
		var b RollbackRequest
		if err = decodeBody(cmd.Body, &b); err == nil {
			v, err = s.applyRollback(cmd.AtMS, &b)
		}
	case CmdLostState:
		var b LostStateRequest
		if err = decodeBody(cmd.Body, &b); err == nil {
			v, err = s.applyLostState(cmd.AtMS, &b)
		}
	default:
		err = fmt.Errorf("%w: unknown command type %q", ErrBadRequest, cmd.Type)
	}
	if err != nil {
		return &ApplyResult{Err: toAPIError(err)}
	}
	return &ApplyResult{Value: v, GenerationChanged: s.Generation != gen}
}

func decodeBody(body json.RawMessage, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	return nil
}

// Read calls fn with the state under the read lock. fn must not keep references into the state.
func (f *FSM) Read(fn func(s *State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.state)
}

// AppliedIndex is the index of the last log entry applied.
func (f *FSM) AppliedIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.applied
}

// MarshalState returns the snapshot bytes of the current state: the same log gives the same
// bytes on every replica.
func (f *FSM) MarshalState() ([]byte, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return json.Marshal(f.state)
}

// Snapshot implements raft.FSM. The state is serialised here, on the FSM goroutine, so Persist
// (which runs concurrently with later Applies) only writes bytes.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	b, err := f.MarshalState()
	if err != nil {
		return nil, fmt.Errorf("coordinator: snapshot: %w", err)
	}
	return &fsmSnapshot{data: b}, nil
}

// Restore implements raft.FSM: it replaces the whole state.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("coordinator: restore: %w", err)
	}
	return f.RestoreBytes(data)
}

// RestoreBytes replaces the state with the one MarshalState produced.
func (f *FSM) RestoreBytes(data []byte) error {
	s := newState()
	if err := json.Unmarshal(data, s); err != nil {
		return fmt.Errorf("coordinator: restore: %w", err)
	}
	if s.Version != StateVersion {
		return fmt.Errorf("coordinator: restore: snapshot version %d, this replica reads %d", s.Version, StateVersion)
	}
	f.mu.Lock()
	f.state = s
	f.mu.Unlock()
	return nil
}

type fsmSnapshot struct{ data []byte }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s.data); err != nil {
		sink.Cancel()
		return fmt.Errorf("coordinator: snapshot persist: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
