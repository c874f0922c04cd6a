package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/e2evlp/vlp/coordinator"
)

// TestTCPRingWithWorkerCredentials: NATS authentication on (an operator user, a worker user),
// two workers on two hosts joining with the worker user, the ring over TCP between the hosts
// with the default --ring-security auth. Bounds: both train within 30 s; `vlp job stop` with the
// worker's credentials fails in under 5 s (its --timeout is 30 s) with one error naming the
// lacking permission, and leaves the job running; the epoch completes within 60 s with every pair
// once. The workers' replies come under their own inbox prefix, so this also runs `vlp worker
// join` under the worker permissions end to end.
func TestTCPRingWithWorkerCredentials(t *testing.T) {
	const pairs = 1200
	c := NewCluster(t, Binary(t), Options{Workers: 2, Spec: LinearSpec(pairs), RingTransport: "tcp", Credentials: true})
	st, _ := training(c, 30*time.Second, 5, "w1", "w2")
	for _, m := range st.Generation.Members {
		if want := c.Net.Host(m.Name).IP + ":7100"; m.Addr != want {
			t.Fatalf("%s rings at %q, want its own host's TCP listener %s", m.Name, m.Addr, want)
		}
	}
	start := time.Now()
	out, err := c.CLI("c1", 40*time.Second, "job", "stop", "--timeout", "30s", "--nats-user", WorkerUser[0], "--nats-password", WorkerUser[1])
	took := time.Since(start)
	if err == nil || took > 5*time.Second || strings.Count(out, "Permissions Violation") != 1 || !strings.Contains(out, "lack permission") {
		t.Fatalf("vlp job stop with the worker's credentials (%v, err %v): want one permission error in well under --timeout 30s:\n%s", took, err, out)
	}
	t.Logf("vlp job stop with the worker's credentials failed after %v: %s", took.Round(time.Millisecond), strings.TrimSpace(out))
	if st, err := c.Status(); err != nil || st.State != coordinator.JobRunning {
		t.Fatalf("after the worker's stop attempt: %v %+v", err, st)
	}
	finished(t, c, 60*time.Second)
	exactlyOnce(t, c, pairs)
}
