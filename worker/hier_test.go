package worker

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/e2evlp/vlp/allreduce"
)

// hierRings gives a worker the hierarchical all-reduce on simulated host k:
// a TCP listener on 127.0.0.(k+1) (its host, as the addresses tell) and the
// host's shared-memory directory.
func hierRings(t *testing.T, k int, shmDir string) func(*nats.Conn, allreduce.Config) (RingMaker, string) {
	return func(nc *nats.Conn, rcfg allreduce.Config) (RingMaker, string) {
		node, err := allreduce.ListenTCP(fmt.Sprintf("127.0.0.%d:0", k+1), allreduce.TCPConfig{Job: testJob, Token: []byte(testToken), Logger: rcfg.Logger})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { node.Close() })
		ep := allreduce.Endpoints{NATS: nc, TCP: node, Shm: allreduce.ShmConfig{Dir: shmDir}, Logger: rcfg.Logger}
		return &TransportRings{Kind: allreduce.KindHier, Config: rcfg, Endpoints: ep}, node.Addr()
	}
}

func shmHostDir(t *testing.T) string {
	dir, err := os.MkdirTemp("/dev/shm", "vlp-worker-test-")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Four workers on two simulated hosts train with the hierarchical
// all-reduce; a host leader is killed mid-run: the survivors carry on in a
// new generation (the dead host's other worker now leads it alone), every
// pair of the epoch is consumed exactly once, and the survivors end with
// the same parameters.
func TestHierKilledLeaderExactlyOnce(t *testing.T) {
	const pairs = 600
	c := newCluster(t, testSpec(pairs, 8, 12, 2))
	var led ledger
	dirs := []string{shmHostDir(t), shmHostDir(t)}
	opts := func(host int) nodeOpts {
		return nodeOpts{ledger: &led, compute: 2 * time.Millisecond, rings: hierRings(t, host, dirs[host])}
	}
	a, b := c.start("a", opts(0)), c.start("b", opts(0)) // minimum two workers
	led.waitWorker(t, "a", 30*time.Second)
	l := c.start("l", opts(1)) // host 1's leader: it joins before m
	led.waitWorker(t, "l", 30*time.Second)
	m := c.start("m", opts(1))
	led.waitWorker(t, "m", 30*time.Second)
	led.waitStep(t, led.maxStep()+3, 30*time.Second)
	at := led.maxStep()
	killed := time.Now()
	l.kill()
	led.waitStep(t, at+2, 30*time.Second)
	t.Logf("survivors committed step %d %v after the kill (at step %d)", at+2, time.Since(killed).Round(time.Millisecond), at)
	waitAll(t, 120*time.Second, a, b, m)
	for _, n := range []*node{a, b, m} {
		if n.res.Reason != "complete" {
			t.Fatalf("%s ended with %q", n.name, n.res.Reason)
		}
	}
	if a.res.Generations < 2 {
		t.Fatalf("survivor a trained in %d generations; the kill should have made a new one", a.res.Generations)
	}
	checkExactlyOnce(t, led.consumed(t, []string{"a", "b", "m"}, a.res.Step, 8), pairs)
	if !bitsEqual(a.learner.Params(), b.learner.Params()) || !bitsEqual(a.learner.Params(), m.learner.Params()) {
		t.Fatal("survivors hold different parameters")
	}
}
