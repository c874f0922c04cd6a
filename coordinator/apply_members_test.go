package coordinator

import (
	"errors"
	"testing"
)

// TestFSMLastLeaveKeepsCompletedJob: the final progress report of a run completes the job; the
// members leaving afterwards must not roll it back to running (nothing is left to train).
func TestFSMLastLeaveKeepsCompletedJob(t *testing.T) {
	spec := JobSpec{Name: "done", GlobalBatch: 32, Epochs: 1, MaxWorkers: 4, Units: UnitsSpec{Pairs: 32, PerUnit: 16}}.WithDefaults()
	tests := []struct {
		name     string
		complete bool
		want     JobState
		wantStep uint64
	}{
		{"completed stays completed", true, JobCompleted, 1},
		{"running rolls back", false, JobRunning, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t)
			d.must(CmdSubmit, SubmitRequest{Spec: spec})
			a := d.must(CmdJoin, JoinRequest{Instance: "a"}).(*JoinReply)
			b := d.must(CmdJoin, JoinRequest{Instance: "b"}).(*JoinReply)
			gen := b.Generation.Number
			grants := d.must(CmdLease, LeaseRequest{Generation: gen, Asks: []LeaseAsk{{WorkerID: a.WorkerID, Count: 1}, {WorkerID: b.WorkerID, Count: 1}}}).(*LeaseReply).Grants
			req := ProgressRequest{Generation: gen, Step: 1}
			for rank, g := range grants {
				u := g.Units[0]
				off := uint32(8)
				if tc.complete {
					off = 16
					req.Done = append(req.Done, DoneUnit{Epoch: u.Epoch, Unit: u.Unit, Step: 1})
				}
				req.Cursors = append(req.Cursors, RankCursor{Rank: rank, WorkerID: g.WorkerID, Epoch: u.Epoch, Unit: int64(u.Unit), Offset: off})
			}
			d.must(CmdProgress, req)
			var st JobState
			d.read(func(s *State) { st = s.JobState })
			if tc.complete && st != JobCompleted {
				t.Fatalf("after every unit was reported done the job is %s", st)
			}
			d.must(CmdLeave, Departure{WorkerID: a.WorkerID})
			d.must(CmdLeave, Departure{WorkerID: b.WorkerID})
			var step uint64
			d.read(func(s *State) { st, step = s.JobState, s.Step })
			if st != tc.want || step != tc.wantStep {
				t.Fatalf("after the last member left: job %s at step %d, want %s at step %d", st, step, tc.want, tc.wantStep)
			}
		})
	}
}

// TestFSMJoinKeepsServersAdjacent: a worker enters the ring right after the
// last member on its NATS server; one naming no server, or a new one, goes to
// the end. Departures keep the order of the rest.
func TestFSMJoinKeepsServersAdjacent(t *testing.T) {
	spec := JobSpec{Name: "topo", GlobalBatch: 32, Epochs: 1, MaxWorkers: 8, Units: UnitsSpec{Pairs: 64, PerUnit: 16}}.WithDefaults()
	d := newDriver(t)
	d.must(CmdSubmit, SubmitRequest{Spec: spec})
	ids := map[string]uint64{}
	var last *JoinReply
	for _, j := range []struct{ name, server string }{{"a", "s1"}, {"b", "s2"}, {"c", "s1"}, {"d", ""}, {"e", "s2"}, {"f", "s3"}, {"g", "s1"}} {
		last = d.must(CmdJoin, JoinRequest{Instance: j.name, Name: j.name, Server: j.server}).(*JoinReply)
		ids[j.name] = last.WorkerID
	}
	order := func(g GenerationInfo) string {
		var s string
		for r, m := range g.Members {
			if m.Rank != r {
				t.Fatalf("member %s has rank %d at position %d", m.Name, m.Rank, r)
			}
			s += m.Name + "@" + m.Server + " "
		}
		return s
	}
	if got, want := order(last.Generation), "a@s1 c@s1 g@s1 b@s2 e@s2 d@ f@s3 "; got != want {
		t.Fatalf("ring order %q, want %q", got, want)
	}
	d.must(CmdLeave, Departure{WorkerID: ids["c"]})
	h := d.must(CmdJoin, JoinRequest{Instance: "h", Name: "h", Server: "s2"}).(*JoinReply)
	if got, want := order(h.Generation), "a@s1 g@s1 b@s2 e@s2 h@s2 d@ f@s3 "; got != want {
		t.Fatalf("after c left and h joined: ring order %q, want %q", got, want)
	}
	if h.Rank != 4 {
		t.Fatalf("h was given rank %d, want 4", h.Rank)
	}
}

// TestFSMLostStateGoesBackToCheckpoint: after a report cleared the restore point, members that
// hold no state (the holders left) report it: the job goes back to its latest usable checkpoint
// in a new generation; a second report of the same loss in that generation, or one of an older
// generation, changes nothing.
func TestFSMLostStateGoesBackToCheckpoint(t *testing.T) {
	spec := JobSpec{Name: "lost", GlobalBatch: 32, Epochs: 1, MaxWorkers: 4, Units: UnitsSpec{Pairs: 64, PerUnit: 16}}.WithDefaults()
	d := newDriver(t)
	d.must(CmdSubmit, SubmitRequest{Spec: spec})
	a := d.must(CmdJoin, JoinRequest{Instance: "a"}).(*JoinReply)
	gen := a.Generation.Number
	grants := d.must(CmdLease, LeaseRequest{Generation: gen, Asks: []LeaseAsk{{WorkerID: a.WorkerID, Count: 1}}}).(*LeaseReply).Grants
	u := grants[0].Units[0]
	d.must(CmdProgress, ProgressRequest{Generation: gen, Step: 2, Cursors: []RankCursor{{Rank: 0, WorkerID: a.WorkerID, Epoch: u.Epoch, Unit: int64(u.Unit), Offset: 8}}})
	b := d.must(CmdJoin, JoinRequest{Instance: "b"}).(*JoinReply) // joins, never synced
	d.must(CmdLeave, Departure{WorkerID: a.WorkerID})             // the only holder leaves
	var cur uint64
	var restore *Restore
	d.read(func(s *State) { cur, restore = s.Generation, s.Restore })
	if restore != nil {
		t.Fatalf("a member is left, so the departure alone rolls nothing back (restore %+v)", restore)
	}
	if _, err := d.do(CmdLostState, LostStateRequest{Generation: b.Generation.Number}); !errors.Is(err, ErrStaleGeneration) {
		t.Fatalf("a loss reported in an older generation: err %v, want stale", err)
	}
	rep := d.must(CmdLostState, LostStateRequest{Generation: cur}).(*LostStateReply)
	if !rep.RolledBack || rep.Restore == nil || rep.Restore.Step != 0 || rep.Generation <= cur {
		t.Fatalf("lost state: %+v, want a rollback to the start (no checkpoint) in a new generation", rep)
	}
	var step uint64
	var pending bool
	d.read(func(s *State) { step, pending = s.Step, s.unit(u.Epoch, u.Unit).State == UnitPending })
	if step != 0 || !pending {
		t.Fatalf("after the rollback the job is at step %d, unit pending %v: want step 0 and the unit back", step, pending)
	}
	again := d.must(CmdLostState, LostStateRequest{Generation: rep.Generation}).(*LostStateReply)
	if again.RolledBack || again.Generation != rep.Generation || again.Restore == nil || again.Restore.Step != 0 {
		t.Fatalf("the same loss again: %+v, want the standing restore point and no new generation", again)
	}
}
