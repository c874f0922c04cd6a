package integration

import (
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/nats-io/nats.go"
)

// TestBadClients: while three workers train, a client publishes garbage (random bytes, empty
// messages, a 1 MiB blob) on every live ring subject and on the coordinator's API subjects for 3 s,
// and an operator command carries a wrong token. Bounds: the wrong token is refused as
// unauthorized; the ring commits 20 more steps within 30 s of the garbage's start; the epoch ends
// with every pair once.
func TestBadClients(t *testing.T) {
	long(t)
	const pairs = 3600
	c := NewCluster(t, Binary(t), Options{Spec: LinearSpec(pairs)})
	st, _ := training(c, 60*time.Second, 10, "w1", "w2", "w3")
	if out, err := c.CLI("c1", 20*time.Second, "job", "status", "--token", "wrong"); err == nil || !strings.Contains(out, "unauthorized") {
		t.Errorf("a wrong token: err %v\n%s", err, out)
	}
	nc, err := nats.Connect("nats://" + c.Net.Host("c1").IP + ":4222")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var mu sync.Mutex
	live := map[string]time.Time{}
	sub, err := nc.Subscribe("vlp."+c.Job+".ring.>", func(m *nats.Msg) {
		mu.Lock()
		live[m.Subject] = time.Now()
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	rng := rand.New(rand.NewPCG(1, 2))
	blob := make([]byte, 1<<20)
	api := []string{"join", "heartbeat", "leave", "lease", "progress", "checkpoint", "status", "admin.submit", "admin.stop"}
	start := time.Now()
	sent := 0
	for time.Since(start) < 3*time.Second {
		mu.Lock()
		var subjects []string
		for s, at := range live {
			if time.Since(at) < time.Second {
				subjects = append(subjects, s)
			}
		}
		mu.Unlock()
		for _, s := range subjects {
			junk := make([]byte, rng.IntN(4096))
			for i := range junk {
				junk[i] = byte(rng.UintN(256))
			}
			_ = nc.Publish(s, junk)
			_ = nc.Publish(s, nil)
			sent += 2
		}
		if rng.IntN(10) == 0 && len(subjects) > 0 {
			_ = nc.Publish(subjects[rng.IntN(len(subjects))], blob)
			sent++
		}
		_ = nc.Publish("vlp."+c.Job+".coord."+api[rng.IntN(len(api))], []byte(`{"v":1,"token":"x","body":{"garbage":`))
		sent++
		time.Sleep(10 * time.Millisecond)
	}
	_, took := c.WaitStatus(30*time.Second-time.Since(start), "20 more steps despite the garbage", func(s *coordinator.JobStatus) bool {
		return s.Step >= st.Step+20 && s.Generation.Ready
	})
	t.Logf("%d garbage messages in 3 s on ring and API subjects; 20 more steps %v after they stopped", sent, took.Round(time.Millisecond))
	finished(t, c, 120*time.Second)
	exactlyOnce(t, c, pairs)
}

// TestCoordinatorMinorityPartition: three coordinators; the Raft leader's host is cut off for
// 8 s. Bounds: a new leader serves and the ring commits again within 90 s (measured 5 to 55 s,
// not yet understood: docs/reliability.md); after the heal the cut host's NATS server answers
// again and the group has three voters within 20 s; every pair once.
func TestCoordinatorMinorityPartition(t *testing.T) {
	long(t)
	const pairs = 3600
	c := NewCluster(t, Binary(t), Options{Coordinators: 3, Spec: LinearSpec(pairs)})
	st, _ := training(c, 90*time.Second, 10, "w1", "w2", "w3")
	leader := st.Leader
	h := c.Net.Host(leader)
	if err := h.LinkDown(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.LinkUp() })
	cut := time.Now()
	from := st.Step
	st, took := c.WaitStatus(90*time.Second, "a new leader and steps", func(s *coordinator.JobStatus) bool {
		return s.Leader != leader && s.Step > from+2
	})
	t.Logf("leader %s cut off; %s leads and the ring commits %v later", leader, st.Leader, took.Round(time.Millisecond))
	time.Sleep(8*time.Second - time.Since(cut))
	if err := h.LinkUp(); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	var out string
	for time.Since(healed) < 20*time.Second {
		// Asked through the healed host's own NATS server: it must be routed to the others again.
		o, err := c.CLI(leader, 10*time.Second, "job", "status", "--nats-url", "nats://"+leader+":4222")
		out = o
		if err == nil && strings.Contains(o, "running") {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !strings.Contains(out, "running") {
		t.Errorf("after the heal, status through %s's server:\n%s", leader, out)
	}
	members, _ := c.CLI(leader, 10*time.Second, "coordinator", "members", "--nats-url", "nats://"+leader+":4222")
	if strings.Count(members, "Voter") != 3 {
		t.Errorf("after the heal the group is not three voters:\n%s", members)
	}
	t.Logf("healed; %s's server answers again %v later", leader, time.Since(healed).Round(time.Millisecond))
	finished(t, c, 120*time.Second)
	exactlyOnce(t, c, pairs)
}

// TestStraggler: one worker's link is limited to 1 mbit for 10 s while each step all-reduces
// 400 KB of gradients. Bounds: the ring keeps committing while the limit holds (at least 10 steps
// in the 10 s, whoever is in it); within 30 s of the limit's lift the straggler trains again; every
// pair once. Its heartbeats queue behind its gradients in the token bucket, so with a 1 s lease
// TTL the coordinator may declare it dead: the test reports the generations it went through.
func TestStraggler(t *testing.T) {
	long(t)
	const pairs = 2400
	spec := strings.Replace(LinearSpec(pairs), `dim: "64"`, `dim: "100000"`, 1)
	c := NewCluster(t, Binary(t), Options{Spec: spec})
	st, _ := training(c, 60*time.Second, 10, "w1", "w2", "w3")
	gen := st.Generation.Number
	h := c.Net.Host("w2")
	if err := h.Throttle("1mbit"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Unthrottle() })
	from := st.Step
	time.Sleep(10 * time.Second)
	st, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	slow := st.Step - from
	if err := h.Unthrottle(); err != nil {
		t.Fatal(err)
	}
	if slow < 10 {
		t.Errorf("%d steps in 10 s with a 1 mbit straggler, want at least 10", slow)
	}
	lifted := time.Now()
	_, took := training(c, 30*time.Second, st.Step, "w1", "w2", "w3")
	t.Logf("1 mbit straggler: %d steps in 10 s, generations %d → %d (members now %v); it trains again %v after the lift",
		slow, gen, st.Generation.Number, Members(st), time.Since(lifted).Round(time.Millisecond))
	_ = took
	finished(t, c, 120*time.Second)
	exactlyOnce(t, c, pairs)
}
