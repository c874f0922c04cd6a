package coordinator

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// memberGroup runs replicas as `vlp coordinator start --peers … --discover` does: real Raft over
// TCP, bbolt stores, embedded NATS servers routed to each other. Replica i always has the same
// id, ports and data dir; start(i, n) gives it the peer list and routes of a group of n (the
// first n replicas), as the chart renders them for n replicas.
type memberGroup struct {
	t                                *testing.T
	dir                              string
	raftPorts, natsPorts, routePorts []int
	timeouts                         RaftTimeouts

	mu      sync.Mutex
	servers []*Server // nil: not running
}

func (g *memberGroup) server(i int) *Server {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.servers[i]
}

func (g *memberGroup) set(i int, s *Server) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.servers[i] = s
}

// index is the replica number of s.
func (g *memberGroup) index(s *Server) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Index(g.servers, s)
}

// all is every replica's server, nil where it does not run.
func (g *memberGroup) all() []*Server {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.servers)
}

func newMemberGroup(t *testing.T, max int) *memberGroup {
	g := &memberGroup{t: t, dir: t.TempDir(), servers: make([]*Server, max), timeouts: TestRaftTimeouts(true)}
	for range max {
		g.raftPorts = append(g.raftPorts, freePort(t))
		g.natsPorts = append(g.natsPorts, freePort(t))
		g.routePorts = append(g.routePorts, freePort(t))
	}
	t.Cleanup(func() {
		for _, s := range g.all() {
			if s != nil {
				s.Close()
			}
		}
	})
	return g
}

func (g *memberGroup) id(i int) string { return fmt.Sprintf("node%d", i) }

func (g *memberGroup) config(i, n int) Config {
	cfg := DefaultConfig()
	cfg.NodeID, cfg.Job, cfg.Token = g.id(i), "test", "secret"
	cfg.DataDir = filepath.Join(g.dir, g.id(i))
	cfg.RaftAddr = fmt.Sprintf("127.0.0.1:%d", g.raftPorts[i])
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.HeartbeatInterval, cfg.LeaseTTL = time.Second, time.Minute // the test's workers never heartbeat
	cfg.Raft = g.timeouts
	cfg.Logger = TestLogger().With("node", g.id(i))
	cfg.Discover = true
	for j := range n {
		cfg.Peers = append(cfg.Peers, Peer{ID: g.id(j), Address: fmt.Sprintf("127.0.0.1:%d", g.raftPorts[j])})
		cfg.NATS.Embedded.Routes = append(cfg.NATS.Embedded.Routes, fmt.Sprintf("nats-route://127.0.0.1:%d", g.routePorts[j]))
	}
	cfg.NATS.Embedded.Host, cfg.NATS.Embedded.Port, cfg.NATS.Embedded.ClusterPort = "127.0.0.1", g.natsPorts[i], g.routePorts[i]
	return cfg
}

// start starts replica i with the flags of a group of n, on its data dir.
func (g *memberGroup) start(i, n int) *Server {
	g.t.Helper()
	for try := 0; try < 50; try++ { // a stopped replica's ports may take a moment to free
		s, err := NewServer(g.config(i, n))
		if err == nil {
			g.set(i, s)
			return s
		}
		if try == 49 {
			g.t.Fatalf("start %s: %v", g.id(i), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// stop stops replica i as SIGTERM does (Leave, then Close); kill as a crash does.
func (g *memberGroup) stop(i int) time.Duration {
	g.t.Helper()
	// vlp coordinator's --leave-timeout is 5 s; under -race on two loaded cores a leadership
	// hand-over and the new leader's first subscription have taken longer.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	t0 := time.Now()
	if err := g.server(i).Leave(ctx, true); err != nil {
		g.t.Errorf("%s: leave: %v", g.id(i), err)
	}
	took := time.Since(t0)
	g.kill(i)
	return took
}

func (g *memberGroup) kill(i int) {
	g.server(i).Close()
	g.set(i, nil)
}

// live are the running replicas.
func (g *memberGroup) live() []*Server {
	var out []*Server
	for _, s := range g.all() {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// leader waits for a running replica to lead.
func (g *memberGroup) leader() *Server {
	g.t.Helper()
	var l *Server
	g.waitFor(15*time.Second, "a leader", func() bool {
		l = nil
		for _, s := range g.live() {
			if s.IsLeader() {
				l = s
			}
		}
		return l != nil
	})
	return l
}

func (g *memberGroup) waitFor(d time.Duration, what string, cond func() bool) time.Duration {
	g.t.Helper()
	t0 := time.Now()
	for !cond() {
		if time.Since(t0) > d {
			g.t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(t0)
}

// votersOf lists the voters of s's latest configuration, sorted.
func votersOf(s *Server) []string {
	var out []string
	for _, srv := range s.configuration().Servers {
		out = append(out, string(srv.ID))
	}
	slices.Sort(out)
	return out
}

// waitVoters waits until every running replica holds exactly the voters want and is ready.
func (g *memberGroup) waitVoters(want ...int) {
	g.t.Helper()
	var ids []string
	for _, i := range want {
		ids = append(ids, g.id(i))
	}
	slices.Sort(ids)
	g.waitFor(20*time.Second, fmt.Sprintf("voters %v on every running replica, each ready", ids), func() bool {
		for _, s := range g.live() {
			if !slices.Equal(votersOf(s), ids) || s.ready() != nil {
				return false
			}
		}
		return true
	})
}

// client dials every replica's NATS server.
func (g *memberGroup) client() *Client {
	g.t.Helper()
	var urls []string
	for i := range g.natsPorts {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", g.natsPorts[i]))
	}
	cl, err := Dial(strings.Join(urls, ","), "test", "secret",
		[]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond), nats.RetryOnFailedConnect(true)},
		WithRequestTimeout(500*time.Millisecond), WithDefaultDeadline(20*time.Second))
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(cl.Close)
	return cl
}

// quorumWatch checks, every 5 ms while it runs, that the running replicas are a majority of the
// voters every one of them holds: the group never depends on a replica that is gone.
type quorumWatch struct {
	stop   chan struct{}
	done   sync.WaitGroup
	mu     sync.Mutex
	broken []string
}

func (g *memberGroup) watchQuorum() *quorumWatch {
	w := &quorumWatch{stop: make(chan struct{})}
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			running := map[string]bool{}
			var confs [][]string
			for i, s := range g.all() {
				if s != nil {
					running[g.id(i)] = true
					confs = append(confs, votersOf(s))
				}
			}
			for _, c := range confs {
				up := 0
				for _, id := range c {
					if running[id] {
						up++
					}
				}
				if len(c) > 0 && 2*up <= len(c) {
					w.mu.Lock()
					w.broken = append(w.broken, fmt.Sprintf("voters %v with %d running", c, up))
					w.mu.Unlock()
				}
			}
		}
	}()
	return w
}

func (w *quorumWatch) check(t *testing.T, what string) {
	t.Helper()
	close(w.stop)
	w.done.Wait()
	if len(w.broken) > 0 {
		t.Errorf("%s: the running replicas were not a majority of the voters %d times, first %s", what, len(w.broken), w.broken[0])
	}
}

// TestGroupGrowsAndShrinks: a group changes size as a StatefulSet scaled by `helm upgrade`
// changes it, and keeps the job: one replica grows to three (the new ones find the group and
// are added; the first, rolled onto the longer peer list, leaves and rejoins), three grow to
// five, five shrink to three (the two removed stop together and leave), and three back to one.
// At every step the running replicas hold a quorum of the configuration, and every replica's
// state is the job as submitted with its workers.
func TestGroupGrowsAndShrinks(t *testing.T) {
	g := newMemberGroup(t, 5)
	g.start(0, 1)
	g.waitVoters(0)
	cl := g.client()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := cl.Submit(ctx, testSpec("test")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"w0", "w1"} {
		if _, err := cl.Join(ctx, JoinRequest{Name: name, Instance: name}); err != nil {
			t.Fatal(err)
		}
	}
	want := g.server(0).Status()
	kept := func(step string) {
		t.Helper()
		g.waitFor(10*time.Second, step+": the job on every replica", func() bool {
			for _, s := range g.live() {
				st := s.Status()
				if st.Job == nil || !sameStatus(st, want) {
					return false
				}
			}
			return true
		})
		st, err := cl.Status(ctx)
		if err != nil || !sameStatus(*st, want) {
			t.Fatalf("%s: status %+v, %v; want the job as submitted with its two workers", step, st, err)
		}
	}

	// 1 → 3: two new replicas with the three-replica flags, then the first one rolled onto them.
	w := g.watchQuorum()
	t0 := time.Now()
	g.start(1, 3)
	g.start(2, 3)
	g.waitVoters(0, 1, 2)
	t.Logf("1 → 3: both new replicas added %v after they started", time.Since(t0).Round(time.Millisecond))
	g.stop(0)
	g.waitVoters(1, 2)
	g.start(0, 3)
	g.waitVoters(0, 1, 2)
	w.check(t, "1 → 3")
	kept("1 → 3")

	// 3 → 5.
	w = g.watchQuorum()
	g.start(3, 5)
	g.start(4, 5)
	g.waitVoters(0, 1, 2, 3, 4)
	w.check(t, "3 → 5")
	kept("3 → 5")

	// 5 → 3: the two highest stop together, as a StatefulSet deletes the pods it scales away.
	w = g.watchQuorum()
	var wg sync.WaitGroup
	for _, i := range []int{4, 3} {
		wg.Add(1)
		go func() { defer wg.Done(); g.stop(i) }()
	}
	wg.Wait()
	g.waitVoters(0, 1, 2)
	w.check(t, "5 → 3")
	kept("5 → 3")
	if _, err := cl.Join(ctx, JoinRequest{Name: "w2", Instance: "w2"}); err != nil {
		t.Fatalf("5 → 3: the group cannot commit: %v", err)
	}
	want = g.leader().Status()

	// 3 → 1.
	w = g.watchQuorum()
	g.stop(2)
	g.stop(1)
	g.waitVoters(0)
	w.check(t, "3 → 1")
	kept("3 → 1")
}

// sameStatus compares what a resize must keep: the job, its state and its members.
func sameStatus(a, b JobStatus) bool {
	return a.Job != nil && b.Job != nil && fmt.Sprintf("%+v", *a.Job) == fmt.Sprintf("%+v", *b.Job) &&
		a.State == b.State && slices.Equal(a.Generation.Members, b.Generation.Members) && a.Generation.Number == b.Generation.Number
}

// TestFreshReplicasWaitForEveryPeer: replicas on empty data dirs do not bootstrap until every
// listed peer has answered that it holds no state (a peer that does not answer may hold the
// group); when the last one starts, the three bootstrap one group.
func TestFreshReplicasWaitForEveryPeer(t *testing.T) {
	g := newMemberGroup(t, 3)
	g.start(0, 3)
	g.start(1, 3)
	time.Sleep(2 * time.Second)
	for _, s := range g.live() {
		if n := s.raft.LastIndex(); n != 0 || s.ready() == nil {
			t.Fatalf("%s bootstrapped (last index %d, ready %v) while node2 had not answered", s.ID(), n, s.ready())
		}
	}
	g.start(2, 3)
	g.waitVoters(0, 1, 2)
	g.leader()
}

// TestReadyWithoutLeader: /readyz does not wait for a leader. A three-replica group stops; one
// replica restarts on its data alone: it is ready (it knows its group, its NATS and Raft
// transport serve) though no leader can be elected; /healthz answers too.
func TestReadyWithoutLeader(t *testing.T) {
	g := newMemberGroup(t, 3)
	for i := range 3 {
		g.start(i, 3)
	}
	g.waitVoters(0, 1, 2)
	g.leader()
	for i := range 3 {
		g.kill(i)
	}
	s := g.start(1, 3)
	for _, path := range []string{"/healthz", "/readyz"} {
		var code int
		var body string
		g.waitFor(10*time.Second, path+" 200", func() bool {
			code, body = get(t, "http://"+s.HTTPAddr()+path)
			return code == http.StatusOK
		})
		t.Logf("one of three up, no leader: %s %d %q", path, code, strings.TrimSpace(body))
	}
	if _, leader := s.raft.LeaderWithID(); leader != "" {
		t.Fatalf("a leader %q with one of three replicas up", leader)
	}
	if _, body := get(t, "http://"+s.HTTPAddr()+"/readyz"); !strings.Contains(body, "no leader known") {
		t.Errorf("/readyz %q: want it to say no leader is known", body)
	}
}

func get(t *testing.T, url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestLeaveHandsLeadershipOver: with the production Raft timeouts (1 s), a leader stopped as
// SIGTERM stops it hands leadership over: another replica leads well within the heartbeat
// timeout, where a crash costs at least that. Restarted on its data it rejoins the group; a
// follower killed and restarted keeps its membership without asking.
func TestLeaveHandsLeadershipOver(t *testing.T) {
	g := newMemberGroup(t, 3)
	g.timeouts = DefaultRaftTimeouts()
	for i := range 3 {
		g.start(i, 3)
	}
	g.waitVoters(0, 1, 2)
	old := g.leader()
	i := g.index(old)
	t0 := time.Now()
	var took time.Duration
	var newLeader string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for time.Since(t0) < 5*time.Second {
			for _, s := range g.live() {
				if s != old && s.IsLeader() {
					took, newLeader = time.Since(t0), s.ID()
					return
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	leave := g.stop(i)
	<-done
	t.Logf("leader %s stopped gracefully: %s leads %v after the stop began (the leave took %v; heartbeat timeout %v)",
		old.ID(), newLeader, took.Round(time.Millisecond), leave.Round(time.Millisecond), g.timeouts.HeartbeatTimeout)
	if newLeader == "" || took > g.timeouts.HeartbeatTimeout/2 {
		t.Fatalf("a new leader %q after %v: want one within half the heartbeat timeout (%v)", newLeader, took, g.timeouts.HeartbeatTimeout/2)
	}
	var rest []int
	for j := range 3 {
		if j != i {
			rest = append(rest, j)
		}
	}
	g.waitVoters(rest...)
	g.start(i, 3)
	g.waitVoters(0, 1, 2)

	// A crash keeps the membership: the restarted follower is a voter from its own data.
	f := (g.index(g.leader()) + 1) % 3
	g.kill(f)
	s := g.start(f, 3)
	if !isVoterAt(s.configuration(), s.ID(), "") {
		t.Fatalf("%s restarted after a crash is not a voter of its own configuration %v", s.ID(), votersOf(s))
	}
	g.waitVoters(0, 1, 2)
}
