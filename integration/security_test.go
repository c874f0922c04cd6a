package integration

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/e2evlp/vlp/coordinator"
)

// TestTCPRingWithWorkerCredentials: NATS authentication on (an operator user, a worker user,
// per-worker nkeys), two workers on two hosts, w1 joining with the shared worker user and w2 with
// its own nkey from `vlp nkeys --workers`, the ring over TCP between the hosts with the default
// --ring-security auth. Bounds: both train within 30 s, w2 known to the coordinator by its key
// and w1 by none; `vlp job stop` with the worker's credentials fails in under 5 s (its --timeout
// is 30 s) with one error naming the lacking permission, and leaves the job running; the epoch
// completes within 60 s with every pair once. The workers' replies come under their own inbox
// prefixes, so this also runs `vlp worker join` under both kinds of worker permissions end to end.
func TestTCPRingWithWorkerCredentials(t *testing.T) {
	const pairs = 1200
	c := NewCluster(t, Binary(t), Options{Workers: 2, Spec: LinearSpec(pairs), RingTransport: "tcp", Credentials: true, WorkerNkeys: []string{"w2"}})
	st, _ := training(c, 30*time.Second, 5, "w1", "w2")
	for _, m := range st.Generation.Members {
		if want := c.Net.Host(m.Name).IP + ":7100"; m.Addr != want {
			t.Fatalf("%s rings at %q, want its own host's TCP listener %s", m.Name, m.Addr, want)
		}
		if own := strings.HasPrefix(m.Identity, "U"); own != (m.Name == "w2") {
			t.Fatalf("%s joined as nkey %q: want w2 on its own key, w1 on the shared user", m.Name, m.Identity)
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

// TestPerWorkerNkeysRevoked: three workers, each on its own nkey from `vlp nkeys --workers`, ring
// over NATS, so every worker's credential may read only its own ring links and inbox. The
// operator revokes w3 by deleting its line from the registry. Bounds: w3 exits within 10 s with
// an error naming its key as revoked or unregistered, the survivors commit again without it
// within 15 s, and the epoch completes within 120 s with every pair once (w3's committed share
// included).
func TestPerWorkerNkeysRevoked(t *testing.T) {
	long(t)
	const pairs = 2400
	c := NewCluster(t, Binary(t), Options{Spec: LinearSpec(pairs), WorkerNkeys: []string{"w1", "w2", "w3"}})
	st, _ := training(c, 60*time.Second, 0, "w1", "w2", "w3")
	for _, m := range st.Generation.Members {
		if !strings.HasPrefix(m.Identity, "U") {
			t.Fatalf("%s joined as nkey %q: want its own key", m.Name, m.Identity)
		}
	}
	revokedAt := st.Step
	t0 := time.Now()
	c.RevokeWorkerKey("w3")
	victim := c.Workers["w3"]
	if exited, err := victim.Wait(10 * time.Second); !exited || err == nil || !strings.Contains(victim.Log(), "or it was revoked") {
		t.Fatalf("w3 after its key was revoked: exited %v (%v); want an exit with the refusal:\n%s", exited, err, victim.Tail(2000))
	}
	t.Logf("w3 exited %v after the revocation: %s", time.Since(t0).Round(time.Millisecond), lastLine(victim.Log()))
	_, took := c.WaitStatus(15*time.Second, "the survivors to commit without w3", func(s *coordinator.JobStatus) bool {
		return !slices.Contains(Members(s), "w3") && s.Step > revokedAt+1
	})
	t.Logf("revoked w3 at step ~%d; survivors committed again after %v", revokedAt, took.Round(time.Millisecond))
	finished(t, c, 120*time.Second)
	exactlyOnce(t, c, pairs)
}
