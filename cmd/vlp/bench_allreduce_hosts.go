package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/e2evlp/vlp/allreduce"
)

// `vlp bench allreduce --hosts H --per-host P`: the ranks on H simulated
// hosts. Each host is a network namespace with one veth into a bridge in
// the root namespace, its link capped in both directions by tc tbf, and a
// shared-memory directory of its own; the NATS server that carries the
// bench's commands listens on the bridge. Ranks of one host talk over the
// namespace's loopback path and shared memory, ranks of two hosts across
// the capped links — what a cluster's slow inter-host network does to a
// flat ring, on one machine.

// simHosts is the bridge and the namespaces.
type simHosts struct {
	bridge  string
	gateway string   // the bridge's address, where the NATS server listens
	ns      []string // by host
	ip      []string
	veth    []string // the bridge side of each host's pair
	shm     []string // each host's shared-memory directory
}

func newSimHosts(n int, rate string) (*simHosts, error) {
	var b [3]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])[:5]
	s := &simHosts{bridge: "vbb" + id, gateway: fmt.Sprintf("10.251.%d.1", 1+int(b[2])%250)}
	prefix := strings.TrimSuffix(s.gateway, "1")
	steps := [][]string{
		{"ip", "link", "add", s.bridge, "type", "bridge"},
		{"ip", "addr", "add", s.gateway + "/24", "dev", s.bridge},
		{"ip", "link", "set", s.bridge, "up"},
	}
	// A token bucket of 256 KiB: above a TSO packet, and enough for a
	// gigabit per timer tick.
	tbf := []string{"root", "tbf", "rate", rate, "burst", "256kb", "latency", "50ms"}
	for k := range n {
		ns, veth, ip := fmt.Sprintf("vbh%s-%d", id, k), fmt.Sprintf("vbv%s%d", id, k), fmt.Sprintf("%s%d", prefix, 10+k)
		s.ns, s.veth, s.ip = append(s.ns, ns), append(s.veth, veth), append(s.ip, ip)
		steps = append(steps,
			[]string{"ip", "netns", "add", ns},
			[]string{"ip", "link", "add", veth, "type", "veth", "peer", "name", veth + "p"},
			[]string{"ip", "link", "set", veth, "master", s.bridge},
			[]string{"ip", "link", "set", veth, "up"},
			[]string{"ip", "link", "set", veth + "p", "netns", ns},
			[]string{"ip", "-n", ns, "link", "set", veth + "p", "name", "eth0"},
			[]string{"ip", "-n", ns, "addr", "add", ip + "/24", "dev", "eth0"},
			[]string{"ip", "-n", ns, "link", "set", "eth0", "up"},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
			append([]string{"tc", "qdisc", "replace", "dev", veth}, tbf...),
			append([]string{"ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", "eth0"}, tbf...),
		)
	}
	for _, st := range steps {
		if out, err := exec.Command(st[0], st[1:]...).CombinedOutput(); err != nil {
			s.close()
			return nil, fmt.Errorf("simulated hosts: %s: %w: %s", strings.Join(st, " "), err, strings.TrimSpace(string(out)))
		}
	}
	for k := range n {
		dir, err := os.MkdirTemp("/dev/shm", fmt.Sprintf("vlp-bench-host%d-", k))
		if err != nil {
			s.close()
			return nil, fmt.Errorf("simulated hosts: shared memory: %w", err)
		}
		s.shm = append(s.shm, dir)
	}
	return s, nil
}

// close removes the namespaces (their veth ends, and so the pairs), the
// bridge and the directories.
func (s *simHosts) close() {
	for k, ns := range s.ns {
		exec.Command("ip", "netns", "del", ns).Run()
		exec.Command("ip", "link", "del", s.veth[k]).Run()
	}
	exec.Command("ip", "link", "del", s.bridge).Run()
	for _, d := range s.shm {
		os.RemoveAll(d)
	}
}

// inHost wraps a command line to run in host k.
func (s *simHosts) inHost(k int, args []string) []string {
	return append([]string{"ip", "netns", "exec", s.ns[k]}, args...)
}

// hostTransports are the rings a simulated-hosts run may compare.
var hostTransports = map[string]bool{"tcp": true, "tcp-plain": true, "tcp-encrypt": true, allreduce.KindHier: true}

func runBenchHosts(c *cli.Context) error {
	hosts, per := c.Int("hosts"), c.Int("per-host")
	if hosts < 1 || per < 1 {
		return fmt.Errorf("--hosts %d --per-host %d: want at least one of each", hosts, per)
	}
	if os.Geteuid() != 0 {
		return errors.New("--hosts needs root: the simulated hosts are network namespaces with tc limits")
	}
	sizes, err := intList(c.String("sizes-mib"))
	if err != nil {
		return fmt.Errorf("--sizes-mib: %w", err)
	}
	wires := strings.Split(c.String("wire"), ",")
	for _, w := range wires {
		if _, err := allreduce.ParseDType(w); err != nil {
			return fmt.Errorf("--wire: %w", err)
		}
	}
	transports := []string{"tcp", allreduce.KindHier}
	if c.IsSet("transports") {
		transports = strings.Split(c.String("transports"), ",")
	}
	for _, tr := range transports {
		if !hostTransports[tr] {
			return fmt.Errorf("--transports %q with --hosts: want tcp, tcp-plain, tcp-encrypt or hier (NATS and shm rings would not cross the simulated links as a cluster's do)", tr)
		}
	}
	rate := c.String("link-rate")
	sim, err := newSimHosts(hosts, rate)
	if err != nil {
		return err
	}
	defer sim.close()

	srv, ctl, stop, err := startBenchNATS(sim.gateway)
	if err != nil {
		return err
	}
	defer stop()

	n := hosts * per
	cfg := benchConfig{ChunkBytes: c.Int("chunk-kib") << 10, WindowBytes: c.Int("window-mib") << 20, SharedControl: !c.Bool("nats-control-conn")}
	out := c.App.Writer
	fmt.Fprintf(out, "vlp bench allreduce: %s\n", machineLine())
	fmt.Fprintf(out, "%d simulated hosts × %d ranks (network namespaces on a bridge; each host's link capped at %s each way by tc tbf), chunk %d KiB, window %d MiB; medians of %d rounds (one all-reduce per case, back to back) after a warm-up\n\n",
		hosts, per, rate, cfg.ChunkBytes>>10, cfg.WindowBytes>>20, c.Int("iters"))

	var gloo *glooHosts
	if script := c.String("gloo-script"); script != "" {
		fmt.Fprintf(os.Stderr, "starting Gloo (%d ranks on %d hosts): %s\n", n, hosts, script)
		if gloo, err = startGlooHosts(c.String("python"), script, sim, per); err != nil {
			fmt.Fprintf(out, "Gloo: not measured (%v)\n\n", err)
		}
	}
	var g benchGloo
	if gloo != nil {
		g = gloo
		defer gloo.close()
	}
	place := func(i int, args []string) []string {
		k := i / per
		return sim.inHost(k, append(args, "--listen", sim.ip[k]+":0", "--shm-dir", sim.shm[k]))
	}
	rows, err := benchRanks(c.Context, ctl, srv.ClientURL(), n, sizes, wires, transports, c.Int("iters"), cfg, g, place)
	printBenchTable(out, rows)
	if err != nil {
		return err
	}
	if path := c.String("json"); path != "" {
		b, _ := json.MarshalIndent(rows, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// glooHosts is a Gloo ring with one process per rank, each in its host's
// namespace (scripts/gloo_allreduce.py --rank).
type glooHosts struct {
	ranks []*glooRank
}

type glooRank struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	errb  *bytes.Buffer
}

func startGlooHosts(python, script string, sim *simHosts, per int) (*glooHosts, error) {
	if _, err := os.Stat(script); err != nil {
		return nil, err
	}
	var b [2]byte
	rand.Read(b[:])
	master := fmt.Sprintf("%s:%d", sim.ip[0], 20000+int(b[0])<<4|int(b[1])&15)
	n := len(sim.ns) * per
	g := &glooHosts{}
	for i := range n {
		args := sim.inHost(i/per, []string{"env", "GLOO_SOCKET_IFNAME=eth0", python, script,
			"--rank", strconv.Itoa(i), "--world", strconv.Itoa(n), "--master", master})
		r := &glooRank{cmd: exec.Command(args[0], args[1:]...), errb: new(bytes.Buffer)}
		r.cmd.Stderr = r.errb
		var err error
		if r.stdin, err = r.cmd.StdinPipe(); err != nil {
			g.close()
			return nil, err
		}
		stdout, err := r.cmd.StdoutPipe()
		if err != nil {
			g.close()
			return nil, err
		}
		if err := r.cmd.Start(); err != nil {
			g.close()
			return nil, err
		}
		r.out = bufio.NewScanner(stdout)
		g.ranks = append(g.ranks, r)
	}
	for i, r := range g.ranks {
		var ready struct{ Ready bool }
		if !r.out.Scan() || json.Unmarshal(r.out.Bytes(), &ready) != nil || !ready.Ready {
			g.close()
			return nil, fmt.Errorf("Gloo rank %d did not start: %s", i, lastLine(r.errb.String()))
		}
	}
	return g, nil
}

// allReduce implements benchGloo: every rank's time, the slowest.
func (g *glooHosts) allReduce(size int64) (float64, error) {
	for _, r := range g.ranks {
		if _, err := fmt.Fprintf(r.stdin, "{\"bytes\": %d}\n", size); err != nil {
			return 0, err
		}
	}
	slow := 0.0
	for i, r := range g.ranks {
		var rep struct{ Seconds float64 }
		if !r.out.Scan() || json.Unmarshal(r.out.Bytes(), &rep) != nil || rep.Seconds <= 0 {
			return 0, fmt.Errorf("Gloo rank %d: no answer: %s", i, lastLine(r.errb.String()))
		}
		slow = max(slow, rep.Seconds)
	}
	return slow, nil
}

func (g *glooHosts) close() {
	for _, r := range g.ranks {
		r.stdin.Close()
	}
	for _, r := range g.ranks {
		done := make(chan struct{})
		go func() { r.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			r.cmd.Process.Kill()
			<-done
		}
	}
}
