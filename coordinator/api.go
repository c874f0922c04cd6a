package coordinator

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/nats-io/nats.go"
)

// dispatch hands a request to its own goroutine (Raft batches concurrent applies; one goroutine
// per subscription would serialise them), bounded by MaxInflight.
func (s *Server) dispatch(l *leadership, m *nats.Msg) {
	if m.Reply == "" {
		return // nobody to answer
	}
	select {
	case l.sem <- struct{}{}:
	default:
		s.respond(m, "", nil, errorf(CodeUnavailable, "%d requests in flight", cap(l.sem)))
		return
	}
	go func() {
		defer func() { <-l.sem }()
		s.handle(l, m)
	}()
}

// handle checks a request's size, envelope, version and token, then runs its operation. Whatever
// is wrong with a request, it gets an error reply and the state is untouched.
func (s *Server) handle(l *leadership, m *nats.Msg) {
	start := time.Now()
	op, identity, ok := splitOp(strings.TrimPrefix(m.Subject, s.subjects.Op("")))
	var body any
	var err error
	if ok {
		body, err = s.serve(l, op, identity, m.Data)
	} else {
		err = errorf(CodeBadRequest, "unknown operation %q", op)
	}
	s.respond(m, op, body, err)
	s.metrics.observeRequest(op, err, time.Since(start))
}

// serve runs one request. identity is the worker nkey its subject carries ("" on the shared
// subjects); identity.go has the rules it is checked by.
func (s *Server) serve(l *leadership, op, identity string, data []byte) (any, error) {
	if len(data) > s.cfg.MaxRequestBytes {
		return nil, errorf(CodeTooLarge, "%d bytes, at most %d", len(data), s.cfg.MaxRequestBytes)
	}
	var req Request
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, errorf(CodeBadRequest, "not a request envelope: %v", err)
	}
	if req.V != APIVersion {
		return nil, errorf(CodeUnsupportedVersion, "version %d, this coordinator speaks %d", req.V, APIVersion)
	}
	if s.cfg.Token != "" && subtle.ConstantTimeCompare([]byte(req.Token), []byte(s.cfg.Token)) != 1 {
		return nil, errorf(CodeUnauthorized, "wrong or missing job token")
	}
	if err := s.checkIdentity(identity); err != nil {
		return nil, err
	}
	switch op {
	case OpJoin:
		return handleOp(req.Body, func(b *JoinRequest) (any, error) {
			b.Identity = identity // the subject's, never the client's word
			return s.opJoin(l, b)
		})
	case OpHeartbeat:
		return handleOp(req.Body, func(b *HeartbeatRequest) (any, error) {
			if err := s.actsFor(identity, b.WorkerID); err != nil {
				return nil, err
			}
			return s.opHeartbeat(l, b)
		})
	case OpLeave:
		return handleOp(req.Body, func(b *LeaveRequest) (any, error) {
			if err := s.actsFor(identity, b.WorkerID); err != nil {
				return nil, err
			}
			return s.apply(CmdLeave, Departure{WorkerID: b.WorkerID, Reason: "left"})
		})
	case OpLease:
		return handleOp(req.Body, func(b *LeaseRequest) (any, error) {
			if err := s.actsInRing(identity, true); err != nil {
				return nil, err
			}
			for _, a := range b.Asks {
				l.touch(a.WorkerID)
			}
			return s.apply(CmdLease, b)
		})
	case OpProgress:
		return handleOp(req.Body, func(b *ProgressRequest) (any, error) {
			if err := s.actsInRing(identity, true); err != nil {
				return nil, err
			}
			return s.opProgress(l, b)
		})
	case OpCheckpoint:
		return handleOp(req.Body, func(b *CheckpointRequest) (any, error) {
			if err := s.actsInRing(identity, false); err != nil {
				return nil, err
			}
			return s.apply(CmdCheckpoint, b)
		})
	case OpLostState:
		return handleOp(req.Body, func(b *LostStateRequest) (any, error) {
			if err := s.actsInRing(identity, true); err != nil {
				return nil, err
			}
			return s.apply(CmdLostState, b)
		})
	case OpStatus:
		return handleOp(req.Body, func(*StatusRequest) (any, error) { return s.Status(), nil })
	case OpSubmit:
		return handleOp(req.Body, func(b *SubmitRequest) (any, error) { return s.opSubmit(b) })
	case OpStop:
		return handleOp(req.Body, func(b *StopRequest) (any, error) { return s.apply(CmdStop, b) })
	case OpRollback:
		return handleOp(req.Body, func(b *RollbackRequest) (any, error) { return s.apply(CmdRollback, b) })
	case OpMembers:
		return handleOp(req.Body, func(*MembersRequest) (any, error) { return s.members() })
	case OpAddPeer:
		return handleOp(req.Body, func(b *AddPeerRequest) (any, error) { return s.opAddPeer(b) })
	case OpRemovePeer:
		return handleOp(req.Body, func(b *RemovePeerRequest) (any, error) { return s.opRemovePeer(b) })
	}
	return nil, errorf(CodeBadRequest, "unknown operation %q", op)
}

// handleOp decodes a body into T and runs fn. An absent body decodes as T's zero value.
func handleOp[T any](raw json.RawMessage, fn func(*T) (any, error)) (any, error) {
	var b T
	if len(bytes.TrimSpace(raw)) > 0 && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		if err := json.Unmarshal(raw, &b); err != nil {
			return nil, errorf(CodeBadRequest, "body: %v", err)
		}
	}
	return fn(&b)
}

// respond sends the reply envelope.
func (s *Server) respond(m *nats.Msg, op string, body any, err error) {
	rep := Reply{V: APIVersion}
	if err != nil {
		rep.Error = toAPIError(err)
	} else if body != nil {
		b, merr := json.Marshal(body)
		if merr != nil {
			rep.Error = errorf(CodeInternal, "encode reply: %v", merr)
		} else {
			rep.Body = b
		}
	}
	data, _ := json.Marshal(rep)
	if err := m.Respond(data); err != nil {
		s.log.Debug("reply lost", "op", op, "err", err)
	}
}

func (s *Server) opJoin(l *leadership, b *JoinRequest) (any, error) {
	v, err := s.apply(CmdJoin, b)
	if err != nil {
		return nil, err
	}
	rep := v.(*JoinReply)
	rep.HeartbeatIntervalMS = s.cfg.HeartbeatInterval.Milliseconds()
	rep.LeaseTTLMS = s.cfg.LeaseTTL.Milliseconds()
	l.touch(rep.WorkerID)
	return rep, nil
}

// opHeartbeat answers from the leader's FSM without a Raft entry: heartbeats are soft state.
func (s *Server) opHeartbeat(l *leadership, b *HeartbeatRequest) (any, error) {
	var rep HeartbeatReply
	var known bool
	s.fsm.Read(func(st *State) {
		if st.worker(b.WorkerID) == nil {
			return
		}
		known = true
		rep = HeartbeatReply{Generation: st.Generation, Rank: st.rank(b.WorkerID), JobState: st.JobState}
		rep.Stop = st.JobState != JobRunning
	})
	if !known {
		return nil, errorf(CodeUnknownWorker, "worker %d is not a member (declared dead or left): rejoin", b.WorkerID)
	}
	l.touch(b.WorkerID)
	return &rep, nil
}

func (s *Server) opProgress(l *leadership, b *ProgressRequest) (any, error) {
	v, err := s.apply(CmdProgress, b)
	if err != nil {
		return nil, err
	}
	var pairs uint64
	var step uint64
	s.fsm.Read(func(st *State) { pairs, step = st.ConsumedPairs(), st.Step })
	now := time.Now()
	l.mu.Lock()
	if !l.lastAt.IsZero() && pairs >= l.lastPairs {
		if dt := now.Sub(l.lastAt).Seconds(); dt > 0 {
			s.metrics.samplesPerSec.Set(float64(pairs-l.lastPairs) / dt)
		}
	}
	l.lastPairs, l.lastAt = pairs, now
	l.mu.Unlock()
	s.metrics.step.Set(float64(step))
	return v, nil
}

func (s *Server) opSubmit(b *SubmitRequest) (any, error) {
	spec := b.Spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if spec.Name != s.cfg.Job {
		return nil, errorf(CodeBadRequest, "job name %q: this coordinator serves job %q", spec.Name, s.cfg.Job)
	}
	if _, err := s.cfg.Units.EpochUnits(&spec, 0); err != nil {
		return nil, errorf(CodeBadRequest, "units of epoch 0: %v", err)
	}
	v, err := s.apply(CmdSubmit, SubmitRequest{Spec: spec})
	if err != nil {
		return nil, err
	}
	s.kickLeader()
	return v, nil
}

func (s *Server) members() (*MembersReply, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("%w: raft configuration: %v", ErrInternal, err)
	}
	_, leader := s.raft.LeaderWithID()
	rep := &MembersReply{Leader: string(leader), Term: s.term()}
	for _, srv := range f.Configuration().Servers {
		rep.Servers = append(rep.Servers, RaftMember{
			ID: string(srv.ID), Address: string(srv.Address), Suffrage: srv.Suffrage.String(), Leader: srv.ID == leader,
		})
	}
	return rep, nil
}

func (s *Server) opAddPeer(b *AddPeerRequest) (any, error) {
	if b.ID == "" || b.Address == "" || len(b.ID) > maxStringLen || len(b.Address) > maxStringLen {
		return nil, errorf(CodeBadRequest, "add-peer needs an id and an address")
	}
	if err := s.raft.AddVoter(raft.ServerID(b.ID), raft.ServerAddress(b.Address), 0, s.cfg.ApplyTimeout).Error(); err != nil {
		return nil, raftError("add voter", err)
	}
	s.log.Info("coordinator added", "id", b.ID, "address", b.Address)
	return s.members()
}

func (s *Server) opRemovePeer(b *RemovePeerRequest) (any, error) {
	if b.ID == "" {
		return nil, errorf(CodeBadRequest, "remove-peer needs an id")
	}
	if b.ID == s.cfg.nodeID() {
		// A leader that removed itself would stop leading before the change committed, and
		// could leave the newest log on a replica outside its own configuration: hand
		// leadership over first; the client's retry reaches the new leader.
		if voters(s.configuration()) < 2 {
			return nil, errorf(CodeConflict, "remove-peer %s: the only voter of the group", b.ID)
		}
		if err := s.TransferLeadership(); err != nil {
			return nil, fmt.Errorf("%w: remove-peer %s: %v", ErrUnavailable, b.ID, err)
		}
		return nil, fmt.Errorf("%w: remove-peer %s: leadership handed over first", ErrNotLeader, b.ID)
	}
	if err := s.raft.RemoveServer(raft.ServerID(b.ID), 0, s.cfg.ApplyTimeout).Error(); err != nil {
		return nil, raftError("remove server", err)
	}
	s.log.Info("coordinator removed", "id", b.ID)
	return s.members()
}

func raftError(what string, err error) error {
	if err == raft.ErrNotLeader || err == raft.ErrLeadershipLost {
		return fmt.Errorf("%w: %s: %v", ErrNotLeader, what, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrInternal, what, err)
}
