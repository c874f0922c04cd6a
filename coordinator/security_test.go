package coordinator

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

var (
	serverAuth = x509.ExtKeyUsageServerAuth
	clientAuth = x509.ExtKeyUsageClientAuth
)

// tlsCluster configures replica i of a three-coordinator group for TLS on clients and routes
// (mutual TLS with a client CA, else server certificates only), operator and worker passwords,
// and readiness over HTTP. The CA is a file, as on the command line.
func tlsCluster(pki *TestPKI, mutual bool) func(i int, cfg *Config) {
	return func(i int, cfg *Config) {
		usages := []x509.ExtKeyUsage{serverAuth}
		if mutual {
			usages = append(usages, clientAuth)
		}
		cert := pki.Issue(fmt.Sprintf("coord%d", i), usages...)
		e := &cfg.NATS.Embedded
		e.TLSCert, e.TLSKey = cert.Cert, cert.Key
		if mutual {
			e.TLSCA = pki.CA
		}
		e.WorkerUser, e.WorkerPassword = "worker", "wk-pass"
		cfg.NATS.User, cfg.NATS.Password = "operator", "op-pass"
		cfg.NATS.CAFile = pki.CA
		cfg.HTTPAddr = "127.0.0.1:0"
	}
}

func readyz(t *testing.T, s *Server) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + s.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// tlsClient connects to url with the CA and a client certificate.
func tlsClient(t *testing.T, url string, pki *TestPKI, cert CertFiles, extra ...nats.Option) (*nats.Conn, error) {
	t.Helper()
	opts := append([]nats.Option{nats.RootCAs(pki.CA), nats.ClientCert(cert.Cert, cert.Key), nats.Timeout(5 * time.Second)}, extra...)
	return nats.Connect(url, opts...)
}

// Three coordinators with TLS on clients and routes — server certificates with --nats-ca, or
// mutual TLS — the CA given only on the command line (no SSL_CERT_FILE): the NATS cluster forms
// (every server routed to both others), each server is ready, and a client of every server —
// the followers' too — reaches the leader's API through the routes: submit on one, status on
// the others.
func TestTLSClusterFormsAndServes(t *testing.T) {
	for _, mutual := range []bool{false, true} {
		t.Run(fmt.Sprintf("mutual=%v", mutual), func(t *testing.T) { testTLSCluster(t, mutual) })
	}
}

func testTLSCluster(t *testing.T, mutual bool) {
	pki := NewTestPKI(t, "job-ca")
	c := MakeCluster(t, 3, WithTCP(), WithNATS(), WithConfig(tlsCluster(pki, mutual)))
	c.Leader(t)
	deadline := time.Now().Add(20 * time.Second)
	for _, s := range c.Servers() {
		for {
			code, body := readyz(t, s)
			if code == http.StatusOK && s.routedServers() == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: routed to %d servers, /readyz %d %q", s.ID(), s.routedServers(), code, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	client := pki.Issue("operator-client", clientAuth)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i, s := range c.Servers() {
		url := strings.Replace(s.NATSURL(), "tls://", "nats://", 1)
		nc, err := tlsClient(t, url, pki, client, nats.UserInfo("operator", "op-pass"))
		if err != nil {
			t.Fatalf("server %d: %v", i, err)
		}
		cl := NewClient(nc, "test", "secret")
		if i == 0 {
			if _, err := cl.Submit(ctx, testSpec("test")); err != nil {
				t.Fatalf("submit through server %d: %v", i, err)
			}
		}
		st, err := cl.Status(ctx)
		if err != nil || st.State != JobRunning {
			t.Fatalf("status through server %d (leader %s): %v %+v", i, c.Leader(t).ID(), err, st)
		}
		nc.Close()
	}
}

// A server whose routes cannot form is not ready, and says why: here a route to a port that
// answers but speaks no NATS (as a peer refusing the route's certificate or password would).
// A route to a port where nobody listens is a peer that is down: that leaves the server ready.
func TestReadyzCountsRoutes(t *testing.T) {
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	go func() {
		for {
			c, err := mute.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	cfg := DefaultConfig()
	cfg.Job, cfg.Logger, cfg.Raft = "test", TestLogger(), TestRaftTimeouts(false)
	cfg.RaftAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.NATS.Embedded.Host, cfg.NATS.Embedded.Port = "127.0.0.1", -1
	cfg.NATS.Embedded.ClusterHost, cfg.NATS.Embedded.ClusterPort = "127.0.0.1", freePort(t)
	down := freePort(t)
	cfg.NATS.Embedded.Routes = []string{"nats-route://" + mute.Addr().String(), fmt.Sprintf("nats-route://127.0.0.1:%d", down)}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deadline := time.Now().Add(10 * time.Second)
	for s.raft.Leader() == "" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	code, body := readyz(t, s)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "routed to 0 of 1 peer servers whose route port answers") {
		t.Fatalf("/readyz %d %q, want 503 naming the routes", code, body)
	}
	mute.Close()
	if code, body := readyz(t, s); code != http.StatusOK {
		t.Fatalf("/readyz %d %q with every route's peer down, want 200", code, body)
	}
}

// The startup checks: each mistake an operator can make with certificates, keys, CAs and
// authentication fails NewServer at once with a message that names the flag.
func TestSecurityStartupChecks(t *testing.T) {
	pki := NewTestPKI(t, "job-ca")
	rogue := NewTestPKI(t, "rogue-ca")
	both := pki.Issue("coord", serverAuth, clientAuth)
	serverOnly := pki.Issue("coord-server-only", serverAuth)
	expired := pki.IssueExpired("coord-expired", serverAuth, clientAuth)
	foreign := rogue.Issue("coord-foreign", serverAuth, clientAuth)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate"), 0o600)
	withAuth := func(cfg *Config) { cfg.NATS.User, cfg.NATS.Password = "operator", "op-pass" }
	workers := NewTestWorkerKeys(t, "w1")
	opSeedFile := workers.Seed("w1") // a worker's seed given as the operator's
	for _, tc := range []struct {
		name string
		set  func(cfg *Config)
		want string
	}{
		{"TLS without authentication", func(cfg *Config) {
			cfg.NATS.Embedded.TLSCert, cfg.NATS.Embedded.TLSKey = both.Cert, both.Key
		}, "--nats-trusted-network"},
		{"cert without key", func(cfg *Config) {
			withAuth(cfg)
			cfg.NATS.Embedded.TLSCert = both.Cert
		}, "--nats-tls-cert (NATS.Embedded.TLSCert) needs --nats-tls-key"},
		{"client cert without key", func(cfg *Config) { cfg.NATS.CertFile = both.Cert }, "--nats-cert needs --nats-key"},
		{"missing key file", func(cfg *Config) {
			withAuth(cfg)
			cfg.NATS.Embedded.TLSCert, cfg.NATS.Embedded.TLSKey = both.Cert, both.Key+".missing"
		}, "--nats-tls-key"},
		{"expired certificate", func(cfg *Config) {
			withAuth(cfg)
			cfg.NATS.Embedded.TLSCert, cfg.NATS.Embedded.TLSKey = expired.Cert, expired.Key
		}, "not now"},
		{"garbage CA", func(cfg *Config) {
			withAuth(cfg)
			cfg.NATS.Embedded.TLSCert, cfg.NATS.Embedded.TLSKey, cfg.NATS.Embedded.TLSCA = both.Cert, both.Key, garbage
		}, "--nats-tls-client-ca"},
		{"certificate of another CA", func(cfg *Config) {
			withAuth(cfg)
			cfg.NATS.Embedded.TLSCert, cfg.NATS.Embedded.TLSKey = foreign.Cert, foreign.Key
			cfg.NATS.CAFile = pki.CA
		}, "does not verify against --nats-ca"},
		{"route certificate without clientAuth", func(cfg *Config) {
			cfg.NATS.Embedded.TLSCert, cfg.NATS.Embedded.TLSKey, cfg.NATS.Embedded.TLSCA = serverOnly.Cert, serverOnly.Key, pki.CA
			cfg.NATS.Embedded.ClusterPort = -1
		}, "clientAuth"},
		{"routes with TLS but no CA", func(cfg *Config) {
			withAuth(cfg)
			cfg.NATS.Embedded.TLSCert, cfg.NATS.Embedded.TLSKey = both.Cert, both.Key
			cfg.NATS.Embedded.ClusterPort = -1
		}, "give --nats-ca"},
		{"worker user without operator", func(cfg *Config) {
			cfg.NATS.Embedded.WorkerUser, cfg.NATS.Embedded.WorkerPassword = "w", "p"
		}, "--nats-user or --nats-nkey-seed"},
		{"worker nkey that is a seed", func(cfg *Config) {
			withAuth(cfg)
			cfg.NATS.Embedded.WorkerNkey = "SUAGARBAGE"
		}, "--nats-worker-nkey"},
		{"bad operator seed", func(cfg *Config) { cfg.NATS.NkeySeedFile = garbage }, "--nats-nkey-seed"},
		{"per-worker nkeys without operator", func(cfg *Config) { cfg.NATS.WorkerNkeysFile = workers.File }, "--nats-worker-nkeys need the operator's credential"},
		{"per-worker nkeys file missing", func(cfg *Config) {
			withAuth(cfg)
			cfg.NATS.WorkerNkeysFile = workers.File + ".missing"
		}, "--nats-worker-nkeys (NATS.WorkerNkeysFile)"},
		{"per-worker nkeys file of seeds", func(cfg *Config) {
			withAuth(cfg)
			cfg.NATS.WorkerNkeysFile = opSeedFile
		}, "a seed, which is the worker's secret"},
		{"the operator's key listed as a worker", func(cfg *Config) {
			cfg.NATS.NkeySeedFile, cfg.NATS.WorkerNkeysFile = opSeedFile, workers.File
		}, "lists the operator's key"},
		{"the shared worker nkey listed as a worker", func(cfg *Config) {
			withAuth(cfg)
			cfg.NATS.WorkerNkeysFile, cfg.NATS.Embedded.WorkerNkey = workers.File, workers.Pub("w1")
		}, "lists the shared --nats-worker-nkey"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Job, cfg.Logger, cfg.RaftAddr = "test", TestLogger(), "127.0.0.1:0"
			cfg.NATS.Embedded.Host, cfg.NATS.Embedded.Port = "127.0.0.1", -1
			tc.set(&cfg)
			s, err := NewServer(cfg)
			if err == nil {
				s.Close()
				t.Fatal("started")
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInvalidConfig naming %q", err, tc.want)
			}
		})
	}
}

// With --nats-trusted-network, TLS without authentication starts, and says so in its posture.
func TestTrustedNetworkAllowsTLSWithoutAuth(t *testing.T) {
	pki := NewTestPKI(t, "job-ca")
	cert := pki.Issue("coord", serverAuth)
	cfg := DefaultConfig()
	cfg.Job, cfg.Logger, cfg.RaftAddr = "test", TestLogger(), "127.0.0.1:0"
	cfg.NATS.Embedded.Host, cfg.NATS.Embedded.Port = "127.0.0.1", -1
	cfg.NATS.Embedded.TLSCert, cfg.NATS.Embedded.TLSKey, cfg.NATS.CAFile = cert.Cert, cert.Key, pki.CA
	cfg.NATS.Embedded.TrustedNetwork = true
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := cfg.Posture()
	for _, want := range []string{"clients=TLS", "nats-auth=NONE", "trusted-network", "job-token=NONE"} {
		if !strings.Contains(p, want) {
			t.Fatalf("posture %q lacks %q", p, want)
		}
	}
}

// Mutual TLS: the coordinator's own connection presents its server certificate (it has the
// clientAuth usage), so it starts without a client certificate of its own; a client without a
// certificate, or with one from another CA, is refused.
func TestMutualTLSClients(t *testing.T) {
	pki := NewTestPKI(t, "job-ca")
	rogue := NewTestPKI(t, "rogue-ca")
	cert := pki.Issue("coord", serverAuth, clientAuth)
	cfg := DefaultConfig()
	cfg.Job, cfg.Token, cfg.Logger, cfg.RaftAddr = "test", "secret", TestLogger(), "127.0.0.1:0"
	cfg.Raft = TestRaftTimeouts(false)
	cfg.NATS.Embedded.Host, cfg.NATS.Embedded.Port = "127.0.0.1", -1
	cfg.NATS.Embedded.TLSCert, cfg.NATS.Embedded.TLSKey, cfg.NATS.Embedded.TLSCA = cert.Cert, cert.Key, pki.CA
	start := time.Now()
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t.Logf("started under mutual TLS in %v", time.Since(start).Round(time.Millisecond))
	url := strings.Replace(s.NATSURL(), "tls://", "nats://", 1)
	if nc, err := nats.Connect(url, nats.RootCAs(pki.CA), nats.Timeout(2*time.Second)); err == nil {
		nc.Close()
		t.Fatal("a client without a certificate connected")
	}
	if nc, err := tlsClient(t, url, pki, rogue.Issue("rogue-client", clientAuth)); err == nil {
		nc.Close()
		t.Fatal("a client with another CA's certificate connected")
	}
	nc, err := tlsClient(t, url, pki, pki.Issue("client", clientAuth))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := NewClient(nc, "test", "secret").Status(ctx); err != nil {
		t.Fatal(err)
	}
}

// The coordinator's own --nats-nkey-seed works on the embedded server: it authenticates the
// operator (who may do anything), a worker nkey gets the worker's permissions, and a client
// with neither is refused.
func TestOperatorNkeyOnEmbeddedServer(t *testing.T) {
	dir := t.TempDir()
	op, _ := nkeys.CreateUser()
	wk, _ := nkeys.CreateUser()
	opSeed, _ := op.Seed()
	wkSeed, _ := wk.Seed()
	wkPub, _ := wk.PublicKey()
	opFile, wkFile := filepath.Join(dir, "op.nk"), filepath.Join(dir, "wk.nk")
	os.WriteFile(opFile, opSeed, 0o600)
	os.WriteFile(wkFile, wkSeed, 0o600)
	c := MakeCluster(t, 1, WithConfig(func(i int, cfg *Config) {
		cfg.NATS.NkeySeedFile = opFile
		cfg.NATS.Embedded.WorkerNkey = wkPub
	}))
	s := c.Leader(t)
	if nc, err := nats.Connect(s.NATSURL()); err == nil {
		nc.Close()
		t.Fatal("connected without credentials")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opt, err := nats.NkeyOptionFromSeed(opFile)
	if err != nil {
		t.Fatal(err)
	}
	opc, err := Dial(s.NATSURL(), "test", "secret", []nats.Option{opt})
	if err != nil {
		t.Fatal(err)
	}
	defer opc.Close()
	if _, err := opc.Submit(ctx, testSpec("test")); err != nil {
		t.Fatalf("operator submit: %v", err)
	}
	wopt, _ := nats.NkeyOptionFromSeed(wkFile)
	wc, err := Dial(s.NATSURL(), "test", "secret", []nats.Option{wopt, nats.CustomInboxPrefix(WorkerInboxPrefix("test"))}, WithRequestTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	if _, err := wc.Join(ctx, JoinRequest{Instance: "w"}); err != nil {
		t.Fatalf("worker join: %v", err)
	}
	sctx, scancel := context.WithTimeout(ctx, time.Second)
	defer scancel()
	if _, err := wc.Stop(sctx, "a worker tries"); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("a worker nkey's stop: %v, want ErrPermissionDenied", err)
	}
}

// Worker credentials: a worker may publish step summaries (vlp worker join --publish-steps),
// may subscribe to the workers' inboxes but not to _INBOX.> (other clients' replies) nor to the
// coordinator's request subjects, so nothing of an operator's requests (which carry the job
// token) and replies reaches it.
func TestWorkerCannotReadTheToken(t *testing.T) {
	const token = "the-job-token-1234"
	c := MakeCluster(t, 1, WithJob("test", token), WithConfig(func(i int, cfg *Config) {
		cfg.NATS.User, cfg.NATS.Password = "operator", "op-pass"
		cfg.NATS.Embedded.WorkerUser, cfg.NATS.Embedded.WorkerPassword = "worker", "wk-pass"
	}))
	url := c.Leader(t).NATSURL()
	errs := make(chan error, 16)
	wnc, err := nats.Connect(url, nats.UserInfo("worker", "wk-pass"), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer wnc.Close()
	seen := make(chan []byte, 1024)
	for _, subject := range []string{"_INBOX.>", "vlp.test.coord.>", WorkerInboxPrefix("test") + ".>"} {
		if _, err := wnc.Subscribe(subject, func(m *nats.Msg) { seen <- m.Data }); err != nil {
			t.Fatal(err)
		}
	}
	if err := wnc.Publish("vlp.test.events.step", []byte(`{"step":1}`)); err != nil {
		t.Fatal(err)
	}
	wnc.Flush()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	op, err := Dial(url, "test", token, []nats.Option{nats.UserInfo("operator", "op-pass")})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	if _, err := op.Submit(ctx, testSpec("test")); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := op.Status(ctx); err != nil {
			t.Fatal(err)
		}
	}
	wnc.Flush()
	time.Sleep(200 * time.Millisecond)
	var violations []string
	for len(errs) > 0 {
		violations = append(violations, (<-errs).Error())
	}
	slices.Sort(violations)
	if len(violations) != 2 || !strings.Contains(violations[0], `Subscription to "_INBOX.>"`) || !strings.Contains(violations[1], `Subscription to "vlp.test.coord.>"`) {
		t.Fatalf("permission violations %q: want exactly the _INBOX.> and coordinator subscriptions refused (the workers' inbox and publishing a step are allowed)", violations)
	}
	if n := len(seen); n != 0 {
		t.Fatalf("the worker received %d messages meant for the operator: %q", n, <-seen)
	}
}

// Worker credentials used for an operator command fail at once with ErrPermissionDenied, not
// after the whole deadline as "no leader": with the default inbox (as `vlp job stop` with the
// worker's credentials has it) the reply subscription is refused; with the workers' inbox the
// request's publish is. The violations are the calls' errors, not asynchronous noise (the
// caller's error handler sees none of them), and a worker's own calls work under its inbox.
func TestWorkerCredentialsFailFastOnOperatorCommands(t *testing.T) {
	c := MakeCluster(t, 1, WithJob("test", "secret"), WithConfig(func(i int, cfg *Config) {
		cfg.NATS.User, cfg.NATS.Password = "operator", "op-pass"
		cfg.NATS.Embedded.WorkerUser, cfg.NATS.Embedded.WorkerPassword = "worker", "wk-pass"
	}))
	url := c.Leader(t).NATSURL()
	op, err := Dial(url, "test", "secret", []nats.Option{nats.UserInfo("operator", "op-pass")})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := op.Submit(ctx, testSpec("test")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		inbox  []nats.Option
		status string // what a worker operation's call says: "" for a reply
	}{
		{"default inbox", nil, `Subscription to "_INBOX.`},
		{"workers' inbox", []nats.Option{nats.CustomInboxPrefix(WorkerInboxPrefix("test"))}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forwarded := make(chan error, 16)
			opts := append([]nats.Option{nats.UserInfo("worker", "wk-pass"),
				nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { forwarded <- err })}, tc.inbox...)
			w, err := Dial(url, "test", "secret", opts, WithRequestTimeout(5*time.Second), WithDefaultDeadline(30*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			for range 3 {
				start := time.Now()
				_, err = w.Stop(context.Background(), "a worker tries to stop the job")
				if !errors.Is(err, ErrPermissionDenied) || !strings.Contains(err.Error(), "Permissions Violation") {
					t.Fatalf("stop with worker credentials: %v, want ErrPermissionDenied with the server's violation", err)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Fatalf("stop with worker credentials failed after %v, want well under the 5 s request timeout", d)
				}
			}
			start := time.Now()
			_, err = w.Status(ctx)
			switch {
			case tc.status == "" && err != nil:
				t.Fatalf("a worker's status under the workers' inbox: %v", err)
			case tc.status != "" && (!errors.Is(err, ErrPermissionDenied) || !strings.Contains(err.Error(), tc.status)):
				t.Fatalf("status with worker credentials and the default inbox: %v, want ErrPermissionDenied naming %s", err, tc.status)
			case time.Since(start) > 2*time.Second:
				t.Fatalf("status took %v", time.Since(start))
			}
			w.Conn().Flush()
			if len(forwarded) != 0 {
				t.Fatalf("the caller's error handler got the client's violations: %v", <-forwarded)
			}
		})
	}
	if st, err := op.Status(ctx); err != nil || st.State != JobRunning {
		t.Fatalf("job after the workers' stop attempts: %v %+v", err, st)
	}
}
