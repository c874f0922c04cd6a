package coordinator

import (
	"bytes"
	"errors"
	"testing"

	"github.com/hashicorp/raft"
)

// TestFSMDeterminism: the same log gives the same state, byte for byte, whether applied straight
// through, replayed on a fresh FSM, or restored from a snapshot taken half-way and then replayed.
func TestFSMDeterminism(t *testing.T) {
	s := newSim(t, 7, simSpec())
	s.run(true)
	want := s.d.state()

	replay := func(f *FSM, entries [][]byte, from uint64) {
		for i, e := range entries {
			f.Apply(&raft.Log{Index: from + uint64(i) + 1, Type: raft.LogCommand, Data: e})
		}
	}
	f := NewFSM()
	replay(f, s.d.log, 0)
	got, _ := f.MarshalState()
	if !bytes.Equal(got, want) {
		t.Fatalf("replay gives %d state bytes that differ from the original %d", len(got), len(want))
	}

	half := len(s.d.log) / 2
	f1 := NewFSM()
	replay(f1, s.d.log[:half], 0)
	snap, err := f1.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	f2 := NewFSM()
	if err := f2.Restore(sink); err != nil {
		t.Fatal(err)
	}
	mid1, _ := f1.MarshalState()
	mid2, _ := f2.MarshalState()
	if !bytes.Equal(mid1, mid2) {
		t.Fatal("restored state differs from the snapshotted one")
	}
	replay(f2, s.d.log[half:], uint64(half))
	got2, _ := f2.MarshalState()
	if !bytes.Equal(got2, want) {
		t.Fatal("snapshot + replay of the rest differs from the straight run")
	}
	t.Logf("%d entries, %d state bytes, identical three ways", len(s.d.log), len(want))
}

type memSink struct{ bytes.Buffer }

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Cancel() error { return nil }
func (m *memSink) Close() error  { return nil }

// TestFSMSnapshotRoundTrip covers every part of the state: a job with workers, leases, orphans,
// checkpoints and open epochs survives Snapshot → Restore unchanged.
func TestFSMSnapshotRoundTrip(t *testing.T) {
	d := newDriver(t)
	spec := simSpec()
	d.must(CmdSubmit, SubmitRequest{Spec: spec})
	a := d.must(CmdJoin, JoinRequest{Name: "a", Instance: "ia", Addr: "10.0.0.1:9000", Device: "cuda:0"}).(*JoinReply)
	b := d.must(CmdJoin, JoinRequest{Name: "b", Instance: "ib"}).(*JoinReply)
	gen := b.Generation.Number
	lease := d.must(CmdLease, LeaseRequest{Generation: gen, RequestID: "r1", Asks: []LeaseAsk{{WorkerID: a.WorkerID, Count: 2}, {WorkerID: b.WorkerID, Count: 2}}}).(*LeaseReply)
	ua, ub := lease.Grants[0].Units[0], lease.Grants[1].Units[0]
	d.must(CmdProgress, ProgressRequest{Generation: gen, Step: 1, Checkpoint: true, Cursors: []RankCursor{
		{Rank: 0, WorkerID: a.WorkerID, Epoch: ua.Epoch, Unit: int64(ua.Unit), Offset: 6},
		{Rank: 1, WorkerID: b.WorkerID, Epoch: ub.Epoch, Unit: int64(ub.Unit), Offset: 6}}})
	d.must(CmdCheckpoint, CheckpointRequest{Step: 1, Location: "/ck/1", Checksum: "sha256:1", Status: CheckpointDurable})
	d.must(CmdDead, Departure{WorkerID: a.WorkerID, Reason: "test"})

	var st State
	d.read(func(s *State) { st = *s })
	if !st.Handover || len(st.Checkpoints) != 1 || len(st.Workers) != 1 || len(st.Epochs) == 0 {
		t.Fatalf("the state lacks what the round trip should cover: %+v", st)
	}
	before := d.state()
	snap, _ := d.f.Snapshot()
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	f := NewFSM()
	if err := f.Restore(sink); err != nil {
		t.Fatal(err)
	}
	after, _ := f.MarshalState()
	if !bytes.Equal(before, after) {
		t.Fatalf("round trip changed the state:\n%s\n%s", before, after)
	}
	if err := f.RestoreBytes([]byte(`{"version":99}`)); err == nil {
		t.Fatal("a snapshot of an unknown version was restored")
	}
}

// TestFSMRejectsLeaveStateAlone: every refused command leaves the state byte-identical.
func TestFSMRejectsLeaveStateAlone(t *testing.T) {
	d := newDriver(t)
	if _, err := d.do(CmdJoin, JoinRequest{Instance: "x"}); !errors.Is(err, ErrNoJob) {
		t.Fatalf("join before submit: %v, want ErrNoJob", err)
	}
	spec := simSpec()
	spec.MaxWorkers = 2
	d.must(CmdSubmit, SubmitRequest{Spec: spec})
	w := d.must(CmdJoin, JoinRequest{Name: "a", Instance: "ia"}).(*JoinReply)
	gen := w.Generation.Number
	lease := d.must(CmdLease, LeaseRequest{Generation: gen, Asks: []LeaseAsk{{WorkerID: w.WorkerID, Count: 1}}}).(*LeaseReply)
	u := lease.Grants[0].Units[0]
	cur := func(unit int64, off uint32) []RankCursor {
		return []RankCursor{{Rank: 0, WorkerID: w.WorkerID, Epoch: u.Epoch, Unit: unit, Offset: off}}
	}
	d.must(CmdProgress, ProgressRequest{Generation: gen, Step: 2, Cursors: cur(int64(u.Unit), 4)})

	other := spec
	other.Seed = 99
	cases := []struct {
		name string
		typ  CommandType
		body any
		want error
	}{
		{"another job", CmdSubmit, SubmitRequest{Spec: other}, ErrJobExists},
		{"invalid spec", CmdSubmit, SubmitRequest{Spec: JobSpec{Name: "bad name"}}, ErrBadRequest},
		{"join without instance", CmdJoin, JoinRequest{Name: "b"}, ErrBadRequest},
		{"lease, stale generation", CmdLease, LeaseRequest{Generation: gen - 1, Asks: []LeaseAsk{{WorkerID: w.WorkerID, Count: 1}}}, ErrStaleGeneration},
		{"lease, unknown worker", CmdLease, LeaseRequest{Generation: gen, Asks: []LeaseAsk{{WorkerID: 42, Count: 1}}}, ErrUnknownWorker},
		{"lease, zero count", CmdLease, LeaseRequest{Generation: gen, Asks: []LeaseAsk{{WorkerID: w.WorkerID}}}, ErrBadRequest},
		{"lease, no asks", CmdLease, LeaseRequest{Generation: gen}, ErrBadRequest},
		{"progress backwards", CmdProgress, ProgressRequest{Generation: gen, Step: 1, Cursors: cur(int64(u.Unit), 4)}, ErrConflict},
		{"progress, offset past the unit", CmdProgress, ProgressRequest{Generation: gen, Step: 3, Cursors: cur(int64(u.Unit), u.Pairs+1)}, ErrBadRequest},
		{"progress, offset going back", CmdProgress, ProgressRequest{Generation: gen, Step: 3, Cursors: cur(int64(u.Unit), 1)}, ErrConflict},
		{"progress, unit not leased", CmdProgress, ProgressRequest{Generation: gen, Step: 3, Cursors: cur(int64(u.Unit)+1, 1)}, ErrConflict},
		{"progress, no such unit", CmdProgress, ProgressRequest{Generation: gen, Step: 3, Cursors: cur(1<<20, 1)}, ErrConflict},
		{"progress, duplicate ranks", CmdProgress, ProgressRequest{Generation: gen, Step: 3, Cursors: append(cur(int64(u.Unit), 5), cur(int64(u.Unit), 5)...)}, ErrBadRequest},
		{"progress, future generation", CmdProgress, ProgressRequest{Generation: gen + 5, Step: 3, Cursors: cur(int64(u.Unit), 5)}, ErrConflict},
		{"progress, done after step", CmdProgress, ProgressRequest{Generation: gen, Step: 3, Cursors: cur(-1, 0), Done: []DoneUnit{{Epoch: u.Epoch, Unit: u.Unit, Step: 9}}}, ErrBadRequest},
		{"checkpoint ahead of the reported step", CmdCheckpoint, CheckpointRequest{Step: 5, Location: "l", Checksum: "c", Status: CheckpointDurable}, ErrConflict},
		{"checkpoint, bad status", CmdCheckpoint, CheckpointRequest{Step: 2, Location: "l", Checksum: "c", Status: "great"}, ErrBadRequest},
		{"checkpoint, corrupt unknown", CmdCheckpoint, CheckpointRequest{Step: 2, Status: CheckpointCorrupt}, ErrConflict},
		{"rollback to nowhere", CmdRollback, RollbackRequest{ToStep: 7}, ErrConflict},
		{"leave, unknown worker", CmdLeave, Departure{WorkerID: 77}, ErrUnknownWorker},
		{"open epoch out of order", CmdOpenEpoch, OpenEpoch{Epoch: 9, Runs: []Run{{Pairs: 1, Count: 1}}}, ErrConflict},
		{"unknown type", CommandType("explode"), Empty{}, ErrBadRequest},
		{"body of the wrong shape", CmdJoin, []int{1, 2}, ErrBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := d.state()
			_, err := d.do(tc.typ, tc.body)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if after := d.state(); !bytes.Equal(before, after) {
				t.Fatalf("a refused command changed the state")
			}
		})
	}
	// A log entry of another version or not JSON at all is refused too.
	before := d.state()
	for _, data := range [][]byte{[]byte(`{"v":2,"type":"join","body":{}}`), []byte("\x00garbage")} {
		d.idx++
		res := d.f.Apply(&raft.Log{Index: d.idx, Type: raft.LogCommand, Data: data}).(*ApplyResult)
		if res.Err == nil {
			t.Fatalf("entry %q applied", data)
		}
	}
	if !bytes.Equal(before, d.state()) {
		t.Fatal("a bad log entry changed the state")
	}
}

// TestFSMLeaseIdempotentAndDeterministic: a retried lease returns the same grant; batched asks are
// served in order.
func TestFSMLeaseIdempotentAndDeterministic(t *testing.T) {
	d := newDriver(t)
	d.must(CmdSubmit, SubmitRequest{Spec: simSpec()})
	a := d.must(CmdJoin, JoinRequest{Instance: "a"}).(*JoinReply)
	b := d.must(CmdJoin, JoinRequest{Instance: "b"}).(*JoinReply)
	gen := b.Generation.Number
	req := LeaseRequest{Generation: gen, RequestID: "once", Asks: []LeaseAsk{{WorkerID: a.WorkerID, Count: 2}, {WorkerID: b.WorkerID, Count: 2}}}
	first := d.must(CmdLease, req).(*LeaseReply)
	again := d.must(CmdLease, req).(*LeaseReply)
	if len(first.Grants) != 2 || first.Grants[0].Units[0].Unit != 0 || first.Grants[0].Units[1].Unit != 1 || first.Grants[1].Units[0].Unit != 2 {
		t.Fatalf("asks not served lowest unit first, in order: %+v", first.Grants)
	}
	for i := range first.Grants {
		for j := range first.Grants[i].Units {
			if first.Grants[i].Units[j] != again.Grants[i].Units[j] {
				t.Fatalf("retry got %+v, first got %+v", again.Grants, first.Grants)
			}
		}
	}
	var leased int
	d.read(func(s *State) { leased = s.unitCounts().Leased })
	if leased != 4 {
		t.Fatalf("%d units leased after a retried lease of 4", leased)
	}
	// A retried join returns the same membership.
	again2 := d.must(CmdJoin, JoinRequest{Instance: "a"}).(*JoinReply)
	if again2.WorkerID != a.WorkerID {
		t.Fatalf("retried join got worker %d, first %d", again2.WorkerID, a.WorkerID)
	}
}

// TestFSMCorruptCheckpointFallsBack: when the checkpoint the ring must restore is reported
// corrupt, the job falls back to the one before it.
func TestFSMCorruptCheckpointFallsBack(t *testing.T) {
	d := newDriver(t)
	d.must(CmdSubmit, SubmitRequest{Spec: simSpec()})
	w := d.must(CmdJoin, JoinRequest{Instance: "a"}).(*JoinReply)
	gen := w.Generation.Number
	u := d.must(CmdLease, LeaseRequest{Generation: gen, Asks: []LeaseAsk{{WorkerID: w.WorkerID, Count: 1}}}).(*LeaseReply).Grants[0].Units[0]
	for _, st := range []struct {
		step uint64
		off  uint32
	}{{3, 3}, {6, 6}} {
		d.must(CmdProgress, ProgressRequest{Generation: gen, Step: st.step, Checkpoint: true, Cursors: []RankCursor{{WorkerID: w.WorkerID, Epoch: u.Epoch, Unit: int64(u.Unit), Offset: st.off}}})
		d.must(CmdCheckpoint, CheckpointRequest{Step: st.step, Location: "ck", Checksum: "x", Status: CheckpointDurable})
	}
	d.must(CmdLeave, Departure{WorkerID: w.WorkerID})
	var r *Restore
	d.read(func(s *State) { r = s.Restore.clone() })
	if r == nil || r.Step != 6 {
		t.Fatalf("after the last worker left, restore %+v, want step 6", r)
	}
	rep := d.must(CmdCheckpoint, CheckpointRequest{Step: 6, Status: CheckpointCorrupt}).(*CheckpointReply)
	if rep.Restore == nil || rep.Restore.Step != 3 || rep.Latest == nil || rep.Latest.Step != 3 {
		t.Fatalf("after marking 6 corrupt: %+v", rep)
	}
	var off uint32
	d.read(func(s *State) { off = s.unit(u.Epoch, u.Unit).Offset })
	if off != 3 {
		t.Fatalf("unit offset %d after falling back to step 3, want 3", off)
	}
}
