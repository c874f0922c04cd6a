package coordinator

import (
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"testing"

	"github.com/hashicorp/raft"
)

// fsmDriver applies commands to an FSM directly, as Raft would, keeping the log it built.
type fsmDriver struct {
	t   testing.TB
	f   *FSM
	idx uint64
	at  int64
	log [][]byte
}

func newDriver(t testing.TB) *fsmDriver { return &fsmDriver{t: t, f: NewFSM(), at: 1_700_000_000_000} }

func (d *fsmDriver) do(typ CommandType, body any) (any, error) {
	d.t.Helper()
	d.at += 7
	data, err := EncodeCommand(typ, d.at, body)
	if err != nil {
		d.t.Fatal(err)
	}
	d.idx++
	d.log = append(d.log, data)
	res := d.f.Apply(&raft.Log{Index: d.idx, Type: raft.LogCommand, Data: data}).(*ApplyResult)
	if res.Err != nil {
		return nil, res.Err
	}
	d.openEpochs()
	return res.Value, nil
}

func (d *fsmDriver) must(typ CommandType, body any) any {
	d.t.Helper()
	v, err := d.do(typ, body)
	if err != nil {
		d.t.Fatalf("%s: %v", typ, err)
	}
	return v
}

// openEpochs does what the leader's loop does.
func (d *fsmDriver) openEpochs() {
	for {
		var spec JobSpec
		var next uint64
		var need bool
		d.f.Read(func(s *State) {
			if next, need = s.needsEpoch(); need {
				spec = *s.Job
			}
		})
		if !need {
			return
		}
		sizes, err := SpecUnits{}.EpochUnits(&spec, next)
		if err != nil {
			d.t.Fatal(err)
		}
		d.must(CmdOpenEpoch, OpenEpoch{Epoch: next, Runs: encodeRuns(sizes)})
	}
}

func (d *fsmDriver) state() []byte {
	d.t.Helper()
	b, err := d.f.MarshalState()
	if err != nil {
		d.t.Fatal(err)
	}
	return b
}

func (d *fsmDriver) read(fn func(s *State)) { d.f.Read(fn) }

// pair is one image-text pair of an epoch.
type pair struct {
	epoch uint64
	unit  uint32
	idx   uint32
}

type simWorker struct {
	id    uint64
	queue []UnitLease // head is the unit in progress; Offset is how far it got
}

// sim drives the FSM the way a ring of workers would: leases, steps, progress reports,
// checkpoints, and random deaths, joins and total losses with their handovers and rollbacks. It
// records which pairs each committed step consumed in the surviving timeline.
type sim struct {
	t         testing.TB
	d         *fsmDriver
	rng       *rand.Rand
	spec      JobSpec
	members   []*simWorker
	step      uint64
	timeline  map[uint64][]pair
	doneSince []DoneUnit
	nextInst  int
	leaseSeq  int
	events    map[string]int
}

func newSim(t testing.TB, seed int64, spec JobSpec) *sim {
	s := &sim{t: t, d: newDriver(t), rng: rand.New(rand.NewSource(seed)), spec: spec, timeline: map[uint64][]pair{}, events: map[string]int{}}
	s.d.must(CmdSubmit, SubmitRequest{Spec: spec})
	return s
}

func (s *sim) gen() uint64 {
	var g uint64
	s.d.read(func(st *State) { g = st.Generation })
	return g
}

func (s *sim) join() {
	s.nextInst++
	rep := s.d.must(CmdJoin, JoinRequest{Name: fmt.Sprintf("w%d", s.nextInst), Instance: fmt.Sprintf("inst-%d", s.nextInst)}).(*JoinReply)
	s.members = append(s.members, &simWorker{id: rep.WorkerID})
	s.events["join"]++
}

func (s *sim) cursors() []RankCursor {
	cs := make([]RankCursor, len(s.members))
	for r, w := range s.members {
		cs[r] = RankCursor{Rank: r, WorkerID: w.id, Unit: -1}
		if len(w.queue) > 0 {
			h := w.queue[0]
			cs[r] = RankCursor{Rank: r, WorkerID: w.id, Epoch: h.Epoch, Unit: int64(h.Unit), Offset: h.Offset}
		}
	}
	return cs
}

func (s *sim) report(handover bool, gen uint64) {
	s.d.must(CmdProgress, ProgressRequest{Generation: gen, Step: s.step, Handover: handover, Cursors: s.cursors(), Done: s.doneSince})
	s.doneSince = nil
}

func (s *sim) lease(w *simWorker) (complete bool) {
	s.leaseSeq++
	v, err := s.d.do(CmdLease, LeaseRequest{Generation: s.gen(), RequestID: fmt.Sprintf("l%d", s.leaseSeq), Asks: []LeaseAsk{{WorkerID: w.id, Count: 1 + s.rng.Intn(3)}}})
	if err != nil {
		s.t.Fatalf("lease: %v", err)
	}
	rep := v.(*LeaseReply)
	w.queue = append(w.queue, rep.Grants[0].Units...)
	return rep.Complete
}

// stepOnce makes every rank consume its share; it returns false when nothing was left to consume.
func (s *sim) stepOnce() bool {
	per := max(1, s.spec.GlobalBatch/len(s.members))
	var consumed []pair
	var done []DoneUnit
	for _, w := range s.members {
		need := per
		for need > 0 {
			if len(w.queue) == 0 {
				if s.lease(w) || len(w.queue) == 0 {
					break
				}
			}
			h := &w.queue[0]
			k := min(uint32(need), h.Pairs-h.Offset)
			for i := uint32(0); i < k; i++ {
				consumed = append(consumed, pair{h.Epoch, h.Unit, h.Offset + i})
			}
			h.Offset += k
			need -= int(k)
			if h.Offset == h.Pairs {
				done = append(done, DoneUnit{Epoch: h.Epoch, Unit: h.Unit, Step: s.step + 1})
				w.queue = w.queue[1:]
			}
		}
	}
	if len(consumed) == 0 {
		return false
	}
	s.step++
	s.timeline[s.step] = consumed
	s.doneSince = append(s.doneSince, done...)
	return true
}

// kill removes a member; the survivors hand over the last committed step's cursors.
func (s *sim) kill(r int) {
	oldGen := s.gen()
	cursors := s.cursors()
	s.d.must(CmdDead, Departure{WorkerID: s.members[r].id, Reason: "sim"})
	s.events["death"]++
	if len(s.members) == 1 {
		s.members = nil
		s.afterRollback()
		return
	}
	s.d.must(CmdProgress, ProgressRequest{Generation: oldGen, Step: s.step, Handover: true, Cursors: cursors, Done: s.doneSince})
	s.doneSince = nil
	s.members = append(s.members[:r], s.members[r+1:]...)
}

// killAll loses every member at once: the job rolls back to its latest checkpoint.
func (s *sim) killAll() {
	for len(s.members) > 0 {
		s.d.must(CmdDead, Departure{WorkerID: s.members[0].id, Reason: "sim: everything died"})
		s.members = s.members[1:]
	}
	s.events["total loss"]++
	s.afterRollback()
}

// afterRollback drops the abandoned timeline and rejoins fresh workers.
func (s *sim) afterRollback() {
	var restore *Restore
	s.d.read(func(st *State) { restore = st.Restore.clone() })
	if restore == nil {
		s.t.Fatal("no restore point after losing every worker")
	}
	for step := range s.timeline {
		if step > restore.Step {
			delete(s.timeline, step)
		}
	}
	s.step = restore.Step
	s.doneSince = nil
	for i := 0; i < 1+s.rng.Intn(3); i++ {
		s.join()
	}
}

func (s *sim) complete() bool {
	var c bool
	s.d.read(func(st *State) { c = st.JobState == JobCompleted })
	return c
}

// run drives the job to completion, with random faults.
func (s *sim) run(faults bool) {
	for i := 0; i < 1+s.rng.Intn(3); i++ {
		s.join()
	}
	for iter := 0; iter < 100000 && !s.complete(); iter++ {
		if faults {
			switch x := s.rng.Float64(); {
			case x < 0.02 && len(s.members) > 0:
				s.kill(s.rng.Intn(len(s.members)))
			case x < 0.04 && len(s.members) < 6:
				s.join()
			case x < 0.045:
				s.killAll()
			}
		}
		if len(s.members) == 0 {
			s.join()
		}
		progressed := s.stepOnce()
		if !progressed || s.step%uint64(s.spec.ProgressEvery) == 0 {
			s.report(false, s.gen())
		}
		if progressed && s.step%uint64(s.spec.CheckpointEvery) == 0 {
			s.d.must(CmdProgress, ProgressRequest{Generation: s.gen(), Step: s.step, Cursors: s.cursors(), Done: s.doneSince, Checkpoint: true})
			s.doneSince = nil
			s.d.must(CmdCheckpoint, CheckpointRequest{Step: s.step, Location: fmt.Sprintf("ckpt/%d", s.step), Checksum: "sha256:x", Cursors: s.cursors(), Status: CheckpointDurable})
			s.events["checkpoint"]++
		}
	}
	if !s.complete() {
		s.t.Fatalf("job did not complete")
	}
}

// checkExactlyOnce verifies that every pair of every epoch was consumed by exactly one committed
// step of the surviving timeline.
func (s *sim) checkExactlyOnce(sizes []uint32) {
	s.t.Helper()
	count := map[pair]int{}
	for _, ps := range s.timeline {
		for _, p := range ps {
			count[p]++
		}
	}
	total := 0
	for e := 0; e < s.spec.Epochs; e++ {
		for u, n := range sizes {
			for i := uint32(0); i < n; i++ {
				p := pair{uint64(e), uint32(u), i}
				if count[p] != 1 {
					s.t.Fatalf("pair %+v consumed %d times", p, count[p])
				}
				total++
			}
		}
	}
	if len(count) != total {
		s.t.Fatalf("%d distinct pairs consumed, the epochs have %d", len(count), total)
	}
}

func simSpec() JobSpec {
	return JobSpec{
		Name: "sim", GlobalBatch: 12, Epochs: 3, CheckpointEvery: 7, ProgressEvery: 3, CheckpointRetain: 2,
		MaxWorkers: 8, Units: UnitsSpec{Pairs: 403, PerUnit: 16},
	}.WithDefaults()
}

// TestSimExactlyOnce: whatever dies, joins or rolls back, every pair of every epoch is consumed
// by exactly one committed step (DESIGN §4.1), as the FSM's unit accounting sees it.
func TestSimExactlyOnce(t *testing.T) {
	irregular := simSpec()
	irregular.Units = UnitsSpec{Sizes: []uint32{5, 40, 1, 17, 33, 2, 9, 64, 3, 21, 7, 11}}
	irregular.GlobalBatch = 20
	for _, spec := range []JobSpec{simSpec(), irregular} {
		runSims(t, spec)
	}
}

func runSims(t *testing.T, spec JobSpec) {
	sizes, _ := SpecUnits{}.EpochUnits(&spec, 0)
	for seed := int64(1); seed <= int64(simSeeds()); seed++ {
		s := newSim(t, seed, spec)
		s.run(true)
		s.checkExactlyOnce(sizes)
		if seed == 1 {
			t.Logf("seed 1: %d steps, %d log entries, events %v", s.step, len(s.d.log), s.events)
		}
	}
}

// simSeeds is 20 by default; VLP_SIM_SEEDS raises it for a longer search.
func simSeeds() int {
	if n, err := strconv.Atoi(os.Getenv("VLP_SIM_SEEDS")); err == nil && n > 0 {
		return n
	}
	return 20
}
