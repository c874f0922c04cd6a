package coordinator

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// This file is a test harness in hashicorp/raft's style, exported so that other packages' tests
// (the worker's, the integration tests) can stand up a coordinator group in-process:
//
//	c := coordinator.MakeCluster(t, 3, coordinator.WithNATS())
//	leader := c.Leader(t)
//	c.Partition(leader)
//	…
//	c.Heal()
//	c.EnsureSame(t)

// ClusterOption configures MakeCluster.
type ClusterOption func(*clusterOptions)

type clusterOptions struct {
	tcp   bool
	nats  bool
	job   string
	token string
	tweak func(i int, c *Config)
}

// WithTCP uses real TCP Raft transports and bbolt stores under t.TempDir() (default: in-memory
// transports and stores). Only a TCP cluster can Restart a replica.
func WithTCP() ClusterOption { return func(o *clusterOptions) { o.tcp = true } }

// WithNATS serves the API: with TCP every replica embeds a NATS server and the servers form a NATS
// cluster; in memory, one shared in-process NATS server. Default: no NATS, drive the FSM through
// Cluster.Apply.
func WithNATS() ClusterOption { return func(o *clusterOptions) { o.nats = true } }

// WithJob sets the job name and token (default "test" and "secret").
func WithJob(job, token string) ClusterOption {
	return func(o *clusterOptions) { o.job, o.token = job, token }
}

// WithConfig lets a test adjust replica i's configuration before it starts.
func WithConfig(fn func(i int, c *Config)) ClusterOption {
	return func(o *clusterOptions) { o.tweak = fn }
}

// Cluster is a coordinator group under test.
type Cluster struct {
	t       testing.TB
	opts    clusterOptions
	mu      sync.Mutex
	servers []*Server
	configs []Config
	inmem   []*raft.InmemTransport
	layers  []*partitionLayer
	shared  *server.Server
	natsURL []string
}

// TestRaftTimeouts are short Raft timeouts for tests: elections in a fraction of a second even
// under the race detector on two busy cores.
func TestRaftTimeouts(tcp bool) RaftTimeouts {
	t := DefaultRaftTimeouts()
	if tcp {
		t.HeartbeatTimeout, t.ElectionTimeout, t.LeaderLeaseTimeout, t.CommitTimeout = 200*time.Millisecond, 200*time.Millisecond, 150*time.Millisecond, 5*time.Millisecond
	} else {
		t.HeartbeatTimeout, t.ElectionTimeout, t.LeaderLeaseTimeout, t.CommitTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond, 5*time.Millisecond
	}
	return t
}

// TestLogger discards logs unless VLP_TEST_LOG is set (then they go to stderr).
func TestLogger() *slog.Logger {
	if os.Getenv("VLP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// MakeCluster starts n replicas that bootstrap one group, and closes them in t.Cleanup.
func MakeCluster(t testing.TB, n int, opts ...ClusterOption) *Cluster {
	t.Helper()
	c := &Cluster{t: t, opts: clusterOptions{job: "test", token: "secret"}}
	for _, o := range opts {
		o(&c.opts)
	}
	t.Cleanup(c.Close)
	if c.opts.nats && !c.opts.tcp {
		ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true, MaxPayload: 8 << 20})
		if err != nil {
			t.Fatalf("shared NATS: %v", err)
		}
		go ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatal("shared NATS did not start")
		}
		c.shared = ns
		c.natsURL = []string{ns.ClientURL()}
	}
	ids := make([]string, n)
	var peers []Peer
	var routes []string
	clientPorts := make([]int, n)
	clusterPorts := make([]int, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("node%d", i)
		cfg := DefaultConfig()
		cfg.NodeID = ids[i]
		cfg.Job, cfg.Token = c.opts.job, c.opts.token
		cfg.HeartbeatInterval, cfg.LeaseTTL, cfg.LeaseCheck = 100*time.Millisecond, 600*time.Millisecond, 50*time.Millisecond
		cfg.ApplyTimeout = 2 * time.Second
		cfg.Raft = TestRaftTimeouts(c.opts.tcp)
		cfg.Logger = TestLogger().With("node", ids[i])
		if c.opts.tcp {
			cfg.DataDir = filepath.Join(t.TempDir(), ids[i])
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatalf("listen: %v", err)
			}
			layer := &partitionLayer{Listener: ln, blocked: map[raft.ServerAddress]bool{}}
			c.layers = append(c.layers, layer)
			cfg.RaftAddr = ln.Addr().String()
			cfg.Transport = newNetTransport(layer, cfg.Logger)
		} else {
			addr, tr := raft.NewInmemTransport("")
			cfg.RaftAddr = string(addr)
			cfg.Transport = tr
			c.inmem = append(c.inmem, tr)
		}
		peers = append(peers, Peer{ID: ids[i], Address: cfg.RaftAddr})
		if c.opts.nats && c.opts.tcp {
			clientPorts[i], clusterPorts[i] = freePort(t), freePort(t)
			routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", clusterPorts[i]))
			c.natsURL = append(c.natsURL, fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]))
		}
		c.configs = append(c.configs, cfg)
	}
	for i := range c.inmem {
		for j := range c.inmem {
			if i != j {
				c.inmem[i].Connect(c.inmem[j].LocalAddr(), c.inmem[j])
			}
		}
	}
	for i := range c.configs {
		cfg := &c.configs[i]
		cfg.Peers = peers
		switch {
		case c.opts.nats && c.opts.tcp:
			cfg.NATS.Embedded.Host = "127.0.0.1"
			cfg.NATS.Embedded.Port = clientPorts[i]
			cfg.NATS.Embedded.ClusterPort = clusterPorts[i]
			cfg.NATS.Embedded.Routes = routes
		case c.opts.nats:
			cfg.NATS.URL = c.shared.ClientURL()
		default:
			cfg.NATS.Embedded.Host = "127.0.0.1"
			cfg.NATS.Embedded.Port = -1
		}
		if c.opts.tweak != nil {
			c.opts.tweak(i, cfg)
		}
	}
	c.servers = make([]*Server, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range c.configs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c.servers[i], errs[i] = NewServer(c.configs[i])
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start %s: %v", ids[i], err)
		}
	}
	return c
}

// freePort is a port nothing listens on now, below Linux's ephemeral range (32768 up): a port the
// kernel handed out for :0 may be taken as an outgoing connection's local port before the
// replica that was meant to bind it starts (a group grown later in a test starts late). Each
// port is handed out once per test binary.
func freePort(t testing.TB) int {
	usedPorts.Lock()
	defer usedPorts.Unlock()
	for try := 0; try < 1000; try++ {
		port := 20000 + rand.IntN(32768-20000)
		if usedPorts.m[port] {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		ln.Close()
		usedPorts.m[port] = true
		return port
	}
	t.Fatalf("free port: none found below the ephemeral range")
	return 0
}

var usedPorts = struct {
	sync.Mutex
	m map[int]bool
}{m: map[int]bool{}}

// Servers returns the replicas (nil where one was killed).
func (c *Cluster) Servers() []*Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Server(nil), c.servers...)
}

// Live returns the replicas not killed.
func (c *Cluster) Live() []*Server {
	var out []*Server
	for _, s := range c.Servers() {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// Leader waits (up to 10s) until exactly one live replica leads and serves, and returns it.
func (c *Cluster) Leader(t testing.TB) *Server {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var leaders []*Server
		for _, s := range c.Live() {
			if s.IsLeader() && s.raft.State() == raft.Leader {
				leaders = append(leaders, s)
			}
		}
		if len(leaders) == 1 {
			return leaders[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no single leader within 10s")
	return nil
}

// Followers are the live replicas other than the leader.
func (c *Cluster) Followers(t testing.TB) []*Server {
	l := c.Leader(t)
	var out []*Server
	for _, s := range c.Live() {
		if s != l {
			out = append(out, s)
		}
	}
	return out
}

// Index is a replica's position in Servers.
func (c *Cluster) Index(s *Server) int {
	for i, x := range c.Servers() {
		if x == s {
			return i
		}
	}
	return -1
}

// Partition cuts the given replicas' Raft traffic off from the others' (NATS stays connected:
// the question is who can commit). Heal undoes it.
func (c *Cluster) Partition(side ...*Server) {
	in := map[int]bool{}
	for _, s := range side {
		in[c.Index(s)] = true
	}
	all := c.configs
	for i := range all {
		for j := range all {
			if i == j || in[i] == in[j] {
				continue
			}
			if c.inmem != nil {
				c.inmem[i].Disconnect(raft.ServerAddress(all[j].RaftAddr))
			} else {
				c.layers[i].block(raft.ServerAddress(all[j].RaftAddr))
			}
		}
	}
}

// Heal reconnects every replica to every other.
func (c *Cluster) Heal() {
	for i := range c.configs {
		for j := range c.configs {
			if i == j {
				continue
			}
			if c.inmem != nil {
				c.inmem[i].Connect(c.inmem[j].LocalAddr(), c.inmem[j])
			} else {
				c.layers[i].unblock(raft.ServerAddress(c.configs[j].RaftAddr))
			}
		}
	}
}

// Kill closes a replica as a crash would (no leadership hand-over) and returns its index.
func (c *Cluster) Kill(s *Server) int {
	i := c.Index(s)
	s.Close()
	c.mu.Lock()
	c.servers[i] = nil
	c.mu.Unlock()
	return i
}

// Restart starts replica i again on its data dir (TCP clusters only) and returns it.
func (c *Cluster) Restart(t testing.TB, i int) *Server {
	t.Helper()
	if !c.opts.tcp {
		t.Fatal("Restart needs a TCP cluster (WithTCP): in-memory stores do not survive a close")
	}
	cfg := c.configs[i]
	var ln net.Listener
	var err error
	for try := 0; try < 50; try++ { // the old listener's port may take a moment to free
		if ln, err = net.Listen("tcp", cfg.RaftAddr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("restart %s: listen %s: %v", cfg.NodeID, cfg.RaftAddr, err)
	}
	old := c.layers[i]
	layer := &partitionLayer{Listener: ln, blocked: old.blockedCopy()}
	c.layers[i] = layer
	cfg.Transport = newNetTransport(layer, cfg.Logger)
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatalf("restart %s: %v", cfg.NodeID, err)
	}
	c.mu.Lock()
	c.servers[i] = s
	c.mu.Unlock()
	return s
}

// EnsureSame waits (up to 10s) until every live replica has applied the same index and holds
// byte-identical state, and fails the test otherwise.
func (c *Cluster) EnsureSame(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var diff string
	for time.Now().Before(deadline) {
		live := c.Live()
		ref, err := live[0].fsm.MarshalState()
		if err != nil {
			t.Fatal(err)
		}
		refIdx := live[0].fsm.AppliedIndex()
		diff = ""
		for _, s := range live[1:] {
			b, _ := s.fsm.MarshalState()
			if idx := s.fsm.AppliedIndex(); idx != refIdx || !bytes.Equal(b, ref) {
				diff = fmt.Sprintf("%s applied %d (%d state bytes), %s applied %d (%d state bytes)", live[0].ID(), refIdx, len(ref), s.ID(), idx, len(b))
				break
			}
		}
		if diff == "" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("replicas differ after 10s: %s", diff)
}

// NATSURL is a URL list reaching the cluster's NATS (every replica's server, with TCP).
func (c *Cluster) NATSURL() string {
	if len(c.natsURL) > 0 {
		return strings.Join(c.natsURL, ",")
	}
	return c.Live()[0].NATSURL()
}

// Client connects a new API client (closed in t.Cleanup).
func (c *Cluster) Client(t testing.TB, opts ...ClientOption) *Client {
	t.Helper()
	// Attempts shorter than the tests' lease TTL, so a request lost in a failover is retried in time.
	opts = append([]ClientOption{WithRequestTimeout(300 * time.Millisecond)}, opts...)
	cl, err := Dial(c.NATSURL(), c.opts.job, c.opts.token, []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}, opts...)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Apply proposes a command through the leader (FSM tests without NATS).
func (c *Cluster) Apply(t testing.TB, typ CommandType, body any) (any, error) {
	t.Helper()
	return c.Leader(t).apply(typ, body)
}

// ApplyOnce applies a command through the leader like Apply, but when leadership moves while it
// commits (a loaded machine can starve a fresh group's heartbeats), it waits for the next leader,
// lets it apply everything its log holds (a barrier), and tries again only if applied(state) says
// the command did not take effect: the command takes effect exactly once either way.
func (c *Cluster) ApplyOnce(t testing.TB, typ CommandType, body any, applied func(*State) bool) (any, error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := c.Leader(t).apply(typ, body)
		if err == nil || !errors.Is(err, ErrNotLeader) || time.Now().After(deadline) {
			return res, err
		}
		l := c.Leader(t)
		if berr := l.raft.Barrier(l.cfg.ApplyTimeout).Error(); berr != nil {
			continue
		}
		done := false
		l.FSM().Read(func(s *State) { done = applied(s) })
		if done {
			return nil, nil
		}
	}
}

// Close stops every replica and the shared NATS server.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for _, s := range c.Live() {
		wg.Add(1)
		go func(s *Server) { defer wg.Done(); s.Close() }(s)
	}
	wg.Wait()
	if c.shared != nil {
		c.shared.Shutdown()
	}
}
