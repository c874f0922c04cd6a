package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/nats-io/nats.go"
)

// Options shape a Cluster. Zero fields take the defaults named on each.
type Options struct {
	// Coordinators is the number of coordinator replicas, hosts c1..cN (default 1).
	Coordinators int
	// Workers is the number of worker hosts, w1..wN, started by NewCluster (default 3).
	Workers int
	// Spec is the job.yaml submitted (default LinearSpec(2400)).
	Spec string
	// LeaseTTL is the coordinators' --lease-ttl (default 1 s); heartbeats every quarter of it.
	LeaseTTL time.Duration
	// WorkerArgs are extra `vlp worker join` flags for every worker.
	WorkerArgs []string
	// CheckpointDir is the workers' shared --checkpoint-dir (default: Dir/ckpt).
	CheckpointDir string
	// NoSubmit leaves the job unsubmitted (the test submits).
	NoSubmit bool
	// RingTransport is the workers' --ring-transport (default nats); with tcp or auto each
	// worker listens on its own host's address, port 7100.
	RingTransport string
	// Credentials turns NATS authentication on: the coordinators get an operator user
	// (OperatorUser, used by the test's client and CLI) and a worker user (WorkerUser, which the
	// workers join with).
	Credentials bool
	// WorkerNkeys names the workers that join with an nkey of their own instead of the worker
	// user (Credentials is then implied): `vlp nkeys --workers` makes their keys under
	// Dir/nkeys, and the coordinators read the registry with --nats-worker-nkeys.
	WorkerNkeys []string
}

// The NATS users of a cluster with Options.Credentials: name and password.
var (
	OperatorUser = [2]string{"operator", "itest-operator-password"}
	WorkerUser   = [2]string{"worker", "itest-worker-password"}
)

// LinearSpec is a job of the linear model over pairs pairs in units of 12, a global batch of 12,
// a checkpoint every 10 steps, progress every step, one epoch, 5 ms of compute per pair.
func LinearSpec(pairs int) string {
	return fmt.Sprintf(`name: itest
model: linear
hyper: {lr: 0.01}
global_batch: 12
min_workers: 1
max_workers: 16
checkpoint_every: 10
checkpoint_retain: 3
progress_every: 1
seed: 7
epochs: 1
units: {pairs: %d, per_unit: 12}
options: {dim: "64", compute: "5ms"}
`, pairs)
}

// Cluster is a job run by real processes on simulated hosts.
type Cluster struct {
	t       testing.TB
	Net     *Net
	Bin     string
	Dir     string
	Job     string
	Token   string
	Opts    Options
	Coords  []*Proc
	Workers map[string]*Proc
	client  *coordinator.Client
}

// NewCluster builds the hosts, starts the coordinators, submits the spec (unless NoSubmit) and
// starts the workers.
func NewCluster(t testing.TB, bin string, o Options) *Cluster {
	t.Helper()
	RequireNet(t)
	if o.Coordinators == 0 {
		o.Coordinators = 1
	}
	if o.Workers == 0 {
		o.Workers = 3
	}
	if o.Spec == "" {
		o.Spec = LinearSpec(2400)
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = time.Second
	}
	if o.RingTransport == "" {
		o.RingTransport = "nats"
	}
	if len(o.WorkerNkeys) > 0 {
		o.Credentials = true
	}
	c := &Cluster{t: t, Bin: bin, Dir: t.TempDir(), Job: "itest", Token: "itest-" + randomID(8), Opts: o, Workers: map[string]*Proc{}}
	if keep := os.Getenv("VLP_INTEGRATION_KEEP"); keep != "" {
		// Registered after TempDir, so it runs before the directory is removed.
		t.Cleanup(func() {
			if t.Failed() || os.Getenv("VLP_INTEGRATION_KEEP_ALL") != "" {
				dst := filepath.Join(keep, strings.ReplaceAll(t.Name(), "/", "_")+"-"+randomID(4))
				if err := exec.Command("cp", "-a", c.Dir, dst).Run(); err == nil {
					t.Logf("logs kept in %s", dst)
				}
			}
		})
	}
	if o.CheckpointDir == "" {
		c.Opts.CheckpointDir = filepath.Join(c.Dir, "ckpt")
	}
	var hosts []string
	for i := 1; i <= o.Coordinators; i++ {
		hosts = append(hosts, fmt.Sprintf("c%d", i))
	}
	for i := 1; i <= o.Workers; i++ {
		hosts = append(hosts, fmt.Sprintf("w%d", i))
	}
	c.Net = NewNet(t, hosts...)
	if len(o.WorkerNkeys) > 0 {
		out, err := exec.Command(bin, "nkeys", "--out", c.NkeysDir(), "--workers", strings.Join(o.WorkerNkeys, ",")).CombinedOutput()
		if err != nil {
			t.Fatalf("integration: vlp nkeys --workers: %v\n%s", err, out)
		}
	}
	for i := 1; i <= o.Coordinators; i++ {
		c.Coords = append(c.Coords, c.startCoordinator(i))
	}
	var urls []string
	for i := 1; i <= o.Coordinators; i++ {
		urls = append(urls, fmt.Sprintf("nats://%s:4222", c.Net.Host(fmt.Sprintf("c%d", i)).IP))
	}
	var err error
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Short pings: a coordinator host cut off by LinkDown breaks no connection.
		opts := []nats.Option{nats.PingInterval(time.Second), nats.MaxPingsOutstanding(2)}
		if o.Credentials {
			opts = append(opts, nats.UserInfo(OperatorUser[0], OperatorUser[1]))
		}
		c.client, err = coordinator.Dial(strings.Join(urls, ","), c.Job, c.Token, opts)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("integration: connect to the coordinators: %v\n%s", err, c.Coords[0].Tail(2000))
	}
	t.Cleanup(c.client.Close)
	c.WaitStatus(30*time.Second, "a leader", func(*coordinator.JobStatus) bool { return true })
	if !o.NoSubmit {
		if out, err := c.Submit(o.Spec); err != nil {
			t.Fatalf("integration: submit: %v\n%s", err, out)
		}
		for i := 1; i <= o.Workers; i++ {
			c.StartWorker(fmt.Sprintf("w%d", i))
		}
	}
	return c
}

func (c *Cluster) startCoordinator(i int) *Proc {
	name := fmt.Sprintf("c%d", i)
	h := c.Net.Host(name)
	args := []string{"coordinator", "start", "--job", c.Job, "--token", c.Token,
		"--data-dir", filepath.Join(c.Dir, name), "--node-id", name,
		"--raft-addr", h.IP + ":7000", "--nats-listen", "0.0.0.0:4222", "--http-addr", h.IP + ":9090",
		"--lease-ttl", c.Opts.LeaseTTL.String(), "--heartbeat-interval", (c.Opts.LeaseTTL / 4).String()}
	if c.Opts.Credentials {
		args = append(args, "--nats-user", OperatorUser[0], "--nats-password", OperatorUser[1],
			"--nats-worker-user", WorkerUser[0], "--nats-worker-password", WorkerUser[1])
	}
	if len(c.Opts.WorkerNkeys) > 0 {
		args = append(args, "--nats-worker-nkeys", c.WorkerRegistry())
	}
	if c.Opts.Coordinators > 1 {
		var peers, routes []string
		for j := 1; j <= c.Opts.Coordinators; j++ {
			peers = append(peers, fmt.Sprintf("c%d=%s:7000", j, c.Net.Host(fmt.Sprintf("c%d", j)).IP))
			routes = append(routes, fmt.Sprintf("nats-route://c%d:6222", j))
		}
		args = append(args, "--peers", strings.Join(peers, ","), "--nats-cluster-listen", "0.0.0.0:6222", "--nats-routes", strings.Join(routes, ","))
	}
	return h.Start(c.t, name, c.Bin, filepath.Join(c.Dir, name+".log"), args...)
}

// NATSURLs is the workers' and the operator's --nats-url: every coordinator by host name.
func (c *Cluster) NATSURLs() string {
	var urls []string
	for i := range c.Coords {
		urls = append(urls, fmt.Sprintf("nats://c%d:4222", i+1))
	}
	return strings.Join(urls, ",")
}

// StartWorker starts `vlp worker join` on host name (w1, w2, …), or restarts it after it exited.
func (c *Cluster) StartWorker(name string) *Proc {
	if p, ok := c.Workers[name]; ok {
		p.Restart(c.t)
		return p
	}
	args := []string{"worker", "join", "--nats-url", c.NATSURLs(), "--job", c.Job, "--token", c.Token,
		"--name", name, "--ring-transport", c.Opts.RingTransport, "--checkpoint-dir", c.Opts.CheckpointDir,
		"--commit-log", c.CommitLog(name), "--rejoin-after", "4s"}
	if c.Opts.RingTransport != "nats" {
		args = append(args, "--ring-listen", c.Net.Host(name).IP+":7100")
	}
	switch {
	case slices.Contains(c.Opts.WorkerNkeys, name):
		args = append(args, "--nats-nkey-seed", c.WorkerSeed(name))
	case c.Opts.Credentials:
		args = append(args, "--nats-user", WorkerUser[0], "--nats-password", WorkerUser[1])
	}
	args = append(args, c.Opts.WorkerArgs...)
	p := c.Net.Host(name).Start(c.t, name, c.Bin, filepath.Join(c.Dir, name+".log"), args...)
	c.Workers[name] = p
	return p
}

// NkeysDir holds the keys `vlp nkeys --workers` made for Options.WorkerNkeys.
func (c *Cluster) NkeysDir() string { return filepath.Join(c.Dir, "nkeys") }

// WorkerRegistry is the coordinators' --nats-worker-nkeys file.
func (c *Cluster) WorkerRegistry() string { return filepath.Join(c.NkeysDir(), "workers.pub") }

// WorkerSeed is the seed file of a worker on its own key.
func (c *Cluster) WorkerSeed(name string) string {
	return filepath.Join(c.NkeysDir(), "workers", name+".nk")
}

// RevokeWorkerKey deletes a worker's line from the registry, as an operator revokes it.
func (c *Cluster) RevokeWorkerKey(name string) {
	c.t.Helper()
	b, err := os.ReadFile(c.WorkerRegistry())
	if err != nil {
		c.t.Fatal(err)
	}
	var kept []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[1] == name {
			continue
		}
		kept = append(kept, l)
	}
	tmp := c.WorkerRegistry() + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(kept, "\n")), 0o644); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, c.WorkerRegistry()); err != nil {
		c.t.Fatal(err)
	}
}

// CommitLog is the path of a worker's commit log.
func (c *Cluster) CommitLog(name string) string { return filepath.Join(c.Dir, "commits-"+name+".log") }

// CommitLogs are the paths of every worker's commit log.
func (c *Cluster) CommitLogs() []string {
	var out []string
	for name := range c.Workers {
		out = append(out, c.CommitLog(name))
	}
	return out
}

// CLI runs `vlp args…` on host (as an operator there would) with the job's name, token and
// NATS URLs in its environment, and returns its combined output.
func (c *Cluster) CLI(host string, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", c.Net.Host(host).NS, c.Bin}, args...)...)
	cmd.Env = append(os.Environ(), "VLP_JOB="+c.Job, "VLP_JOB_TOKEN="+c.Token, "VLP_NATS_URL="+c.NATSURLs())
	if c.Opts.Credentials {
		cmd.Env = append(cmd.Env, "VLP_NATS_USER="+OperatorUser[0], "VLP_NATS_PASSWORD="+OperatorUser[1])
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Submit writes spec to a file and runs `vlp job submit` on c1.
func (c *Cluster) Submit(spec string, flags ...string) (string, error) {
	path := filepath.Join(c.Dir, "job-"+randomID(4)+".yaml")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		return "", err
	}
	return c.CLI("c1", 60*time.Second, append(append([]string{"job", "submit"}, flags...), path)...)
}

// Status asks the coordinators for the job's status.
func (c *Cluster) Status() (*coordinator.JobStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return c.client.Status(ctx)
}

// WaitStatus polls the status every 100 ms until cond holds, at most d; it fails the test
// otherwise, naming what it waited for. It returns the status and how long it waited.
func (c *Cluster) WaitStatus(d time.Duration, what string, cond func(*coordinator.JobStatus) bool) (*coordinator.JobStatus, time.Duration) {
	c.t.Helper()
	st, took, err := c.PollStatus(d, cond)
	if err != nil {
		c.t.Fatalf("integration: waited %v for %s: %v\n%s", d, what, err, c.Logs(1500))
	}
	return st, took
}

// PollStatus is WaitStatus returning an error instead of failing the test.
func (c *Cluster) PollStatus(d time.Duration, cond func(*coordinator.JobStatus) bool) (*coordinator.JobStatus, time.Duration, error) {
	t0 := time.Now()
	var last error
	var st *coordinator.JobStatus
	for time.Since(t0) < d {
		s, err := c.Status()
		if err == nil {
			st = s
			if cond(s) {
				return s, time.Since(t0), nil
			}
		} else {
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st != nil {
		return st, time.Since(t0), fmt.Errorf("timed out; last status: step %d, state %s, generation %d with %d member(s) (last error %v)",
			st.Step, st.State, st.Generation.Number, len(st.Generation.Members), last)
	}
	return nil, time.Since(t0), fmt.Errorf("timed out; no status: %v", last)
}

// Logs is the tail of every process's log, for failure messages.
func (c *Cluster) Logs(n int) string {
	var b strings.Builder
	for _, p := range c.Coords {
		fmt.Fprintf(&b, "--- %s\n%s\n", p.Name, p.Tail(n))
	}
	for _, p := range c.Workers {
		fmt.Fprintf(&b, "--- %s\n%s\n", p.Name, p.Tail(n))
	}
	return b.String()
}

// Members is the names of the current generation's members, in rank order.
func Members(st *coordinator.JobStatus) []string {
	var out []string
	for _, m := range st.Generation.Members {
		out = append(out, m.Name)
	}
	return out
}

// LatestCheckpoint is the newest durable or verified checkpoint record, or nil.
func LatestCheckpoint(st *coordinator.JobStatus) *coordinator.CheckpointRecord {
	for i := len(st.Checkpoints) - 1; i >= 0; i-- {
		ck := st.Checkpoints[i]
		if ck.Status == coordinator.CheckpointDurable || ck.Status == coordinator.CheckpointVerified {
			return &ck
		}
	}
	return nil
}
