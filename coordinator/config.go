package coordinator

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// Config configures one coordinator replica. Start from DefaultConfig; Validate names the field
// and its bound of the first thing that is wrong.
type Config struct {
	// NodeID is this replica's Raft id (default: RaftAdvertise).
	NodeID string
	// DataDir holds the Raft log and stable store (raft.db, bbolt) and the snapshots. Empty: keep
	// everything in memory (tests only; nothing survives a restart).
	DataDir string
	// RaftAddr is the TCP address the Raft transport listens on (default 127.0.0.1:7000);
	// RaftAdvertise the address peers dial (default RaftAddr). Port 0 without RaftAdvertise takes
	// a free port as the transport starts listening, and RaftAddr becomes the address it got (a
	// single replica's way to avoid picking a port that another process takes before it listens).
	RaftAddr      string
	RaftAdvertise string
	// Peers are the voters of a static group, this replica included. On a data dir with no Raft
	// state, a replica with Peers bootstraps the group with exactly them (every replica gets the
	// same list); with no Peers and no Join it bootstraps a single-node group.
	Peers []Peer
	// Join is a NATS URL through which to ask the existing group's leader to add this replica.
	Join string
	// Discover makes Peers mean "bootstrap or join" (membership.go): on a data dir with no Raft
	// state the replica first asks the listed peers, over NATS, whether a group exists; if one
	// answers that it holds Raft state, the replica does not bootstrap but waits to be added (it
	// asks the leader to add it as a voter when the group's configuration lacks it); it
	// bootstraps Peers only once every other listed peer has answered that it holds none. Off,
	// Peers bootstrap a static group as they always did. `vlp coordinator start` turns it on.
	Discover bool

	// Job names the job, and so the subjects vlp.<Job>.coord.*; Token is the job token every
	// request must carry (empty: none required, for a trusted network only).
	Job   string
	Token string

	// HeartbeatInterval is what workers are told to heartbeat at (default 1s); LeaseTTL how long
	// a worker may stay silent before it is declared dead (default 3s); LeaseCheck how often the
	// leader looks (default 250ms). Detection takes at most LeaseTTL + LeaseCheck.
	HeartbeatInterval time.Duration
	LeaseTTL          time.Duration
	LeaseCheck        time.Duration

	// Raft timeouts; see RaftTimeouts.
	Raft RaftTimeouts

	// NATS: the embedded server or an external one, and credentials.
	NATS NATSConfig

	// HTTPAddr serves /healthz, /readyz and /metrics; empty: no HTTP server.
	HTTPAddr string

	// MaxRequestBytes refuses larger API requests with ErrTooLarge (default 1 MiB).
	MaxRequestBytes int
	// ApplyTimeout bounds one Raft apply of an API request (default 5s).
	ApplyTimeout time.Duration
	// MaxInflight bounds the API requests handled at once (default 1024).
	MaxInflight int
	// WorkerKeysPoll is how often NATS.WorkerNkeysFile is reread (default 2s).
	WorkerKeysPoll time.Duration

	// Units computes an epoch's units when it opens (default SpecUnits).
	Units UnitSource

	// Logger receives structured logs (default slog.Default()).
	Logger *slog.Logger

	// Transport, when set, replaces the TCP transport (the test harness's in-memory one).
	Transport raft.Transport
}

// Peer is one voter of a static group.
type Peer struct {
	ID      string
	Address string
}

// RaftTimeouts are hashicorp/raft's timing knobs. The defaults suit a LAN; tests shrink them.
type RaftTimeouts struct {
	// HeartbeatTimeout: a follower with no contact from the leader for this long starts an
	// election (default 1s).
	HeartbeatTimeout time.Duration
	// ElectionTimeout: a candidate with no quorum for this long retries (default 1s).
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout: a leader without quorum contact for this long steps down (default 500ms).
	LeaderLeaseTimeout time.Duration
	// CommitTimeout: the longest an entry waits for a heartbeat to carry it (default 50ms).
	CommitTimeout time.Duration
	// SnapshotInterval and SnapshotThreshold: how often to check, and how many new entries make a
	// snapshot (defaults 2m and 8192). TrailingLogs entries stay after one (default 10240).
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	TrailingLogs      uint64
	// SnapshotRetain is how many snapshot files to keep (default 2).
	SnapshotRetain int
}

// NATSConfig chooses the NATS server the API is served through.
type NATSConfig struct {
	// URL of an external NATS cluster; empty: run the embedded server.
	URL string
	// Embedded configures the embedded server when URL is empty.
	Embedded EmbeddedNATS
	// User and Password authenticate this replica (and the operator commands) to NATS. With the
	// embedded server and a User set, authentication is on: this user may do anything.
	User     string
	Password string
	// NkeySeedFile authenticates this replica with an nkey instead of a password.
	NkeySeedFile string
	// WorkerNkeysFile registers the workers' own nkeys (WorkerKeys: one public key and a name per
	// line, `vlp nkeys --workers`). With the embedded server each key becomes a NATS user limited
	// to WorkerNkeyPermissions; with an external server (URL) its operator configures those
	// users, and the file still tells the API which keys may call it. A request whose subject
	// carries a key not in the file is refused (ErrUnauthorized). The file is reread every
	// WorkerKeysPoll: a removed line revokes that worker.
	WorkerNkeysFile string
	// CAFile, CertFile, KeyFile: TLS for the client connection (CA to trust; cert and key for
	// mutual TLS). With the embedded server, CertFile and KeyFile also make the server speak TLS.
	CAFile   string
	CertFile string
	KeyFile  string
}

// DefaultConfig returns a single-node configuration with in-memory storage and an embedded NATS
// server on 127.0.0.1:4222.
func DefaultConfig() Config {
	return Config{
		RaftAddr:          "127.0.0.1:7000",
		Job:               "default",
		HeartbeatInterval: time.Second,
		LeaseTTL:          3 * time.Second,
		LeaseCheck:        250 * time.Millisecond,
		Raft:              DefaultRaftTimeouts(),
		NATS:              NATSConfig{Embedded: DefaultEmbeddedNATS()},
		MaxRequestBytes:   1 << 20,
		ApplyTimeout:      5 * time.Second,
		MaxInflight:       1024,
		WorkerKeysPoll:    2 * time.Second,
		Units:             SpecUnits{},
	}
}

// DefaultRaftTimeouts are the production timeouts.
func DefaultRaftTimeouts() RaftTimeouts {
	return RaftTimeouts{
		HeartbeatTimeout:   time.Second,
		ElectionTimeout:    time.Second,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		SnapshotInterval:   2 * time.Minute,
		SnapshotThreshold:  8192,
		TrailingLogs:       10240,
		SnapshotRetain:     2,
	}
}

// Validate checks the configuration; the error wraps ErrInvalidConfig.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if !ValidJobName(c.Job) {
		return bad("Job %q: want 1-64 letters, digits, '-' or '_'", c.Job)
	}
	if c.Transport == nil {
		if _, _, err := net.SplitHostPort(c.RaftAddr); err != nil {
			return bad("RaftAddr %q: want host:port", c.RaftAddr)
		}
	}
	if c.HeartbeatInterval <= 0 {
		return bad("HeartbeatInterval %v: must be > 0", c.HeartbeatInterval)
	}
	if c.LeaseTTL < 2*c.HeartbeatInterval {
		return bad("LeaseTTL %v: must be >= 2*HeartbeatInterval (%v), or one late heartbeat kills a worker", c.LeaseTTL, 2*c.HeartbeatInterval)
	}
	if c.LeaseCheck <= 0 || c.LeaseCheck > c.LeaseTTL {
		return bad("LeaseCheck %v: must be in (0, LeaseTTL=%v]", c.LeaseCheck, c.LeaseTTL)
	}
	if c.MaxRequestBytes < 1024 || c.MaxRequestBytes > 64<<20 {
		return bad("MaxRequestBytes %d: must be in [1 KiB, 64 MiB]", c.MaxRequestBytes)
	}
	if c.ApplyTimeout <= 0 {
		return bad("ApplyTimeout %v: must be > 0", c.ApplyTimeout)
	}
	if c.MaxInflight < 1 {
		return bad("MaxInflight %d: must be >= 1", c.MaxInflight)
	}
	if c.NATS.WorkerNkeysFile != "" {
		if c.WorkerKeysPoll <= 0 {
			return bad("WorkerKeysPoll %v: must be > 0 with NATS.WorkerNkeysFile", c.WorkerKeysPoll)
		}
		if _, err := c.NATS.workerKeys(); err != nil {
			return err
		}
	}
	if c.Units == nil {
		return bad("Units: must be set (SpecUnits{} reads the job spec)")
	}
	if len(c.Peers) > 0 && c.Join != "" {
		return bad("Peers and Join: give one (a static group bootstraps; a joiner asks an existing group)")
	}
	if c.discovers() && c.NATS.URL == "" && (c.NATS.Embedded.ClusterPort == 0 || len(c.NATS.Embedded.Routes) == 0) {
		return bad("Discover with %d Peers and the embedded NATS server: needs NATS.Embedded.ClusterPort and Routes (--nats-cluster-listen, --nats-routes), or the peers cannot be asked (--discover=false bootstraps --peers without asking)", len(c.Peers))
	}
	if n := len(c.Peers); n > 0 {
		found := false
		for _, p := range c.Peers {
			if p.ID == "" || p.Address == "" {
				return bad("Peers: every peer needs an id and an address")
			}
			if p.ID == c.nodeID() {
				found = true
			}
		}
		if !found {
			return bad("Peers: this replica (%q) is not among them", c.nodeID())
		}
	}
	t := c.Raft
	if t.HeartbeatTimeout < 5*time.Millisecond || t.ElectionTimeout < 5*time.Millisecond {
		return bad("Raft.HeartbeatTimeout %v and ElectionTimeout %v: must be >= 5ms", t.HeartbeatTimeout, t.ElectionTimeout)
	}
	if t.LeaderLeaseTimeout <= 0 || t.LeaderLeaseTimeout > t.HeartbeatTimeout {
		return bad("Raft.LeaderLeaseTimeout %v: must be in (0, HeartbeatTimeout=%v]", t.LeaderLeaseTimeout, t.HeartbeatTimeout)
	}
	if t.CommitTimeout <= 0 || t.SnapshotInterval <= 0 || t.SnapshotThreshold == 0 || t.SnapshotRetain < 1 {
		return bad("Raft: CommitTimeout, SnapshotInterval, SnapshotThreshold and SnapshotRetain must be > 0")
	}
	if c.NATS.URL == "" {
		if err := c.NATS.Embedded.validate(); err != nil {
			return bad("NATS.Embedded: %v", err)
		}
		if err := c.checkSecurity(); err != nil {
			return err
		}
	}
	return c.NATS.validateClientTLS()
}

// discovers reports whether a fresh replica asks its peers before it bootstraps (Config.Discover).
func (c *Config) discovers() bool { return c.Discover && len(c.Peers) > 1 && c.Join == "" }

// ownPeerAddress is the address the group should dial this replica at: its entry in Peers (a
// stable name, where RaftAdvertise may be an address that changes when the replica moves), else
// the transport's advertised address.
func (c *Config) ownPeerAddress(advertised string) string {
	for _, p := range c.Peers {
		if p.ID == c.nodeID() {
			return p.Address
		}
	}
	return advertised
}

// nodeID is NodeID, defaulting to the advertised Raft address.
func (c *Config) nodeID() string {
	if c.NodeID != "" {
		return c.NodeID
	}
	return c.raftAdvertise()
}

func (c *Config) raftAdvertise() string {
	if c.RaftAdvertise != "" {
		return c.RaftAdvertise
	}
	return c.RaftAddr
}

// ParsePeers reads "id=host:port,host:port,…" (an entry without "id=" uses its address as id).
func ParsePeers(s string) ([]Peer, error) {
	var peers []Peer
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		id, addr, ok := strings.Cut(f, "=")
		if !ok {
			id, addr = f, f
		}
		if _, _, err := net.SplitHostPort(addr); err != nil || id == "" {
			return nil, fmt.Errorf("%w: peer %q: want [id=]host:port", ErrInvalidConfig, f)
		}
		peers = append(peers, Peer{ID: id, Address: addr})
	}
	return peers, nil
}

func (t RaftTimeouts) raftConfig(id string) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(id)
	rc.HeartbeatTimeout = t.HeartbeatTimeout
	rc.ElectionTimeout = t.ElectionTimeout
	rc.LeaderLeaseTimeout = t.LeaderLeaseTimeout
	rc.CommitTimeout = t.CommitTimeout
	rc.SnapshotInterval = t.SnapshotInterval
	rc.SnapshotThreshold = t.SnapshotThreshold
	if t.TrailingLogs > 0 {
		rc.TrailingLogs = t.TrailingLogs
	}
	return rc
}
