package worker

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/e2evlp/vlp/allreduce"
	"github.com/e2evlp/vlp/coordinator"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Workers on their own nkeys train over a NATS ring: each credential may subscribe only to its
// own ring links (coordinator.WorkerNkeyPermissions), so the ring must deliver every frame to the
// receiver's own subjects (allreduce.Member.Subject) or no step commits. Also with one worker on
// its own key and one on the shared worker password in the same ring. Every step is committed
// once by both.
func TestWorkersOnOwnNkeysTrain(t *testing.T) {
	const steps = 10
	for _, tc := range []struct {
		name   string
		shared []bool // per worker: the shared password instead of its own key
	}{{"own keys", []bool{false, false}}, {"own key beside the shared password", []bool{false, true}}} {
		t.Run(tc.name, func(t *testing.T) {
			keys := coordinator.NewTestWorkerKeys(t, "a", "b")
			op, _ := nkeys.CreateUser()
			opSeed, _ := op.Seed()
			opFile := filepath.Join(t.TempDir(), "operator.nk")
			if err := os.WriteFile(opFile, opSeed, 0o600); err != nil {
				t.Fatal(err)
			}
			c := coordinator.MakeCluster(t, 1, coordinator.WithJob(testJob, testToken), coordinator.WithConfig(func(i int, cfg *coordinator.Config) {
				cfg.NATS.NkeySeedFile, cfg.NATS.WorkerNkeysFile = opFile, keys.File
				cfg.NATS.Embedded.WorkerUser, cfg.NATS.Embedded.WorkerPassword = "worker", "wk-pass"
			}))
			url := c.Leader(t).NATSURL()
			opt, err := nats.NkeyOptionFromSeed(opFile)
			if err != nil {
				t.Fatal(err)
			}
			operator, err := coordinator.Dial(url, testJob, testToken, []nats.Option{opt})
			if err != nil {
				t.Fatal(err)
			}
			defer operator.Close()
			spec := testSpec(4096, 8, 12, 2)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := operator.Submit(ctx, spec.WithDefaults()); err != nil {
				t.Fatalf("submit: %v", err)
			}
			var led ledger
			type run struct {
				res Result
				err error
			}
			done := make(chan run, 2)
			log := testLogger(t)
			names := []string{"a", "b"}
			for i, name := range names {
				opts := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}
				var copts []coordinator.ClientOption
				if tc.shared[i] {
					opts = append(opts, nats.UserInfo("worker", "wk-pass"), nats.CustomInboxPrefix(coordinator.WorkerInboxPrefix(testJob)))
				} else {
					opts = append(opts, keys.Options(testJob, name)...)
					copts = append(copts, coordinator.WithIdentity(keys.Pub(name)))
				}
				cl, err := coordinator.Dial(url, testJob, testToken, opts, append(copts, coordinator.WithWatchPoll(200*time.Millisecond))...)
				if err != nil {
					t.Fatalf("dial %s: %v", name, err)
				}
				t.Cleanup(cl.Close)
				cfg := DefaultConfig()
				cfg.Name, cfg.Logger, cfg.MaxSteps = name, log.With("node", name), steps
				cfg.GenerationTimeout, cfg.StepTimeout, cfg.RequestTimeout = 20*time.Second, 20*time.Second, 5*time.Second
				cfg.BucketBytes = 48
				cfg.OnCommit = led.hook(name)
				rcfg := allreduce.Config{PeerTimeout: 3 * time.Second, HeartbeatInterval: 200 * time.Millisecond, Timeout: 20 * time.Second, Logger: cfg.Logger}
				rings := NATSRings(cl.Conn(), rcfg, cfg.Logger)
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
			checkStepsOnce(t, led.consumed(t, names, steps, 8), steps, 12)
		})
	}
}
