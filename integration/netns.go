package integration

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Net is a bridge and one network namespace per host.
type Net struct {
	t      testing.TB
	id     string // short random id: names of namespaces, links and the bridge
	bridge string
	prefix string // "10.a.b." of the /24
	Hosts  map[string]*Host
	order  []string
}

// Host is one simulated machine: a network namespace with one address on the bridge.
type Host struct {
	Name    string
	NS      string // network namespace
	IP      string
	veth    string   // the bridge side of its veth pair
	aliases []string // more names in the hosts files (AddNames)
	net     *Net
}

var (
	availableOnce sync.Once
	availableWhy  string
)

// Available says why network namespaces cannot be used here, or "" when they can. It probes
// once per process.
func Available() string {
	availableOnce.Do(func() { availableWhy = probe() })
	return availableWhy
}

func probe() string {
	if os.Geteuid() != 0 {
		return "integration: needs root (network namespaces, veth, bridges)"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "integration: needs iproute2's ip (ip netns)"
	}
	name := "vlpprobe" + randomID(3)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Sprintf("integration: ip netns add fails here: %v: %s", err, strings.TrimSpace(string(out)))
	}
	_ = exec.Command("ip", "netns", "del", name).Run()
	return ""
}

// RequireNet skips t when network namespaces cannot be used, naming why.
func RequireNet(t testing.TB) {
	t.Helper()
	if why := Available(); why != "" {
		t.Skip(why)
	}
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// NewNet creates the bridge and the hosts, in order, with a hosts file in each naming all of
// them. Everything is removed in t.Cleanup.
func NewNet(t testing.TB, hosts ...string) *Net {
	t.Helper()
	a, _ := rand.Int(rand.Reader, big.NewInt(50))
	b, _ := rand.Int(rand.Reader, big.NewInt(250))
	n := &Net{t: t, id: randomID(4), Hosts: map[string]*Host{}}
	n.bridge = "vib" + n.id
	n.prefix = fmt.Sprintf("10.%d.%d.", 200+a.Int64(), 1+b.Int64())
	t.Cleanup(n.destroy)
	n.must("ip", "link", "add", n.bridge, "type", "bridge")
	n.must("ip", "addr", "add", n.prefix+"1/24", "dev", n.bridge)
	n.must("ip", "link", "set", n.bridge, "up")
	for i, name := range hosts {
		h := &Host{Name: name, NS: "vlpi" + n.id + "-" + name, IP: fmt.Sprintf("%s%d", n.prefix, 10+i), net: n}
		h.veth = fmt.Sprintf("vi%s%d", n.id, i)
		peer := h.veth + "p"
		n.must("ip", "netns", "add", h.NS)
		n.Hosts[name] = h
		n.order = append(n.order, name)
		n.must("ip", "link", "add", h.veth, "type", "veth", "peer", "name", peer)
		n.must("ip", "link", "set", h.veth, "master", n.bridge)
		n.must("ip", "link", "set", h.veth, "up")
		n.must("ip", "link", "set", peer, "netns", h.NS)
		n.must("ip", "-n", h.NS, "link", "set", peer, "name", "eth0")
		n.must("ip", "-n", h.NS, "addr", "add", h.IP+"/24", "dev", "eth0")
		n.must("ip", "-n", h.NS, "link", "set", "eth0", "up")
		n.must("ip", "-n", h.NS, "link", "set", "lo", "up")
	}
	if err := n.writeHosts(); err != nil {
		t.Fatalf("integration: hosts file: %v", err)
	}
	return n
}

// writeHosts writes every host's hosts file: each host by its name and its aliases (AddNames).
func (n *Net) writeHosts() error {
	var hostsFile strings.Builder
	hostsFile.WriteString("127.0.0.1 localhost\n")
	for _, name := range n.order {
		h := n.Hosts[name]
		fmt.Fprintf(&hostsFile, "%s %s\n", h.IP, strings.Join(append([]string{name}, h.aliases...), " "))
	}
	for _, name := range n.order {
		dir := filepath.Join("/etc/netns", n.Hosts[name].NS)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(hostsFile.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// AddNames gives host more names in every host's hosts file (e.g. the DNS names a Kubernetes
// cluster would give a pod: <pod>.<service>.<namespace>.svc.cluster.local). Processes already
// running see them at their next lookup.
func (n *Net) AddNames(host string, names ...string) {
	n.t.Helper()
	h := n.Host(host)
	h.aliases = append(h.aliases, names...)
	if err := n.writeHosts(); err != nil {
		n.t.Fatalf("integration: hosts file: %v", err)
	}
}

// Host returns the named host.
func (n *Net) Host(name string) *Host {
	h, ok := n.Hosts[name]
	if !ok {
		n.t.Fatalf("integration: no host %q", name)
	}
	return h
}

func (n *Net) must(args ...string) {
	n.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		n.t.Fatalf("integration: %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
}

// destroy removes the namespaces, their links and hosts files, and the bridge. Deleting a
// namespace deletes its end of the veth pair, and with it the bridge's end.
func (n *Net) destroy() {
	for _, name := range n.order {
		h := n.Hosts[name]
		_ = exec.Command("ip", "netns", "del", h.NS).Run()
		_ = exec.Command("ip", "link", "del", h.veth).Run()
		_ = os.RemoveAll(filepath.Join("/etc/netns", h.NS))
	}
	_ = exec.Command("ip", "link", "del", n.bridge).Run()
}

// LinkDown cuts the host off the bridge (a partition of that host); LinkUp heals it.
func (h *Host) LinkDown() error { return run("ip", "link", "set", h.veth, "down") }

// LinkUp heals a LinkDown.
func (h *Host) LinkUp() error { return run("ip", "link", "set", h.veth, "up") }

// Throttle limits the host's link to rate (tc syntax: "2mbit") in both directions with a token
// bucket filter; Unthrottle removes the limit.
func (h *Host) Throttle(rate string) error {
	args := []string{"root", "tbf", "rate", rate, "burst", "32kbit", "latency", "400ms"}
	if err := run(append([]string{"tc", "qdisc", "replace", "dev", h.veth}, args...)...); err != nil {
		return err
	}
	return run(append([]string{"ip", "netns", "exec", h.NS, "tc", "qdisc", "replace", "dev", "eth0"}, args...)...)
}

// Unthrottle removes a Throttle.
func (h *Host) Unthrottle() error {
	err1 := run("tc", "qdisc", "del", "dev", h.veth, "root")
	err2 := run("ip", "netns", "exec", h.NS, "tc", "qdisc", "del", "dev", "eth0", "root")
	if err1 != nil {
		return err1
	}
	return err2
}

func run(args ...string) error {
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
