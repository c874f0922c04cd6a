package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/e2evlp/vlp/allreduce"
	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/internal/testlog"
	"github.com/nats-io/nats.go"
)

const (
	testJob   = "test"
	testToken = "secret"
	testDim   = 32
)

// testLogger is the workers' log of a test: printed when it fails (internal/testlog).
func testLogger(t testing.TB) *slog.Logger { return testlog.New(t, "the workers' log") }

// testSpec is a small job: pairs in units of perUnit, a global batch.
func testSpec(pairs int64, perUnit, batch, minWorkers int) coordinator.JobSpec {
	return coordinator.JobSpec{
		Name: testJob, Model: "linear", GlobalBatch: batch, MinWorkers: minWorkers,
		CheckpointEvery: 5, ProgressEvery: 3, Seed: 7, Epochs: 1,
		Hyper: coordinator.HyperParams{LR: 0.05, ClipNorm: 1},
		Units: coordinator.UnitsSpec{Pairs: pairs, PerUnit: perUnit},
	}
}

// cluster is a coordinator group (real Raft, real NATS) with a submitted job.
type cluster struct {
	t    *testing.T
	c    *coordinator.Cluster
	spec coordinator.JobSpec
	log  *slog.Logger // the workers'
}

func newCluster(t *testing.T, spec coordinator.JobSpec, opts ...coordinator.ClusterOption) *cluster {
	t.Helper()
	return newClusterN(t, 1, spec, opts...)
}

func newClusterN(t *testing.T, replicas int, spec coordinator.JobSpec, opts ...coordinator.ClusterOption) *cluster {
	t.Helper()
	c := coordinator.MakeCluster(t, replicas, append([]coordinator.ClusterOption{coordinator.WithNATS(), coordinator.WithJob(testJob, testToken)}, opts...)...)
	cl := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := cl.Submit(ctx, spec.WithDefaults()); err != nil {
		t.Fatalf("submit: %v", err)
	}
	return &cluster{t: t, c: c, spec: spec, log: testLogger(t)}
}

// ledger collects the committed steps reported by workers.
type ledger struct {
	mu    sync.Mutex
	steps map[uint64]map[string]Commit // step → worker name → record
}

func (l *ledger) hook(name string) func(Commit) {
	return func(c Commit) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.steps == nil {
			l.steps = map[uint64]map[string]Commit{}
		}
		if l.steps[c.Step] == nil {
			l.steps[c.Step] = map[string]Commit{}
		}
		l.steps[c.Step][name] = c
	}
}

// consumed returns, per pair id, how many committed steps consumed it,
// using the records of the trusted workers (survivors): every step 1..last
// must be recorded by at least one of them, and records of one step agree.
func (l *ledger) consumed(t *testing.T, trusted []string, last uint64, perUnit uint32) map[uint64]int {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	count := map[uint64]int{}
	for s := uint64(1); s <= last; s++ {
		var rec *Commit
		for _, name := range trusted {
			if c, ok := l.steps[s][name]; ok {
				if rec != nil && segmentsOf(*rec) != segmentsOf(c) {
					t.Fatalf("step %d: workers disagree on what was consumed:\n%v\n%v", s, rec.Ranks, c.Ranks)
				}
				c := c
				rec = &c
			}
		}
		if rec == nil {
			t.Fatalf("step %d: no surviving worker recorded it", s)
		}
		for _, r := range rec.Ranks {
			for _, p := range pairsOf(r.Segments) {
				count[PairID(p, perUnit)]++
			}
		}
	}
	return count
}

// node is one in-process worker with its own NATS connection.
type node struct {
	name    string
	w       *Worker
	learner *LinearLearner
	model   Learner
	nc      *nats.Conn
	cancel  context.CancelFunc
	done    chan struct{}
	res     Result
	err     error
}

type nodeOpts struct {
	maxSteps uint64
	ckptDir  string
	ledger   *ledger
	compute  time.Duration // per pair
	metrics  *Metrics
	learner  func() Learner // default: a LinearLearner
	// recordDelay holds every durable checkpoint this long before it is
	// recorded with the coordinator.
	recordDelay time.Duration
	server      string // the NATS server name the worker reports at join
	servers     *serverBook
	// wrap, when set, stands between the worker and its coordinator client.
	wrap func(Coordinator) Coordinator
	// rings, when set, makes the worker's rings (default NATS) and returns
	// the TCP address it advertises.
	rings func(nc *nats.Conn, rcfg allreduce.Config) (RingMaker, string)
}

// serverBook remembers the server every worker id joined with (a worker
// that rejoins gets a new id).
type serverBook struct {
	mu   sync.Mutex
	byID map[uint64]string
}

func (b *serverBook) of(id uint64) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.byID[id]
}

// joinRecorder is the real client, with every join's id written down.
type joinRecorder struct {
	*coordinator.Client
	book *serverBook
}

func (j joinRecorder) Join(ctx context.Context, req coordinator.JoinRequest) (*coordinator.JoinReply, error) {
	rep, err := j.Client.Join(ctx, req)
	if err == nil {
		j.book.mu.Lock()
		if j.book.byID == nil {
			j.book.byID = map[uint64]string{}
		}
		j.book.byID[rep.WorkerID] = req.Server
		j.book.mu.Unlock()
	}
	return rep, err
}

func (c *cluster) start(name string, o nodeOpts) *node {
	c.t.Helper()
	cl, err := coordinator.Dial(c.c.NATSURL(), testJob, testToken, []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)},
		coordinator.WithWatchPoll(200*time.Millisecond))
	if err != nil {
		c.t.Fatalf("dial: %v", err)
	}
	c.t.Cleanup(cl.Close)
	cfg := DefaultConfig()
	cfg.Name = name
	cfg.Logger = c.log.With("node", name)
	cfg.GenerationTimeout = 20 * time.Second
	cfg.RejoinAfter = 4 * time.Second
	cfg.StepTimeout = 20 * time.Second
	cfg.RequestTimeout = 5 * time.Second
	cfg.EpochWait = time.Second
	cfg.MaxSteps = o.maxSteps
	cfg.Server = o.server
	cfg.CheckpointDir = o.ckptDir
	if o.learner == nil {
		cfg.BucketBytes = 48 // several buckets per step even for the linear model
	}
	cfg.Metrics = o.metrics
	if o.ledger != nil {
		cfg.OnCommit = o.ledger.hook(name)
	}
	rcfg := allreduce.Config{PeerTimeout: 3 * time.Second, HeartbeatInterval: 200 * time.Millisecond, Timeout: 20 * time.Second, Logger: cfg.Logger}
	l := NewLinearLearner(testDim, uint32(c.spec.Units.PerUnit), LinearHyper{LR: c.spec.Hyper.LR, ClipNorm: c.spec.Hyper.ClipNorm, Compute: o.compute})
	var model Learner = l
	if o.learner != nil {
		model = o.learner()
	}
	var coord Coordinator = cl
	if o.servers != nil {
		coord = joinRecorder{cl, o.servers}
	}
	if o.wrap != nil {
		coord = o.wrap(coord)
	}
	var rings RingMaker = NATSRings(cl.Conn(), rcfg, cfg.Logger)
	if o.rings != nil {
		rings, cfg.Addr = o.rings(cl.Conn(), rcfg)
	}
	w, err := New(cfg, coord, rings, model)
	if err != nil {
		c.t.Fatalf("new worker: %v", err)
	}
	if d := o.recordDelay; d > 0 {
		w.beforeRecord = func() { time.Sleep(d) }
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{name: name, w: w, learner: l, model: model, nc: cl.Conn(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		n.res, n.err = w.Run(ctx)
	}()
	c.t.Cleanup(func() {
		cancel()
		<-n.done
	})
	return n
}

// wait waits for the node's Run to return.
func (n *node) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-n.done:
	case <-time.After(d):
		t.Fatalf("%s did not finish within %v", n.name, d)
	}
}

// kill ends the node as SIGKILL would: its connection drops, it never leaves.
func (n *node) kill() {
	n.nc.Close()
	n.cancel()
}

func waitAll(t *testing.T, d time.Duration, nodes ...*node) {
	t.Helper()
	for _, n := range nodes {
		n.wait(t, d)
		if n.err != nil && !errors.Is(n.err, context.Canceled) {
			t.Fatalf("%s: %v", n.name, n.err)
		}
	}
}

func sortedKeys(m map[uint64]int) []uint64 {
	out := make([]uint64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// maxStep is the highest step any worker recorded.
func (l *ledger) maxStep() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := uint64(0)
	for s := range l.steps {
		m = max(m, s)
	}
	return m
}

// waitStep waits until some worker committed step s.
func (l *ledger) waitStep(t *testing.T, s uint64, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for l.maxStep() < s {
		if time.Now().After(deadline) {
			t.Fatalf("step %d not reached within %v (at %d)", s, d, l.maxStep())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkExactlyOnce asserts every pair of an epoch of `pairs` pairs was
// consumed exactly once.
func checkExactlyOnce(t *testing.T, count map[uint64]int, pairs uint64) {
	t.Helper()
	for id, n := range count {
		if n != 1 {
			t.Errorf("pair %d consumed %d times", id, n)
		}
		if id >= pairs {
			t.Errorf("pair %d is outside the epoch", id)
		}
	}
	if uint64(len(count)) != pairs {
		var missing []uint64
		for id := uint64(0); id < pairs && len(missing) < 40; id++ {
			if count[id] == 0 {
				missing = append(missing, id)
			}
		}
		t.Errorf("%d of %d pairs consumed; missing (first 40): %v", len(count), pairs, missing)
	}
}

// waitWorker waits until the named worker committed a step.
func (l *ledger) waitWorker(t *testing.T, name string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		l.mu.Lock()
		found := false
		for _, m := range l.steps {
			if _, ok := m[name]; ok {
				found = true
				break
			}
		}
		l.mu.Unlock()
		if found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s committed no step within %v", name, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// segmentsOf prints which pairs each rank consumed in a step (worker ids
// differ between a run and its resumption; the pairs must not).
func segmentsOf(c Commit) string {
	var s string
	for r, rc := range c.Ranks {
		s += fmt.Sprintf("rank %d: %v; ", r, rc.Segments)
	}
	return s
}

// firstStep is the lowest step the named worker committed (0: none).
func (l *ledger) firstStep(name string) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := uint64(0)
	for s, m := range l.steps {
		if _, ok := m[name]; ok && (first == 0 || s < first) {
			first = s
		}
	}
	return first
}
