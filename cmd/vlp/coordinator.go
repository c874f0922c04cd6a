package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/nats-io/nats.go"
	"github.com/urfave/cli/v2"
)

// Flag categories of the coordinator and job commands.
const (
	catRaft  = "RAFT"
	catNATS  = "NATS"
	catJob   = "JOB"
	catLease = "LEASES"
)

// Flags every API client command shares (coordinator members, job …): how to reach the job.
var (
	natsURLFlag = &cli.StringFlag{
		Name: "nats-url", Category: catNATS, EnvVars: []string{"VLP_NATS_URL"}, Value: "nats://127.0.0.1:4222",
		Usage: "NATS URL(s) of the job's coordinators, comma-separated",
	}
	jobFlag = &cli.StringFlag{
		Name: "job", Category: catJob, Value: "default", EnvVars: []string{"VLP_JOB"},
		Usage: "job name (the NATS subjects are vlp.<job>.*)",
	}
	tokenFlag = &cli.StringFlag{
		Name: "token", Category: catJob, EnvVars: []string{"VLP_JOB_TOKEN"},
		Usage: "job token every API request carries (prefer the env var or --token-file to the command line)",
	}
	tokenFileFlag = &cli.StringFlag{
		Name: "token-file", Category: catJob, EnvVars: []string{"VLP_JOB_TOKEN_FILE"},
		Usage: "file holding the job token",
	}
	natsUserFlag = &cli.StringFlag{
		Name: "nats-user", Category: catNATS, EnvVars: []string{"VLP_NATS_USER"},
		Usage: "NATS user (with the embedded server: the operator user, which turns authentication on)",
	}
	natsPasswordFlag = &cli.StringFlag{
		Name: "nats-password", Category: catNATS, EnvVars: []string{"VLP_NATS_PASSWORD"},
		Usage: "NATS password",
	}
	natsNkeyFlag = &cli.StringFlag{
		Name: "nats-nkey-seed", Category: catNATS, EnvVars: []string{"VLP_NATS_NKEY_SEED"},
		Usage: "file with an nkey seed to authenticate with instead of a password",
	}
	natsCAFlag = &cli.StringFlag{
		Name: "nats-ca", Category: catNATS, EnvVars: []string{"VLP_NATS_CA"},
		Usage: "CA certificate to trust for NATS TLS",
	}
	natsCertFlag = &cli.StringFlag{
		Name: "nats-cert", Category: catNATS, EnvVars: []string{"VLP_NATS_CERT"},
		Usage: "client certificate for NATS mutual TLS (with --nats-key)",
	}
	natsKeyFlag = &cli.StringFlag{
		Name: "nats-key", Category: catNATS, EnvVars: []string{"VLP_NATS_KEY"},
		Usage: "client key for NATS mutual TLS",
	}
	timeoutFlag = &cli.DurationFlag{
		Name: "timeout", Value: 30 * time.Second, EnvVars: []string{"VLP_TIMEOUT"},
		Usage: "how long to wait for a coordinator leader to answer",
	}
)

var apiClientFlags = []cli.Flag{natsURLFlag, jobFlag, tokenFlag, tokenFileFlag, natsUserFlag, natsPasswordFlag, natsNkeyFlag, natsCAFlag, natsCertFlag, natsKeyFlag, timeoutFlag}

// startFlags are the client flags a coordinator uses too, except that its --nats-url (an external
// cluster instead of the embedded server) does not read $VLP_NATS_URL: exporting that for the
// operator commands must not turn the embedded server off.
var startFlags = append([]cli.Flag{&cli.StringFlag{
	Name: "nats-url", Category: catNATS, EnvVars: []string{"VLP_NATS_EXTERNAL_URL"},
	Usage: "use this external NATS cluster instead of the embedded server",
}}, apiClientFlags[1:]...)

var coordinatorCommand = &cli.Command{
	Name:  "coordinator",
	Usage: "run and inspect the Raft-replicated job coordinator (needs no LibTorch)",
	Subcommands: []*cli.Command{
		coordinatorStartCommand,
		{
			Name:   "members",
			Usage:  "list the coordinator replicas and the leader",
			Flags:  apiClientFlags,
			Action: coordinatorMembers,
		},
		{
			Name:      "remove-peer",
			Usage:     "remove a coordinator replica that is gone for good from the Raft configuration",
			ArgsUsage: "ID",
			Flags:     apiClientFlags,
			Action:    coordinatorRemovePeer,
		},
	},
}

var coordinatorStartCommand = &cli.Command{
	Name:  "start",
	Usage: "start a coordinator replica (single node, a static 3/5-node group, or joining one)",
	Description: "With no --peers and no --join, a fresh --data-dir bootstraps a single-node group. With\n" +
		"--peers (the same list on every replica, this one included) it bootstraps a static group. With\n" +
		"--join it asks an existing group, through NATS, to add it. With --peers and --discover (the default)\n" +
		"a fresh replica first asks the listed peers whether a group exists, and joins it (the leader adds\n" +
		"it) instead of bootstrapping a second one: a group can grow by new replicas with a longer list.\n" +
		"On a data dir that already holds Raft state the replica resumes, and rejoins if it had left.\n" +
		"On SIGTERM or SIGINT a leader hands leadership over, then the replica leaves the configuration\n" +
		"(--leave-on-terminate) unless it is the only voter.",
	Flags: append([]cli.Flag{
		&cli.StringFlag{Name: "data-dir", Required: true, EnvVars: []string{"VLP_DATA_DIR"}, Category: catRaft, Usage: "Raft log, stable store (bbolt) and snapshots"},
		&cli.StringFlag{Name: "node-id", EnvVars: []string{"VLP_NODE_ID"}, Category: catRaft, Usage: "Raft id of this replica (default: the advertised Raft address)"},
		&cli.StringFlag{Name: "raft-addr", Value: "127.0.0.1:7000", EnvVars: []string{"VLP_RAFT_ADDR"}, Category: catRaft, Usage: "Raft TCP listen address"},
		&cli.StringFlag{Name: "raft-advertise", EnvVars: []string{"VLP_RAFT_ADVERTISE"}, Category: catRaft, Usage: "Raft address the peers dial (default --raft-addr)"},
		&cli.StringFlag{Name: "peers", EnvVars: []string{"VLP_PEERS"}, Category: catRaft, Usage: "static group: [id=]host:port,… of every voter, this one included"},
		&cli.StringFlag{Name: "join", EnvVars: []string{"VLP_JOIN"}, Category: catRaft, Usage: "NATS URL of an existing group to join"},
		&cli.BoolFlag{Name: "discover", Value: true, EnvVars: []string{"VLP_DISCOVER"}, Category: catRaft, Usage: "with --peers: on an empty --data-dir, join the group a listed peer already holds instead of bootstrapping; bootstrap once every listed peer answers that it has no Raft state"},
		&cli.BoolFlag{Name: "leave-on-terminate", Value: true, EnvVars: []string{"VLP_LEAVE_ON_TERMINATE"}, Category: catRaft, Usage: "on SIGTERM/SIGINT, leave the Raft configuration (after handing leadership over) so the group's quorum counts only running replicas; a restart rejoins"},
		&cli.DurationFlag{Name: "leave-timeout", Value: 5 * time.Second, EnvVars: []string{"VLP_LEAVE_TIMEOUT"}, Category: catRaft, Usage: "longest a SIGTERM waits for the leadership transfer and the leave before shutting down"},
		&cli.DurationFlag{Name: "raft-heartbeat-timeout", Value: time.Second, Category: catRaft, Usage: "follower without leader contact for this long starts an election"},
		&cli.DurationFlag{Name: "raft-election-timeout", Value: time.Second, Category: catRaft, Usage: "candidate without quorum for this long retries"},
		&cli.DurationFlag{Name: "raft-leader-lease-timeout", Value: 500 * time.Millisecond, Category: catRaft, Usage: "leader without quorum contact for this long steps down"},
		&cli.Uint64Flag{Name: "raft-snapshot-threshold", Value: 8192, Category: catRaft, Usage: "new log entries that trigger a snapshot"},
		&cli.StringFlag{Name: "nats-listen", Value: "0.0.0.0:4222", EnvVars: []string{"VLP_NATS_LISTEN"}, Category: catNATS, Usage: "embedded NATS: client listen address"},
		&cli.StringFlag{Name: "nats-cluster-listen", EnvVars: []string{"VLP_NATS_CLUSTER_LISTEN"}, Category: catNATS, Usage: "embedded NATS: route listen address (e.g. 0.0.0.0:6222) to form a NATS cluster"},
		&cli.StringFlag{Name: "nats-routes", EnvVars: []string{"VLP_NATS_ROUTES"}, Category: catNATS, Usage: "embedded NATS: the other servers' routes, nats-route://host:6222,…"},
		&cli.StringFlag{Name: "nats-worker-user", EnvVars: []string{"VLP_NATS_WORKER_USER"}, Category: catNATS, Usage: "embedded NATS: the workers' user (restricted subjects; needs --nats-user)"},
		&cli.StringFlag{Name: "nats-worker-password", EnvVars: []string{"VLP_NATS_WORKER_PASSWORD"}, Category: catNATS, Usage: "embedded NATS: the workers' password"},
		&cli.StringFlag{Name: "nats-worker-nkey", EnvVars: []string{"VLP_NATS_WORKER_NKEY"}, Category: catNATS, Usage: "embedded NATS: the workers' public user nkey (U…)"},
		&cli.StringFlag{Name: "nats-worker-nkeys", EnvVars: []string{"VLP_NATS_WORKER_NKEYS"}, Category: catNATS, Usage: "the registry of the workers' own nkeys (workers.pub from vlp nkeys --workers), reread every 2s: each worker its own NATS user limited to its own subjects (embedded NATS), and its key its identity in API requests (any NATS); delete a line to revoke"},
		&cli.StringFlag{Name: "nats-tls-cert", EnvVars: []string{"VLP_NATS_TLS_CERT"}, Category: catNATS, Usage: "embedded NATS: server certificate (TLS for clients and routes)"},
		&cli.StringFlag{Name: "nats-tls-key", EnvVars: []string{"VLP_NATS_TLS_KEY"}, Category: catNATS, Usage: "embedded NATS: server key"},
		&cli.StringFlag{Name: "nats-tls-client-ca", EnvVars: []string{"VLP_NATS_TLS_CLIENT_CA"}, Category: catNATS, Usage: "embedded NATS: require client certificates signed by this CA (clients and routes; --nats-tls-cert then needs the clientAuth usage too)"},
		&cli.BoolFlag{Name: "nats-trusted-network", EnvVars: []string{"VLP_NATS_TRUSTED_NETWORK"}, Category: catNATS, Usage: "embedded NATS: accept TLS, or routes, without authentication (nobody untrusted can reach the ports)"},
		&cli.Int64Flag{Name: "nats-max-payload", Value: 8 << 20, Category: catNATS, Usage: "embedded NATS: largest message, bytes"},
		&cli.Int64Flag{Name: "nats-max-pending", Value: 256 << 20, Category: catNATS, Usage: "embedded NATS: bytes queued for one client before it is dropped as a slow consumer"},
		&cli.StringFlag{Name: "http-addr", Value: "127.0.0.1:9090", EnvVars: []string{"VLP_HTTP_ADDR"}, Usage: "/healthz, /readyz and /metrics (empty: none)"},
		&cli.DurationFlag{Name: "heartbeat-interval", Value: time.Second, Category: catLease, Usage: "how often workers heartbeat"},
		&cli.DurationFlag{Name: "lease-ttl", Value: 3 * time.Second, Category: catLease, Usage: "silence after which a worker is declared dead"},
	}, startFlags...),
	Action: coordinatorStart,
}

// cliLogger builds the logger the --log-level flag asks for.
func cliLogger(c *cli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.String("log-level"))
	}
	return slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level})), nil
}

// jobToken reads --token or --token-file.
func jobToken(c *cli.Context) (string, error) {
	if f := c.String("token-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return c.String("token"), nil
}

// natsConfig collects the NATS credentials and TLS flags.
func natsConfig(c *cli.Context) coordinator.NATSConfig {
	return coordinator.NATSConfig{
		URL: c.String("nats-url"), User: c.String("nats-user"), Password: c.String("nats-password"),
		NkeySeedFile: c.String("nats-nkey-seed"), CAFile: c.String("nats-ca"), CertFile: c.String("nats-cert"), KeyFile: c.String("nats-key"),
	}
}

func coordinatorStart(c *cli.Context) error {
	log, err := cliLogger(c)
	if err != nil {
		return err
	}
	cfg := coordinator.DefaultConfig()
	cfg.Logger = log
	cfg.DataDir = c.String("data-dir")
	cfg.NodeID = c.String("node-id")
	cfg.RaftAddr, cfg.RaftAdvertise = c.String("raft-addr"), c.String("raft-advertise")
	if cfg.Peers, err = coordinator.ParsePeers(c.String("peers")); err != nil {
		return err
	}
	cfg.Join = c.String("join")
	cfg.Discover = c.Bool("discover")
	cfg.Job = c.String("job")
	if cfg.Token, err = jobToken(c); err != nil {
		return err
	}
	cfg.HTTPAddr = c.String("http-addr")
	cfg.HeartbeatInterval, cfg.LeaseTTL = c.Duration("heartbeat-interval"), c.Duration("lease-ttl")
	cfg.Raft.HeartbeatTimeout, cfg.Raft.ElectionTimeout = c.Duration("raft-heartbeat-timeout"), c.Duration("raft-election-timeout")
	cfg.Raft.LeaderLeaseTimeout = c.Duration("raft-leader-lease-timeout")
	cfg.Raft.SnapshotThreshold = c.Uint64("raft-snapshot-threshold")

	embedded := cfg.NATS.Embedded
	cfg.NATS = natsConfig(c)
	host, port, err := splitHostPort(c.String("nats-listen"))
	if err != nil {
		return fmt.Errorf("--nats-listen: %w", err)
	}
	embedded.Host, embedded.Port = host, port
	if cl := c.String("nats-cluster-listen"); cl != "" {
		if embedded.ClusterHost, embedded.ClusterPort, err = splitHostPort(cl); err != nil {
			return fmt.Errorf("--nats-cluster-listen: %w", err)
		}
	}
	if r := c.String("nats-routes"); r != "" {
		embedded.Routes = strings.Split(r, ",")
	}
	embedded.WorkerUser, embedded.WorkerPassword, embedded.WorkerNkey = c.String("nats-worker-user"), c.String("nats-worker-password"), c.String("nats-worker-nkey")
	embedded.TLSCert, embedded.TLSKey, embedded.TLSCA = c.String("nats-tls-cert"), c.String("nats-tls-key"), c.String("nats-tls-client-ca")
	embedded.TrustedNetwork = c.Bool("nats-trusted-network")
	embedded.MaxPayload, embedded.MaxPending = int32(c.Int64("nats-max-payload")), c.Int64("nats-max-pending")
	cfg.NATS.Embedded = embedded
	cfg.NATS.WorkerNkeysFile = c.String("nats-worker-nkeys")

	srv, err := coordinator.NewServer(cfg)
	if err != nil {
		return err
	}
	if cfg.Join != "" && len(cfg.Peers) > 0 {
		return fmt.Errorf("--join and --peers: give one")
	}
	fmt.Fprintln(c.App.Writer, cfg.Posture()) // one line, whatever the log level
	log.Info("coordinator running", "job", cfg.Job, "nats", srv.NATSURL(), "http", srv.HTTPAddr(), "data_dir", cfg.DataDir)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	s := <-sig
	log.Info("shutting down", "signal", s.String())
	ctx, cancel := context.WithTimeout(context.Background(), c.Duration("leave-timeout"))
	if err := srv.Leave(ctx, c.Bool("leave-on-terminate")); err != nil {
		log.Warn("leaving the coordinator group (shutting down as a voter)", "err", err)
	}
	cancel()
	return srv.Close()
}

func splitHostPort(hp string) (string, int, error) {
	i := strings.LastIndex(hp, ":")
	if i < 0 {
		return "", 0, fmt.Errorf("%q: want host:port", hp)
	}
	var port int
	if _, err := fmt.Sscan(hp[i+1:], &port); err != nil {
		return "", 0, fmt.Errorf("%q: bad port", hp)
	}
	return hp[:i], port, nil
}

// apiClient connects to the job's coordinator through NATS.
func apiClient(c *cli.Context) (*coordinator.Client, context.Context, context.CancelFunc, error) {
	n := natsConfig(c)
	opts, err := n.ConnectOptions("vlp-cli")
	if err != nil {
		return nil, nil, nil, err
	}
	token, err := jobToken(c)
	if err != nil {
		return nil, nil, nil, err
	}
	cl, err := coordinator.Dial(n.URL, c.String("job"), token, append(opts, nats.MaxReconnects(3)))
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	return cl, ctx, func() { cancel(); cl.Close() }, nil
}

func coordinatorMembers(c *cli.Context) error {
	cl, ctx, done, err := apiClient(c)
	if err != nil {
		return err
	}
	defer done()
	m, err := cl.Members(ctx)
	if err != nil {
		return explain(err)
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tADDRESS\tSUFFRAGE\tLEADER")
	for _, s := range m.Servers {
		lead := ""
		if s.Leader {
			lead = "*"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", s.ID, s.Address, s.Suffrage, lead)
	}
	fmt.Fprintf(w, "term %d\n", m.Term)
	return w.Flush()
}

func coordinatorRemovePeer(c *cli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("remove-peer: give the replica's id (vlp coordinator members lists them)")
	}
	cl, ctx, done, err := apiClient(c)
	if err != nil {
		return err
	}
	defer done()
	if err := cl.RemovePeer(ctx, c.Args().First()); err != nil {
		return explain(err)
	}
	fmt.Fprintf(c.App.Writer, "removed %s\n", c.Args().First())
	return nil
}

// explain adds a hint to the errors an operator meets first.
func explain(err error) error {
	switch {
	case errors.Is(err, coordinator.ErrUnavailable):
		return fmt.Errorf("%w (is a coordinator for this --job running and reachable at --nats-url?)", err)
	case errors.Is(err, coordinator.ErrUnauthorized) && strings.Contains(err.Error(), "--nats-worker-nkeys"):
		return err // a worker key the coordinator does not know: the message says so
	case errors.Is(err, coordinator.ErrUnauthorized):
		return fmt.Errorf("%w (check --token / VLP_JOB_TOKEN)", err)
	case errors.Is(err, coordinator.ErrPermissionDenied):
		return fmt.Errorf("%w (these NATS credentials lack permission for this command: operator commands need the operator's "+
			"--nats-user/--nats-password or --nats-nkey-seed, not the worker's)", err)
	}
	return err
}
