package coordinator

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

func TestParseWorkerKeys(t *testing.T) {
	a, _ := nkeys.CreateUser()
	b, _ := nkeys.CreateUser()
	pa, _ := a.PublicKey()
	pb, _ := b.PublicKey()
	seed, _ := a.Seed()
	for _, tc := range []struct {
		name, file, want string
		keys             int
	}{
		{"two named keys, comments and blanks", "# workers\n\n" + pa + " w1\n  " + pb + "   w2  \n", "", 2},
		{"a key without a name", pa + "\n", "", 1},
		{"empty: every worker revoked", "# none\n", "", 0},
		{"a seed instead of its public key", string(seed) + " w1\n", "a seed, which is the worker's secret", 0},
		{"not a key", "hello w1\n", "not a public user nkey", 0},
		{"a key twice", pa + " w1\n" + pa + " w2\n", "listed twice", 0},
		{"a name twice", pa + " w1\n" + pb + " w1\n", `name "w1" already names the key on line 1`, 0},
		{"three fields", pa + " w1 extra\n", "got 3 fields", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseWorkerKeys([]byte(tc.file), "workers.pub")
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "workers.pub:") {
					t.Fatalf("got %v, want an error at its line naming %q", err, tc.want)
				}
				return
			}
			if err != nil || k.Len() != tc.keys {
				t.Fatalf("got %v, %d keys; want %d", err, k.Len(), tc.keys)
			}
		})
	}
	k, _ := ParseWorkerKeys([]byte(pa+" w1\n"+pb+"\n"), "f")
	if !k.Has(pa) || k.Name(pa) != "w1" || k.Name(pb) != pb[:8] || k.Has("UNOPE") {
		t.Fatalf("registry: %v %q %q", k.Keys(), k.Name(pa), k.Name(pb))
	}
}

// perWorkerCluster is one coordinator whose embedded server has the operator's nkey, the
// workers' own keys from keys.File, a shared worker user and, when shared is set, a shared worker
// nkey. Leases last long enough that the test's clients need not heartbeat.
func perWorkerCluster(t *testing.T, keys *TestWorkerKeys, shared string) (*Cluster, *Client) {
	t.Helper()
	op, _ := nkeys.CreateUser()
	opSeed, _ := op.Seed()
	opFile := filepath.Join(t.TempDir(), "operator.nk")
	if err := os.WriteFile(opFile, opSeed, 0o600); err != nil {
		t.Fatal(err)
	}
	c := MakeCluster(t, 1, WithConfig(func(i int, cfg *Config) {
		cfg.NATS.NkeySeedFile = opFile
		cfg.NATS.WorkerNkeysFile = keys.File
		cfg.NATS.Embedded.WorkerUser, cfg.NATS.Embedded.WorkerPassword = "worker", "wk-pass"
		cfg.NATS.Embedded.WorkerNkey = shared
		cfg.HeartbeatInterval, cfg.LeaseTTL = time.Second, 30*time.Second
		cfg.WorkerKeysPoll = 100 * time.Millisecond
	}))
	opt, err := nats.NkeyOptionFromSeed(opFile)
	if err != nil {
		t.Fatal(err)
	}
	operator, err := Dial(c.Leader(t).NATSURL(), "test", "secret", []nats.Option{opt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(operator.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := operator.Submit(ctx, testSpec("test")); err != nil {
		t.Fatalf("submit: %v", err)
	}
	return c, operator
}

// ownKeyClient connects as worker name with its own nkey and inbox, calling on its own subjects.
func ownKeyClient(t *testing.T, c *Cluster, keys *TestWorkerKeys, name string, extra ...nats.Option) *Client {
	t.Helper()
	cl, err := Dial(c.Leader(t).NATSURL(), "test", "secret", append(keys.Options("test", name), extra...),
		WithIdentity(keys.Pub(name)), WithRequestTimeout(2*time.Second), WithDefaultDeadline(10*time.Second))
	if err != nil {
		t.Fatalf("worker %s: %v", name, err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func memberIdentities(t *testing.T, cl *Client) map[uint64]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]string{}
	for _, m := range st.Generation.Members {
		out[m.WorkerID] = m.Identity
	}
	return out
}

// Each worker on its own nkey: it joins as itself (the coordinator records the key the subject
// carries, not one the body claims); its credential cannot read another worker's inbox or ring
// frames, nor the shared ones; it cannot heartbeat or leave as another worker, through its own
// subjects (forbidden by the coordinator) or through the other's (refused by NATS); the shared
// worker credential cannot act for a worker on its own key either; and a registered key that
// holds no member gets no lease.
func TestPerWorkerNkeysIsolateWorkers(t *testing.T) {
	keys := NewTestWorkerKeys(t, "a", "b", "c")
	c, operator := perWorkerCluster(t, keys, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	a := ownKeyClient(t, c, keys, "a")
	b := ownKeyClient(t, c, keys, "b")
	ra, err := a.Join(ctx, JoinRequest{Name: "a", Instance: "ia", Identity: keys.Pub("b")}) // the claim is ignored
	if err != nil {
		t.Fatalf("a joins: %v", err)
	}
	rb, err := b.Join(ctx, JoinRequest{Name: "b", Instance: "ib"})
	if err != nil {
		t.Fatalf("b joins: %v", err)
	}
	ids := memberIdentities(t, operator)
	if ids[ra.WorkerID] != keys.Pub("a") || ids[rb.WorkerID] != keys.Pub("b") {
		t.Fatalf("member identities %v: want a's and b's own keys", ids)
	}
	if _, err := a.Heartbeat(ctx, ra.WorkerID, 0); err != nil {
		t.Fatalf("a's own heartbeat: %v", err)
	}

	// What a's credential may read: its own inbox and ring links, nothing of b's or the shared ones.
	var mu sync.Mutex
	var violations []string
	raw, err := nats.Connect(c.Leader(t).NATSURL(), append(keys.Options("test", "a"), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		mu.Lock()
		violations = append(violations, err.Error())
		mu.Unlock()
	}))...)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	sub := Subjects{Job: "test"}
	allowed := []string{WorkerInbox("test", keys.Pub("a")) + ".>", sub.WorkerRing(keys.Pub("a")) + ".>", sub.Events()}
	refused := []string{WorkerInbox("test", keys.Pub("b")) + ".>", sub.WorkerRing(keys.Pub("b")) + ".3.1", sub.Ring(), WorkerInboxPrefix("test") + ".>", "_INBOX.>"}
	for _, s := range append(append([]string{}, allowed...), refused...) {
		if _, err := raw.Subscribe(s, func(*nats.Msg) {}); err != nil {
			t.Fatal(err)
		}
	}
	// Publishing on b's subjects is refused too (the request below shows it through the client).
	raw.Flush()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(violations)
		mu.Unlock()
		if n >= len(refused) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	got := strings.Join(violations, "\n")
	mu.Unlock()
	for _, s := range refused {
		if !strings.Contains(got, `Subscription to "`+s+`"`) {
			t.Errorf("a's credential subscribed to %s; violations:\n%s", s, got)
		}
	}
	for _, s := range allowed {
		if strings.Contains(got, `"`+s+`"`) {
			t.Errorf("a's credential may not subscribe to its own %s:\n%s", s, got)
		}
	}

	// Acting as b through a's own subjects: the coordinator refuses.
	if _, err := a.Heartbeat(ctx, rb.WorkerID, 0); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a renews b's lease: %v, want ErrForbidden", err)
	}
	if _, err := a.Leave(ctx, rb.WorkerID); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a leaves as b: %v, want ErrForbidden", err)
	}
	// Through b's subjects with a's credential: NATS refuses the publish (and the shared
	// subjects the client falls back to).
	spoof, err := Dial(c.Leader(t).NATSURL(), "test", "secret", keys.Options("test", "a"), WithIdentity(keys.Pub("b")), WithRequestTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer spoof.Close()
	if _, err := spoof.Leave(ctx, rb.WorkerID); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("a leaves as b on b's subjects: %v, want ErrPermissionDenied", err)
	}
	// The shared worker credential cannot act for a worker on its own key, nor report for a
	// ring of them.
	shared, err := Dial(c.Leader(t).NATSURL(), "test", "secret", []nats.Option{nats.UserInfo("worker", "wk-pass"),
		nats.CustomInboxPrefix(WorkerInboxPrefix("test"))}, WithRequestTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	if _, err := shared.Heartbeat(ctx, rb.WorkerID, 0); !errors.Is(err, ErrForbidden) {
		t.Fatalf("the shared credential renews b's lease: %v, want ErrForbidden", err)
	}
	if _, err := shared.ReportProgress(ctx, ProgressRequest{Generation: ra.Generation.Number}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("the shared credential reports progress for a ring of own-key workers: %v, want ErrForbidden", err)
	}
	// c holds a key but no member: no lease for it.
	cc := ownKeyClient(t, c, keys, "c")
	if _, err := cc.LeaseUnits(ctx, LeaseRequest{Generation: rb.Generation.Number, RequestID: "c1", Asks: []LeaseAsk{{WorkerID: ra.WorkerID, Count: 1}}}); !errors.Is(err, ErrUnknownWorker) {
		t.Fatalf("a lease from a key with no member: %v, want ErrUnknownWorker", err)
	}
	// A retried join of a's instance on b's key is not a's.
	if _, err := b.Join(ctx, JoinRequest{Name: "a", Instance: "ia"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("b retries a's join: %v, want ErrForbidden", err)
	}
	ids = memberIdentities(t, operator)
	if len(ids) != 2 || ids[rb.WorkerID] != keys.Pub("b") {
		t.Fatalf("members after the attempts: %v, want a and b", ids)
	}
	if _, err := b.Leave(ctx, rb.WorkerID); err != nil {
		t.Fatalf("b leaves as itself: %v", err)
	}
}

// The shared worker credential keeps working next to the per-worker keys: the shared password
// on the shared subjects, the shared nkey on its own key's subjects; a credential refused its
// identity's subjects (an external server set up with the shared permissions only) falls back
// to the shared subjects.
func TestSharedWorkerCredentialsBesidePerWorkerKeys(t *testing.T) {
	keys := NewTestWorkerKeys(t, "a")
	sk, _ := nkeys.CreateUser()
	sharedPub, _ := sk.PublicKey()
	sharedSeed, _ := sk.Seed()
	seedFile := filepath.Join(t.TempDir(), "worker.nk")
	os.WriteFile(seedFile, sharedSeed, 0o600)
	c, operator := perWorkerCluster(t, keys, sharedPub)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	pw, err := Dial(c.Leader(t).NATSURL(), "test", "secret", []nats.Option{nats.UserInfo("worker", "wk-pass"),
		nats.CustomInboxPrefix(WorkerInbox("test", "UPRETENDED"))}, WithIdentity("UPRETENDED"), WithRequestTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	rp, err := pw.Join(ctx, JoinRequest{Name: "password", Instance: "ip"})
	if err != nil || pw.Identity() != "" {
		t.Fatalf("shared password worker: %v, identity %q; want a join on the shared subjects", err, pw.Identity())
	}
	opt, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	nk, err := Dial(c.Leader(t).NATSURL(), "test", "secret", []nats.Option{opt, nats.CustomInboxPrefix(WorkerInbox("test", sharedPub))},
		WithIdentity(sharedPub), WithRequestTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer nk.Close()
	rn, err := nk.Join(ctx, JoinRequest{Name: "shared-nkey", Instance: "in"})
	if err != nil || nk.Identity() != sharedPub {
		t.Fatalf("shared nkey worker: %v, identity %q", err, nk.Identity())
	}
	a := ownKeyClient(t, c, keys, "a")
	ra, err := a.Join(ctx, JoinRequest{Name: "a", Instance: "ia"})
	if err != nil {
		t.Fatal(err)
	}
	ids := memberIdentities(t, operator)
	if ids[rp.WorkerID] != "" || ids[rn.WorkerID] != sharedPub || ids[ra.WorkerID] != keys.Pub("a") {
		t.Fatalf("identities %v", ids)
	}
	if _, err := pw.Heartbeat(ctx, rp.WorkerID, 0); err != nil {
		t.Fatalf("shared password heartbeat: %v", err)
	}
	if _, err := nk.Heartbeat(ctx, rn.WorkerID, 0); err != nil {
		t.Fatalf("shared nkey heartbeat: %v", err)
	}
	if _, err := pw.Heartbeat(ctx, rn.WorkerID, 0); !errors.Is(err, ErrForbidden) {
		t.Fatalf("the shared password renews the shared nkey worker's lease: %v, want ErrForbidden", err)
	}
	// A mixed ring: a member joined on the shared subjects, so rank 0 may be one of them.
	if _, err := pw.ReportProgress(ctx, ProgressRequest{Generation: 1}); errors.Is(err, ErrForbidden) {
		t.Fatalf("a shared-subject report with a shared-subject member: %v", err)
	}
	for _, w := range []struct {
		cl *Client
		id uint64
	}{{pw, rp.WorkerID}, {nk, rn.WorkerID}, {a, ra.WorkerID}} {
		if _, err := w.cl.Leave(ctx, w.id); err != nil {
			t.Fatalf("leave %d: %v", w.id, err)
		}
	}
}

// Revoking a key: the registry file loses its line; within a few polls the embedded server
// disconnects that worker and refuses its key, the leader removes its member, and a request
// carrying the key is refused by the API. An unknown key never connects. A registry that no
// longer parses is not applied. The other worker carries on throughout.
func TestRevokedWorkerNkeyRefused(t *testing.T) {
	keys := NewTestWorkerKeys(t, "a", "b")
	c, operator := perWorkerCluster(t, keys, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := c.Leader(t).NATSURL()

	stranger := NewTestWorkerKeys(t, "x")
	if nc, err := nats.Connect(url, stranger.Options("test", "x")...); err == nil {
		nc.Close()
		t.Fatal("an unregistered key connected")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Fatalf("an unregistered key: %v, want an authorization violation", err)
	}

	a := ownKeyClient(t, c, keys, "a")
	closed := make(chan struct{})
	b := ownKeyClient(t, c, keys, "b", nats.ClosedHandler(func(*nats.Conn) { close(closed) }), nats.ReconnectWait(50*time.Millisecond),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})) // the revocation's reconnect errors
	ra, err := a.Join(ctx, JoinRequest{Name: "a", Instance: "ia"})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.Join(ctx, JoinRequest{Name: "b", Instance: "ib"})
	if err != nil {
		t.Fatal(err)
	}

	// A broken registry is logged and ignored: b still works.
	good, _ := os.ReadFile(keys.File)
	os.WriteFile(keys.File, append(append([]byte{}, good...), "garbage line\n"...), 0o644)
	time.Sleep(400 * time.Millisecond)
	if _, err := b.Heartbeat(ctx, rb.WorkerID, 0); err != nil {
		t.Fatalf("b after a registry that does not parse: %v", err)
	}

	start := time.Now()
	keys.Revoke("b")
	for {
		if _, still := memberIdentities(t, operator)[rb.WorkerID]; !still {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("b's member still there %v after its key was revoked", time.Since(start))
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("b's connection still open after its key was revoked (status %v)", b.Conn().Status())
	}
	t.Logf("b revoked: member removed and connection closed within %v", time.Since(start).Round(time.Millisecond))
	if nc, err := nats.Connect(url, keys.Options("test", "b")...); err == nil {
		nc.Close()
		t.Fatal("a revoked key connected")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Fatalf("a revoked key: %v, want an authorization violation", err)
	}
	// The API refuses b's key too (a replica whose file is behind may still let it connect).
	asB := NewClient(operator.Conn(), "test", "secret", WithIdentity(keys.Pub("b")))
	if _, err := asB.Status(ctx); !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "not registered") {
		t.Fatalf("a request on a revoked key's subjects: %v, want ErrUnauthorized naming the registry", err)
	}
	if _, err := a.Heartbeat(ctx, ra.WorkerID, 0); err != nil {
		t.Fatalf("a after b's revocation: %v", err)
	}
}

// Three coordinators read the same registry: a worker on its own key joins through a follower's
// server (its request crosses a route to the leader). Revoking it reloads every embedded server
// without disturbing the routes between them (each stays routed to both others), and the key is
// then refused by every server.
func TestWorkerNkeysAcrossCoordinators(t *testing.T) {
	keys := NewTestWorkerKeys(t, "a", "b")
	c := MakeCluster(t, 3, WithTCP(), WithNATS(), WithConfig(func(i int, cfg *Config) {
		cfg.NATS.User, cfg.NATS.Password = "operator", "op-pass"
		cfg.NATS.WorkerNkeysFile = keys.File
		cfg.HeartbeatInterval, cfg.LeaseTTL = time.Second, 30*time.Second
		cfg.WorkerKeysPoll = 100 * time.Millisecond
	}))
	leader := c.Leader(t)
	routed := func() bool {
		for _, s := range c.Servers() {
			if s.routedServers() != 2 {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(20 * time.Second)
	for !routed() {
		if time.Now().After(deadline) {
			t.Fatal("the NATS cluster did not form")
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	op, err := Dial(leader.NATSURL(), "test", "secret", []nats.Option{nats.UserInfo("operator", "op-pass")})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	if _, err := op.Submit(ctx, testSpec("test")); err != nil {
		t.Fatal(err)
	}
	follower := c.Followers(t)[0]
	quiet := nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}) // the revocation's reconnect errors
	a, err := Dial(follower.NATSURL(), "test", "secret", append(keys.Options("test", "a"), quiet), WithIdentity(keys.Pub("a")), WithRequestTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ra, err := a.Join(ctx, JoinRequest{Name: "a", Instance: "ia"})
	if err != nil {
		t.Fatalf("a joins through a follower's server: %v", err)
	}
	if ids := memberIdentities(t, op); ids[ra.WorkerID] != keys.Pub("a") {
		t.Fatalf("identities %v", ids)
	}
	keys.Revoke("a")
	deadline = time.Now().Add(10 * time.Second)
	for {
		refused := 0
		for _, s := range c.Servers() {
			if nc, err := nats.Connect(s.NATSURL(), keys.Options("test", "a")...); err != nil {
				refused++
			} else {
				nc.Close()
			}
		}
		if refused == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a's revoked key still accepted by %d of 3 servers", 3-refused)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !routed() {
		t.Fatal("reloading the registry broke the routes between the servers")
	}
	for _, s := range c.Servers() {
		if nc, err := nats.Connect(s.NATSURL(), keys.Options("test", "b")...); err != nil {
			t.Fatalf("b's key refused by %s after a's revocation: %v", s.ID(), err)
		} else {
			nc.Close()
		}
	}
}
