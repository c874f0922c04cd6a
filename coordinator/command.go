package coordinator

import (
	"encoding/json"
	"fmt"
)

// CommandVersion is the version of the Raft log entry format. Apply refuses (with an error result,
// leaving the state alone) an entry of a version it does not know: upgrade every replica before a
// newer one leads.
const CommandVersion = 1

// CommandType names what a log entry does.
type CommandType string

// The log entry types. Each one's body is the struct named beside it.
const (
	CmdSubmit     CommandType = "submit"     // SubmitRequest
	CmdStop       CommandType = "stop"       // StopRequest
	CmdOpenEpoch  CommandType = "open_epoch" // OpenEpoch
	CmdJoin       CommandType = "join"       // JoinRequest
	CmdLeave      CommandType = "leave"      // Departure
	CmdDead       CommandType = "dead"       // Departure
	CmdLease      CommandType = "lease"      // LeaseRequest
	CmdProgress   CommandType = "progress"   // ProgressRequest
	CmdCheckpoint CommandType = "checkpoint" // CheckpointRequest
	CmdRollback   CommandType = "rollback"   // RollbackRequest
	CmdLostState  CommandType = "lost_state" // LostStateRequest
)

// Command is one Raft log entry: a typed, versioned body and the leader's clock. The leader stamps
// AtMS (Unix milliseconds) when it proposes the entry, so Apply never reads a clock and every
// replica computes the same state from the same log.
type Command struct {
	V    int             `json:"v"`
	Type CommandType     `json:"type"`
	AtMS int64           `json:"at_ms"`
	Body json.RawMessage `json:"body"`
}

// OpenEpoch opens an epoch: its units' pair counts, run-length encoded, as the leader's UnitSource
// computed them.
type OpenEpoch struct {
	Epoch uint64 `json:"epoch"`
	Runs  []Run  `json:"runs"`
}

// Departure removes a worker: it left (CmdLeave) or its lease expired (CmdDead).
type Departure struct {
	WorkerID uint64 `json:"worker_id"`
	Reason   string `json:"reason,omitempty"`
}

// EncodeCommand builds the bytes of a log entry.
func EncodeCommand(typ CommandType, atMS int64, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("coordinator: encode %s: %w", typ, err)
	}
	return json.Marshal(Command{V: CommandVersion, Type: typ, AtMS: atMS, Body: b})
}

// DecodeCommand parses the bytes of a log entry, checking its version.
func DecodeCommand(data []byte) (*Command, error) {
	var c Command
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%w: log entry: %v", ErrBadRequest, err)
	}
	if c.V != CommandVersion {
		return nil, fmt.Errorf("%w: log entry version %d, this replica applies %d", ErrUnsupportedVersion, c.V, CommandVersion)
	}
	return &c, nil
}
