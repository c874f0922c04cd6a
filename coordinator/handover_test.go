package coordinator

import (
	"testing"
)

// TestFSMRepeatedHandover: survivors report the handover of step 1; the unit of the departed
// member goes back to pending, is leased to a newcomer, and the newcomer departs before any step.
// The ring, still at step 1, must be able to report the handover of step 1 again: its cursors name
// the first departed member for a unit that has moved since, at the offset the first report set.
// (Found by the chaos run in integration/: refused with "is leased to worker N, not M" or "is not
// leased", the ring's every generation ended in the handover, for ever.)
func TestFSMRepeatedHandover(t *testing.T) {
	d := newDriver(t)
	d.must(CmdSubmit, SubmitRequest{Spec: simSpec()})
	a := d.must(CmdJoin, JoinRequest{Name: "a", Instance: "ia"}).(*JoinReply)
	b := d.must(CmdJoin, JoinRequest{Name: "b", Instance: "ib"}).(*JoinReply)
	gen := b.Generation.Number
	lease := d.must(CmdLease, LeaseRequest{Generation: gen, Asks: []LeaseAsk{{WorkerID: a.WorkerID, Count: 1}, {WorkerID: b.WorkerID, Count: 1}}}).(*LeaseReply)
	ua, ub := lease.Grants[0].Units[0], lease.Grants[1].Units[0]
	cursors := []RankCursor{
		{Rank: 0, WorkerID: a.WorkerID, Epoch: ua.Epoch, Unit: int64(ua.Unit), Offset: 4},
		{Rank: 1, WorkerID: b.WorkerID, Epoch: ub.Epoch, Unit: int64(ub.Unit), Offset: 4},
	}
	d.must(CmdProgress, ProgressRequest{Generation: gen, Step: 1, Cursors: cursors})

	d.must(CmdLeave, Departure{WorkerID: a.WorkerID})
	d.must(CmdProgress, ProgressRequest{Generation: gen, Step: 1, Handover: true, Cursors: cursors})
	c := d.must(CmdJoin, JoinRequest{Name: "c", Instance: "ic"}).(*JoinReply)
	got := d.must(CmdLease, LeaseRequest{Generation: c.Generation.Number, Asks: []LeaseAsk{{WorkerID: c.WorkerID, Count: 1}}}).(*LeaseReply)
	if u := got.Grants[0].Units[0]; u.Unit != ua.Unit || u.Offset != 4 {
		t.Fatalf("the newcomer leased %+v, want unit %d from offset 4", u, ua.Unit)
	}
	d.must(CmdLeave, Departure{WorkerID: c.WorkerID})

	// The same ring reports the same step's handover again.
	d.must(CmdProgress, ProgressRequest{Generation: gen, Step: 1, Handover: true, Cursors: cursors})
	d.read(func(s *State) {
		if s.Handover {
			t.Fatal("the handover is still pending")
		}
		u := s.unit(ua.Epoch, ua.Unit)
		if u.State != UnitPending || u.Offset != 4 {
			t.Fatalf("unit %d after the second handover: %s at offset %d, want pending at 4", ua.Unit, u.State, u.Offset)
		}
	})
	// An offset that does not match what the first report set is still refused.
	bad := append([]RankCursor(nil), cursors...)
	bad[0].Offset = 6
	d.must(CmdLeave, Departure{WorkerID: d.must(CmdJoin, JoinRequest{Name: "e", Instance: "ie"}).(*JoinReply).WorkerID})
	if _, err := d.do(CmdProgress, ProgressRequest{Generation: gen, Step: 1, Handover: true, Cursors: bad}); err == nil {
		t.Fatal("a repeated handover that moves a pending unit's offset was accepted")
	}
}
