package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/e2evlp/vlp/allreduce"
	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/worker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"
)

const catWorker = "WORKER"

var workerCommand = &cli.Command{
	Name:  "worker",
	Usage: "run a training worker",
	Subcommands: []*cli.Command{
		workerJoinCommand,
	},
}

var workerJoinCommand = &cli.Command{
	Name:  "join",
	Usage: "join a job and train until it completes, it is stopped, or SIGTERM (finish the step, leave)",
	Description: "The worker joins the job's coordinator through NATS, takes a rank in the current ring\n" +
		"generation, receives the training state by broadcast (or loads the latest verified\n" +
		"checkpoint when the job starts), and trains: batch, forward/backward, bucketed ring\n" +
		"all-reduce, clip, AdamW. The model comes from the job spec (model: linear, or a preset).",
	Flags: append([]cli.Flag{
		&cli.StringFlag{Name: "coordinator", Category: catNATS, EnvVars: []string{"VLP_COORDINATOR"}, Usage: "alias of --nats-url: the NATS URL(s) the coordinator serves on"},
		&cli.StringFlag{Name: "name", Category: catWorker, EnvVars: []string{"VLP_WORKER_NAME"}, Usage: "name in the member list (default: host name and pid)"},
		&cli.StringFlag{Name: "device", Value: "cpu", Category: catWorker, EnvVars: []string{"VLP_DEVICE"}, Usage: "cpu or cuda:N"},
		&cli.StringFlag{Name: "data", Category: catWorker, EnvVars: []string{"VLP_DATA"}, Usage: "training data: a shard directory (manifest.json + shards; default: the job's dataset), a fine-tuning task's records file (vlp downstream import; checked against the job's sha256), or synth (the in-memory synthetic shapes world the job's options describe; the default when the job names no dataset)"},
		&cli.StringFlag{Name: "vocab", Category: catWorker, EnvVars: []string{"VLP_VOCAB"}, Usage: "the tokenizer's vocab.txt (default: the job's; its sha256 must match the job's)"},
		&cli.StringFlag{Name: "pair-log", Category: catWorker, EnvVars: []string{"VLP_PAIR_LOG"}, Usage: "append the epoch and manifest pair id of every pair this worker consumed in a committed step to this file (shard data only)"},
		&cli.StringFlag{Name: "ring-transport", Value: "nats", Category: catWorker, EnvVars: []string{"VLP_RING_TRANSPORT"}, Usage: "auto, nats, tcp, shm (every worker of the job on this host, through /dev/shm) or hier (hierarchical: shared memory within each host, one leader per host over TCP, else NATS, between hosts; a worker's host is its --ring-advertise/--ring-listen host part)"},
		&cli.StringFlag{Name: "ring-listen", Value: "127.0.0.1:0", Category: catWorker, EnvVars: []string{"VLP_RING_LISTEN"}, Usage: "TCP ring listener (tcp, auto, hier)"},
		&cli.StringFlag{Name: "ring-advertise", Category: catWorker, EnvVars: []string{"VLP_RING_ADVERTISE"}, Usage: "host:port neighbours dial (default: the listener's address)"},
		&cli.StringFlag{Name: "ring-security", Value: "auth", Category: catWorker, EnvVars: []string{"VLP_RING_SECURITY"}, Usage: "TCP ring frames: auth (a tag per frame, keyed from the job token), encrypt (AES-GCM), or plain (trusted networks only); the same on every worker"},
		&cli.StringFlag{Name: "checkpoint-dir", Category: catWorker, EnvVars: []string{"VLP_CHECKPOINT_DIR"}, Usage: "where rank 0 writes checkpoints (checkpoints.db); empty: none"},
		&cli.Uint64Flag{Name: "max-steps", Category: catWorker, EnvVars: []string{"VLP_MAX_STEPS"}, Usage: "stop at this global step (0: the job's hyper.max_steps, else run to completion)"},
		&cli.StringFlag{Name: "metrics-addr", Category: catWorker, EnvVars: []string{"VLP_METRICS_ADDR"}, Usage: "serve Prometheus /metrics here (empty: none)"},
		&cli.StringFlag{Name: "tb-dir", Category: catWorker, EnvVars: []string{"VLP_TB_DIR"}, Usage: "write TensorBoard event files of the losses here (rank 0's view)"},
		&cli.BoolFlag{Name: "publish-steps", Category: catWorker, EnvVars: []string{"VLP_PUBLISH_STEPS"}, Usage: "publish each step's summary on vlp.<job>.events.step (progress displays)"},
		&cli.IntFlag{Name: "threads", Category: catWorker, EnvVars: []string{"VLP_THREADS"}, Usage: threadsUsage},
		&cli.DurationFlag{Name: "generation-timeout", Value: 60 * time.Second, Category: catWorker, Usage: "longest wait for the next ring generation"},
		&cli.DurationFlag{Name: "step-timeout", Value: worker.DefaultConfig().StepTimeout, Category: catWorker, EnvVars: []string{"VLP_STEP_TIMEOUT"}, Usage: "longest a training step (lease broadcast, forward/backward, all-reduce) may take before it is abandoned and the worker joins again"},
		&cli.DurationFlag{Name: "ring-peer-timeout", Value: allreduce.DefaultConfig().PeerTimeout, Category: catWorker, EnvVars: []string{"VLP_RING_PEER_TIMEOUT"}, Usage: "silence after which a ring neighbour is declared lost (heartbeats every second)"},
		&cli.DurationFlag{Name: "rejoin-after", Value: worker.DefaultConfig().RejoinAfter, Category: catWorker, EnvVars: []string{"VLP_REJOIN_AFTER"}, Usage: "after a ring failure with no new generation, wait this long, then join again (more than the coordinator's lease TTL)"},
		&cli.StringFlag{Name: "commit-log", Category: catWorker, EnvVars: []string{"VLP_COMMIT_LOG"}, Usage: "append every committed step (every rank's segments: epoch, unit, offset, count) to this file as JSON lines, any model"},
	}, apiClientFlags...),
	Action: workerJoin,
}

// stepSubject is where workers started with --publish-steps publish their
// step summaries.
func stepSubject(job string) string { return "vlp." + job + ".events.step" }

func workerJoin(c *cli.Context) error {
	log, err := cliLogger(c)
	if err != nil {
		return err
	}
	n := natsConfig(c)
	if u := c.String("coordinator"); u != "" {
		n.URL = u
	}
	token, err := jobToken(c)
	if err != nil {
		return err
	}
	name := c.String("name")
	if name == "" {
		h, _ := os.Hostname()
		name = h + "-" + strconv.Itoa(os.Getpid())
	}
	log = log.With("name", name)
	opts, err := n.ConnectOptions("vlp-worker-" + name)
	if err != nil {
		return err
	}
	// A server cut off by the network drops no connection: only pings find it dead. nats.go's
	// default (2 minutes) would stall the worker that long; this finds it in about 6 s.
	opts = append(opts, nats.PingInterval(2*time.Second), nats.MaxPingsOutstanding(2))
	// A worker on an nkey is that key to the coordinator: its requests, replies and ring frames
	// go to subjects that carry it, the only ones its own credential may use (a shared key may
	// use them too). The worker credentials may subscribe to replies under the workers' inbox
	// prefix only.
	identity, err := workerIdentity(n.NkeySeedFile)
	if err != nil {
		return err
	}
	revoked := make(chan error, 1)
	opts = append(opts, nats.CustomInboxPrefix(coordinator.WorkerInbox(c.String("job"), identity)), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrAuthorization) {
			select {
			case revoked <- err:
			default:
			}
			return
		}
		log.Warn("NATS", "err", err)
	}))
	cl, err := coordinator.Dial(n.URL, c.String("job"), token, opts, coordinator.WithIdentity(identity))
	if err != nil {
		return credentialsRefused(err, identity)
	}
	defer cl.Close()

	// The job spec names the model; ask before building anything.
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	st, err := cl.Status(ctx)
	cancel()
	if err != nil {
		return explain(err)
	}
	if st.Job == nil {
		return fmt.Errorf("worker: job %q has no spec yet (vlp job submit)", c.String("job"))
	}
	learner, closeLearner, extras, err := newLearner(c, *st.Job, log)
	if err != nil {
		return err
	}
	defer closeLearner()

	rcfg := allreduce.Config{Logger: log, PeerTimeout: c.Duration("ring-peer-timeout")}
	rings := &worker.TransportRings{Kind: c.String("ring-transport"), Config: rcfg, Endpoints: allreduce.Endpoints{NATS: cl.Conn(), Logger: log}}
	cfg := worker.DefaultConfig()
	switch rings.Kind {
	case allreduce.KindNATS, allreduce.KindTCP, allreduce.KindAuto, allreduce.KindShm, allreduce.KindHier:
	default:
		return fmt.Errorf("--ring-transport %q: want auto, nats, tcp, shm or hier", rings.Kind)
	}
	if k := rings.Kind; k == allreduce.KindNATS && c.IsSet("ring-security") {
		return fmt.Errorf("--ring-security applies to TCP ring links (--ring-transport tcp or auto); a NATS ring is protected by NATS TLS (--nats-ca)")
	}
	if k := rings.Kind; k == allreduce.KindShm && c.IsSet("ring-security") {
		return fmt.Errorf("--ring-security applies to TCP ring links (--ring-transport tcp or auto); a shared-memory ring never leaves the host (its /dev/shm files are the user's alone)")
	}
	if k := rings.Kind; k == allreduce.KindTCP || k == allreduce.KindAuto || k == allreduce.KindHier {
		sec, err := allreduce.ParseRingSecurity(c.String("ring-security"))
		if err != nil {
			return fmt.Errorf("--ring-security: %w", err)
		}
		node, err := allreduce.ListenTCP(c.String("ring-listen"), allreduce.TCPConfig{Job: c.String("job"), Token: []byte(token), Security: sec, Logger: log})
		if err != nil {
			return err
		}
		defer node.Close()
		rings.Endpoints.TCP = node
		cfg.Addr = node.Addr()
		if a := c.String("ring-advertise"); a != "" {
			cfg.Addr = a
		}
	}
	cfg.Name, cfg.Device, cfg.Logger = name, c.String("device"), log
	cfg.Server = cl.Conn().ConnectedServerName()
	cfg.CheckpointDir = c.String("checkpoint-dir")
	cfg.Checksums = extras.checksums
	cfg.MaxSteps = c.Uint64("max-steps")
	cfg.GenerationTimeout = c.Duration("generation-timeout")
	cfg.StepTimeout, cfg.RejoinAfter = c.Duration("step-timeout"), c.Duration("rejoin-after")
	if addr := c.String("metrics-addr"); addr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
		cfg.Metrics = worker.NewMetrics(reg)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		log.Info("metrics", "addr", ln.Addr().String())
	}
	var hooks []func(worker.StepSummary)
	if dir := c.String("tb-dir"); dir != "" {
		// Rank 0's view of the losses; the file is created when this worker
		// first commits a step as rank 0.
		var tb *worker.EventWriter
		defer func() {
			if tb != nil {
				tb.Close()
			}
		}()
		hooks = append(hooks, func(s worker.StepSummary) {
			if s.Rank != 0 {
				return
			}
			if tb == nil {
				var err error
				if tb, err = worker.NewEventWriter(dir, name); err != nil {
					log.Warn("no event file", "err", err)
					return
				}
			}
			tb.Scalars(s)
		})
	}
	if c.Bool("publish-steps") {
		nc, subj := cl.Conn(), stepSubject(c.String("job"))
		hooks = append(hooks, func(s worker.StepSummary) {
			if s.Rank == 0 {
				if b, err := json.Marshal(s); err == nil {
					_ = nc.Publish(subj, b)
				}
			}
		})
	}
	cfg.OnStep = func(s worker.StepSummary) {
		for _, h := range hooks {
			h(s)
		}
	}
	var w *worker.Worker
	if extras.onCommit != nil {
		cfg.OnCommit = func(cm worker.Commit) { extras.onCommit(w.ID(), cm) }
	}
	if path := c.String("commit-log"); path != "" {
		clog, err := worker.OpenCommitLog(path)
		if err != nil {
			return err
		}
		defer clog.Close()
		inner := cfg.OnCommit
		cfg.OnCommit = func(cm worker.Commit) {
			if err := clog.Write(w.ID(), cm); err != nil {
				log.Warn("commit log", "err", err)
			}
			if inner != nil {
				inner(cm)
			}
		}
	}
	w, err = worker.New(cfg, cl, rings, learner)
	if err != nil {
		return err
	}
	if rings.Kind == allreduce.KindNATS || rings.Kind == allreduce.KindAuto || rings.Kind == allreduce.KindHier {
		// A NATS ring loses the frames in flight when the connection reconnects: abandon the step
		// at once instead of at --step-timeout.
		cl.Conn().SetReconnectHandler(func(*nats.Conn) {
			log.Warn("NATS reconnected: abandoning the ring step in flight")
			w.RingInterrupted()
		})
	}
	// SIGTERM or SIGINT: finish the step and leave; a second one: exit now.
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	runCtx, hard := context.WithCancel(c.Context)
	defer hard()
	refused := make(chan error, 1)
	go func() {
		// The server refused this worker's credentials after it had joined (its key revoked):
		// nothing it sends is heard any more, so stop now with that reason.
		defer close(refused)
		select {
		case err := <-revoked:
			err = credentialsRefused(err, identity)
			log.Error("NATS refused this worker's credentials: exiting", "err", err)
			refused <- err
			hard()
		case <-runCtx.Done():
		}
	}()
	go func() {
		s, ok := <-sig
		if !ok {
			return
		}
		log.Info("signal: finishing the step, then leaving", "signal", s.String())
		w.Stop()
		if _, ok := <-sig; ok {
			log.Warn("second signal: exiting now")
			hard()
		}
	}()
	res, err := w.Run(runCtx)
	hard()
	if rerr := <-refused; rerr != nil {
		return rerr
	}
	if err != nil {
		return err
	}
	log.Info("worker done", "reason", res.Reason, "step", res.Step, "generations", res.Generations)
	fmt.Fprintf(c.App.Writer, "worker %s: %s at step %d after %d generation(s)\n", name, res.Reason, res.Step, res.Generations)
	return nil
}

// workerIdentity is the public key of the worker's --nats-nkey-seed ("" without one).
func workerIdentity(seedFile string) (string, error) {
	if seedFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(seedFile)
	if err != nil {
		return "", fmt.Errorf("--nats-nkey-seed: %w", err)
	}
	kp, err := nkeys.ParseDecoratedNKey(b)
	if err != nil {
		if kp, err = nkeys.FromSeed(bytes.TrimSpace(b)); err != nil {
			return "", fmt.Errorf("--nats-nkey-seed %s: not an nkey seed: %w", seedFile, err)
		}
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return "", fmt.Errorf("--nats-nkey-seed %s: want a user seed (SU…, from vlp nkeys)", seedFile)
	}
	return pub, nil
}

// credentialsRefused explains an authorization violation: which credential NATS refused and what
// to check.
func credentialsRefused(err error, identity string) error {
	if !errors.Is(err, nats.ErrAuthorization) {
		return err
	}
	if identity != "" {
		return fmt.Errorf("worker: NATS refused this worker's nkey %s (%w): it is not registered with the coordinators "+
			"(--nats-worker-nkeys, or --nats-worker-nkey for a shared key), or it was revoked", identity, err)
	}
	return fmt.Errorf("worker: NATS refused this worker's credentials (%w): check --nats-user/--nats-password "+
		"against the coordinators' --nats-worker-user/--nats-worker-password", err)
}

// newLearner builds the model the job spec names: "linear" (pure Go, no LibTorch; options dim
// and compute), or an E2E-VLP preset trained on the data --data names. A worker flag the job's
// model has no use for is refused, as is a spec field (worker.ResolveLinearJob,
// train.Resolve).
func newLearner(c *cli.Context, spec coordinator.JobSpec, log *slog.Logger) (worker.Learner, func(), learnerExtras, error) {
	if spec.Model != "linear" {
		return newVLPLearner(c, spec, log)
	}
	j, err := linearJob(c, spec)
	if err != nil {
		return nil, nil, learnerExtras{}, err
	}
	return worker.NewLinearLearner(j.Dim, uint32(max(spec.Units.PerUnit, 1)), j.Hyper), func() {}, learnerExtras{}, nil
}

// linearJob resolves a linear job's spec (worker.ResolveLinearJob), refusing the worker flags
// the linear model has no use for.
func linearJob(c *cli.Context, spec coordinator.JobSpec) (worker.LinearJob, error) {
	if d := c.String("device"); d != "cpu" {
		return worker.LinearJob{}, fmt.Errorf("worker: --device %s: the job's model is linear, which runs on the CPU, in Go", d)
	}
	for _, f := range []string{"threads", "data", "vocab", "pair-log"} {
		if c.IsSet(f) {
			return worker.LinearJob{}, fmt.Errorf("worker: --%s does not apply: the job's model is linear (pure Go, no LibTorch, no data)", f)
		}
	}
	return worker.ResolveLinearJob(spec)
}

// randomToken is a fresh job token for an embedded run.
func randomToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
