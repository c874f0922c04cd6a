package coordinator

import "testing"

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
