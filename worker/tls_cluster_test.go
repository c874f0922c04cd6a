package worker

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/e2evlp/vlp/allreduce"
	"github.com/e2evlp/vlp/coordinator"
	"github.com/nats-io/nats.go"
)

// A job on a shared network, hardened: three coordinators whose embedded NATS servers speak
// mutual TLS to clients and to each other's routes (the CA given as a file, as on the command
// line), operator and worker passwords, and two workers, each connected to a different server,
// with a worker credential and a client certificate. The ring runs over NATS (every frame crosses
// a TLS route between the two servers) or over direct TCP with encrypted frames; either way the
// workers train to the step asked and agree on every committed step.
func TestTLSClusterTrains(t *testing.T) {
	const steps = 12
	for _, tc := range []struct {
		name string
		kind string
		sec  allreduce.RingSecurity
	}{{"nats-ring", allreduce.KindNATS, allreduce.RingAuth}, {"tcp-ring-encrypted", allreduce.KindTCP, allreduce.RingEncrypt}} {
		t.Run(tc.name, func(t *testing.T) {
			pki := coordinator.NewTestPKI(t, "job-ca")
			c := coordinator.MakeCluster(t, 3, coordinator.WithTCP(), coordinator.WithNATS(), coordinator.WithJob(testJob, testToken),
				coordinator.WithConfig(func(i int, cfg *coordinator.Config) {
					cert := pki.Issue(fmt.Sprintf("coord%d", i), x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
					e := &cfg.NATS.Embedded
					e.TLSCert, e.TLSKey, e.TLSCA = cert.Cert, cert.Key, pki.CA
					e.WorkerUser, e.WorkerPassword = "worker", "wk-pass"
					cfg.NATS.User, cfg.NATS.Password, cfg.NATS.CAFile = "operator", "op-pass", pki.CA
				}))
			c.Leader(t)
			servers := c.Servers()
			clientCert := pki.Issue("client", x509.ExtKeyUsageClientAuth)
			dial := func(s *coordinator.Server, user, pass string) *coordinator.Client {
				t.Helper()
				cl, err := coordinator.Dial(s.NATSURL(), testJob, testToken, []nats.Option{
					nats.RootCAs(pki.CA), nats.ClientCert(clientCert.Cert, clientCert.Key), nats.UserInfo(user, pass),
					nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond),
					nats.CustomInboxPrefix(coordinator.WorkerInboxPrefix(testJob)), // the workers' inbox; the operator may use any
				}, coordinator.WithWatchPoll(200*time.Millisecond))
				if err != nil {
					t.Fatalf("dial %s: %v", s.NATSURL(), err)
				}
				t.Cleanup(cl.Close)
				return cl
			}
			spec := testSpec(4096, 8, 12, 2)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := dial(servers[0], "operator", "op-pass").Submit(ctx, spec.WithDefaults()); err != nil {
				t.Fatalf("submit: %v", err)
			}
			var led ledger
			type run struct {
				res Result
				err error
			}
			done := make(chan run, 2)
			log := testLogger(t)
			for i, name := range []string{"a", "b"} {
				cl := dial(servers[i+1], "worker", "wk-pass")
				cfg := DefaultConfig()
				cfg.Name, cfg.Logger, cfg.MaxSteps = name, log.With("node", name), steps
				cfg.GenerationTimeout, cfg.StepTimeout, cfg.RequestTimeout = 20*time.Second, 20*time.Second, 5*time.Second
				cfg.BucketBytes = 48
				cfg.OnCommit = led.hook(name)
				cfg.Server = cl.Conn().ConnectedServerName()
				rcfg := allreduce.Config{PeerTimeout: 3 * time.Second, HeartbeatInterval: 200 * time.Millisecond, Timeout: 20 * time.Second, Logger: cfg.Logger}
				rings := &TransportRings{Kind: tc.kind, Config: rcfg, Endpoints: allreduce.Endpoints{NATS: cl.Conn(), Logger: cfg.Logger}}
				if tc.kind == allreduce.KindTCP {
					node, err := allreduce.ListenTCP("127.0.0.1:0", allreduce.TCPConfig{Job: testJob, Token: []byte(testToken), Security: tc.sec, Logger: cfg.Logger})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { node.Close() })
					rings.Endpoints.TCP, cfg.Addr = node, node.Addr()
				}
				l := NewLinearLearner(testDim, uint32(spec.Units.PerUnit), LinearHyper{LR: spec.Hyper.LR, ClipNorm: spec.Hyper.ClipNorm})
				w, err := New(cfg, cl, rings, l)
				if err != nil {
					t.Fatal(err)
				}
				wctx, wcancel := context.WithTimeout(context.Background(), 90*time.Second)
				t.Cleanup(wcancel)
				go func() {
					res, err := w.Run(wctx)
					done <- run{res, err}
				}()
			}
			for range 2 {
				r := <-done
				if r.err != nil || r.res.Step != steps {
					t.Fatalf("worker ended at step %d (%q): %v", r.res.Step, r.res.Reason, r.err)
				}
			}
			checkStepsOnce(t, led.consumed(t, []string{"a", "b"}, steps, 8), steps, 12)
			if n1, n2 := servers[1].NATSServer().ID(), servers[2].NATSServer().ID(); n1 == n2 || !strings.HasPrefix(servers[1].NATSURL(), "tls://") {
				t.Fatalf("the workers were not on two TLS servers: %s %s", servers[1].NATSURL(), servers[2].NATSURL())
			}
		})
	}
}
