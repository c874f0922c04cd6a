package coordinator

// Who may act for a worker. A worker that authenticates with its own nkey calls the worker
// operations on subjects that carry its public key (Subjects.WorkerOp); its NATS permissions
// (WorkerNkeyPermissions) let it publish on no other worker's, so the key in the subject is the
// caller's identity, vouched for by the NATS server. The join records it with the member
// (Worker.Identity, in the Raft log, so a new leader knows it too), and from then on:
//
//   - heartbeat and leave act for the worker they name only when the request carries that
//     worker's identity: another worker cannot renew its lease or make it leave, and the shared
//     worker credential cannot act for a worker that joined with its own key;
//   - lease, progress and lost-state (rank 0's reports, which name every rank) need a caller that
//     holds a live member: an identity with none is told to rejoin. A checkpoint record may come
//     from a rank 0 that departed while it wrote (the FSM checks the record against the step
//     announced), so it needs a registered key only;
//   - on the shared subjects those reports need at least one member that joined on them;
//   - a retried join of an instance must carry the identity it joined with.
//
// A member can still report false progress, as it can send wrong gradients: the ring and the
// coordinator authenticate members, they do not audit what members compute.

// actsFor checks that a request carrying identity may act for worker id (heartbeat, leave). An
// unknown worker passes: the operation itself answers ErrUnknownWorker.
func (s *Server) actsFor(identity string, id uint64) error {
	var owner string
	var known bool
	s.fsm.Read(func(st *State) {
		if w := st.worker(id); w != nil {
			owner, known = w.Identity, true
		}
	})
	switch {
	case !known || owner == identity:
		return nil
	case identity == "":
		return errorf(CodeForbidden, "worker %d joined with its own nkey %s: only that credential may act for it", id, shortKey(owner))
	default:
		return errorf(CodeForbidden, "this request's nkey %s is not worker %d's", shortKey(identity), id)
	}
}

// actsInRing checks that a rank's report (lease, progress, checkpoint, lost-state) comes from a
// live member: one that joined with identity (unless needMember is false), or, on the shared
// subjects, one that joined on them.
func (s *Server) actsInRing(identity string, needMember bool) error {
	var members, shared, own int
	s.fsm.Read(func(st *State) {
		for _, w := range st.Workers {
			members++
			switch w.Identity {
			case "":
				shared++
			case identity:
				own++
			}
		}
	})
	switch {
	case identity != "" && own == 0 && needMember:
		return errorf(CodeUnknownWorker, "no live member joined with nkey %s (declared dead, left or revoked): rejoin", shortKey(identity))
	case identity == "" && members > 0 && shared == 0:
		return errorf(CodeForbidden, "every member joined with its own nkey: requests on the shared worker subjects act for none of them")
	}
	return nil
}

// checkIdentity refuses a request whose subject carries an nkey that is not registered.
func (s *Server) checkIdentity(identity string) error {
	if identity == "" || s.knownIdentity(identity) {
		return nil
	}
	return errorf(CodeUnauthorized, "worker nkey %s is not registered with the coordinator (--nats-worker-nkeys): revoked, or never added", shortKey(identity))
}
