package coordinator

import (
	"errors"
	"testing"
)

// TestFSMReplaceJob: a job that never trained (its workers failed and left) or that the operator
// stopped can be replaced by another spec; a job with members cannot.
func TestFSMReplaceJob(t *testing.T) {
	d := newDriver(t)
	spec := simSpec()
	d.must(CmdSubmit, SubmitRequest{Spec: spec})
	w := d.must(CmdJoin, JoinRequest{Name: "a", Instance: "ia"}).(*JoinReply)
	other := spec
	other.Seed = 99
	if _, err := d.do(CmdSubmit, SubmitRequest{Spec: other}); !errors.Is(err, ErrJobExists) {
		t.Fatalf("replace a job with a member: %v, want ErrJobExists", err)
	}
	d.must(CmdLeave, Departure{WorkerID: w.WorkerID})
	st := d.must(CmdSubmit, SubmitRequest{Spec: other}).(JobStatus)
	if st.Job.Seed != 99 || st.State != JobRunning || st.Step != 0 {
		t.Fatalf("replaced job: seed %d, state %s, step %d", st.Job.Seed, st.State, st.Step)
	}
	d.must(CmdStop, StopRequest{Reason: "test"})
	if st := d.must(CmdSubmit, SubmitRequest{Spec: other}).(JobStatus); st.State != JobRunning || st.Job.Seed != 99 {
		t.Fatalf("the same spec on a stopped job: state %s, seed %d; want it resumed", st.State, st.Job.Seed)
	}
	d.must(CmdStop, StopRequest{Reason: "test"})
	third := other
	third.Seed = 7
	if st := d.must(CmdSubmit, SubmitRequest{Spec: third}).(JobStatus); st.Job.Seed != 7 || st.State != JobRunning {
		t.Fatalf("replaced stopped job: seed %d, state %s", st.Job.Seed, st.State)
	}
}
