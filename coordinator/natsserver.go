package coordinator

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedNATS configures the NATS server a coordinator runs in-process when no external URL is
// given. Three coordinators' embedded servers form one NATS cluster through their routes.
type EmbeddedNATS struct {
	// Host and Port the clients connect to (default 0.0.0.0:4222; Port -1 picks a free port).
	Host string
	Port int
	// ClusterPort listens for routes from the other coordinators' servers (0: no cluster);
	// ClusterHost defaults to Host. Routes are the other servers' route URLs
	// (nats-route://host:6222); listing this server's own is harmless.
	ClusterHost string
	ClusterPort int
	Routes      []string
	// ClusterName defaults to "vlp-<job>".
	ClusterName string

	// MaxPayload is the largest message (default 8 MiB: one all-reduce chunk with headroom).
	MaxPayload int32
	// MaxPending is how many bytes may wait for one client before the server drops it as a slow
	// consumer (default 256 MiB, well above the all-reduce's per-receiver window).
	MaxPending int64
	// WriteDeadline is how long the server blocks writing to one client (default 10s).
	WriteDeadline time.Duration

	// WorkerUser/WorkerPassword, or WorkerNkey (a public user nkey), is the workers' credential.
	// Workers may publish only on the worker operations, the ring subjects and reply inboxes, and
	// subscribe only to inboxes, the ring subjects and the job's events. Needs the operator User
	// (NATSConfig.User) to be set: authentication is all or nothing.
	WorkerUser     string
	WorkerPassword string
	WorkerNkey     string

	// TLSCert and TLSKey make the server speak TLS to clients and routes; TLSCA, when set,
	// requires and verifies client certificates (on routes too: the certificate then needs the
	// clientAuth usage as well as serverAuth). The route dialer trusts NATSConfig.CAFile
	// (--nats-ca), else TLSCA.
	TLSCert string
	TLSKey  string
	TLSCA   string

	// TrustedNetwork accepts TLS (or a route listener) without authentication: the operator
	// says nobody untrusted can reach the ports. Without it such a configuration is refused,
	// because anyone who connects may subscribe to everything, the job token included.
	TrustedNetwork bool
}

// DefaultEmbeddedNATS listens on 0.0.0.0:4222 with the data-plane limits.
func DefaultEmbeddedNATS() EmbeddedNATS {
	return EmbeddedNATS{
		Host:          "0.0.0.0",
		Port:          4222,
		MaxPayload:    8 << 20,
		MaxPending:    256 << 20,
		WriteDeadline: 10 * time.Second,
	}
}

func (e *EmbeddedNATS) validate() error {
	switch {
	case e.Port < -1 || e.Port > 65535:
		return fmt.Errorf("Port %d: must be in [-1, 65535]", e.Port)
	case e.ClusterPort < -1 || e.ClusterPort > 65535:
		return fmt.Errorf("ClusterPort %d: must be in [-1, 65535]", e.ClusterPort)
	case e.MaxPayload < 1024 || e.MaxPayload > 64<<20:
		return fmt.Errorf("MaxPayload %d: must be in [1 KiB, 64 MiB]", e.MaxPayload)
	case e.MaxPending < int64(e.MaxPayload):
		return fmt.Errorf("MaxPending %d: must be >= MaxPayload %d", e.MaxPending, e.MaxPayload)
	}
	return nil
}

// WorkerPermissions are the NATS permissions of a worker of job: publish only the worker
// operations' requests, the ring and step summaries (vlp.<job>.events.step, `vlp worker join
// --publish-steps`); subscribe only the workers' reply inboxes (WorkerInboxPrefix), the ring and
// events. A worker never sees the coordinator's request subjects, where operators' requests carry
// the job token, nor the replies in other clients' _INBOX.>, and cannot publish into them.
func WorkerPermissions(job string) *server.Permissions {
	sub := Subjects{Job: job}
	pub := []string{sub.Ring(), sub.Prefix() + ".events.step"}
	for _, op := range WorkerOps {
		pub = append(pub, sub.Op(op))
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: []string{WorkerInboxPrefix(job) + ".>", sub.Ring(), sub.Events()}},
	}
}

// serverOptions builds the embedded server's options.
func (c *Config) serverOptions() (*server.Options, error) {
	e := c.NATS.Embedded
	o := &server.Options{
		ServerName:    "vlp-coord-" + c.nodeID(),
		Host:          e.Host,
		Port:          e.Port,
		MaxPayload:    e.MaxPayload,
		MaxPending:    e.MaxPending,
		WriteDeadline: e.WriteDeadline,
		NoSigs:        true,
	}
	if o.Host == "" {
		o.Host = "0.0.0.0"
	}
	if e.ClusterPort != 0 {
		o.Cluster.Name = e.ClusterName
		if o.Cluster.Name == "" {
			o.Cluster.Name = "vlp-" + c.Job
		}
		o.Cluster.Host = e.ClusterHost
		if o.Cluster.Host == "" {
			o.Cluster.Host = o.Host
		}
		o.Cluster.Port = e.ClusterPort
		o.Cluster.Username, o.Cluster.Password = c.NATS.User, c.NATS.Password
		for _, r := range e.Routes {
			for _, u := range server.RoutesFromStr(r) {
				// The route dialer authenticates with the credentials of the URL only: give it
				// the operator's, which the other servers' route listeners require.
				if u.User == nil && c.NATS.User != "" {
					u.User = url.UserPassword(c.NATS.User, c.NATS.Password)
				}
				o.Routes = append(o.Routes, u)
			}
		}
	}
	perms := WorkerPermissions(c.Job) // Validate has checked the combination of credentials
	if c.NATS.User != "" {
		o.Users = []*server.User{{Username: c.NATS.User, Password: c.NATS.Password}}
		if e.WorkerUser != "" {
			o.Users = append(o.Users, &server.User{Username: e.WorkerUser, Password: e.WorkerPassword, Permissions: perms})
		}
	}
	if c.NATS.NkeySeedFile != "" && e.WorkerUser != "" && c.NATS.User == "" {
		o.Users = append(o.Users, &server.User{Username: e.WorkerUser, Password: e.WorkerPassword, Permissions: perms})
	}
	keys, err := c.NATS.workerKeys()
	if err != nil {
		return nil, err
	}
	if o.Nkeys, err = c.nkeyUsers(keys); err != nil {
		return nil, err
	}
	f, err := c.loadEmbeddedTLS()
	if err != nil {
		return nil, err
	}
	if f != nil {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{f.cert}}
		if f.clientCA != nil {
			tc.ClientCAs, tc.ClientAuth = f.clientCA, tls.RequireAndVerifyClientCert
		}
		o.TLSConfig, o.TLS, o.TLSVerify, o.TLSTimeout = tc, true, f.clientCA != nil, 5
		if e.ClusterPort != 0 {
			// The same configuration serves accepted routes and dials the others: the dialer
			// trusts the route CA and presents the server certificate when asked for a client's.
			rc := tc.Clone()
			rc.RootCAs = f.routeCA
			o.Cluster.TLSConfig, o.Cluster.TLSTimeout = rc, 5
		}
	}
	return o, nil
}

// nkeyUsers are the embedded server's nkey users: the operator's (--nats-nkey-seed: anything),
// the shared worker nkey (WorkerPermissions and its own identity subjects) and every registered
// worker's own key (WorkerNkeyPermissions). A reload of the registry replaces them all.
func (c *Config) nkeyUsers(keys *WorkerKeys) ([]*server.NkeyUser, error) {
	var users []*server.NkeyUser
	if c.NATS.NkeySeedFile != "" {
		// The coordinator's own nkey is the operator's: it may do anything.
		pub, err := operatorNkey(c.NATS.NkeySeedFile)
		if err != nil {
			return nil, err
		}
		users = append(users, &server.NkeyUser{Nkey: pub})
	}
	if k := c.NATS.Embedded.WorkerNkey; k != "" {
		users = append(users, &server.NkeyUser{Nkey: k, Permissions: sharedNkeyPermissions(c.Job, k)})
	}
	for _, k := range keys.Keys() {
		users = append(users, &server.NkeyUser{Nkey: k, Permissions: WorkerNkeyPermissions(c.Job, k)})
	}
	return users, nil
}

// startEmbeddedNATS starts the embedded server and waits until it accepts connections. The
// options it was started with are returned for reloads (worker_keys_watch.go).
func startEmbeddedNATS(c *Config) (*server.Server, *server.Options, error) {
	o, err := c.serverOptions()
	if err != nil {
		return nil, nil, err
	}
	base := *o // NewServer keeps o and fills in defaults; reloads start from this copy
	srv, err := server.NewServer(o)
	if err != nil {
		return nil, nil, fmt.Errorf("coordinator: embedded NATS: %w", err)
	}
	// Its warnings and errors (a route refused for TLS or credentials, …) go to our log.
	// A fatal error (a port in use) is reported at once rather than after the wait.
	fatal := make(chan string, 1)
	srv.SetLoggerV2(natsLogger{log: c.logger().With("component", "nats-server"), fatal: fatal}, false, false, false)
	addr := net.JoinHostPort(base.Host, strconv.Itoa(base.Port)) // Start writes o's resolved port
	go srv.Start()
	for deadline := time.Now().Add(10 * time.Second); !srv.ReadyForConnections(50 * time.Millisecond); {
		select {
		case msg := <-fatal:
			srv.Shutdown()
			return nil, nil, fmt.Errorf("coordinator: embedded NATS on %s: %s", addr, msg)
		default:
		}
		if time.Now().After(deadline) {
			srv.Shutdown()
			return nil, nil, fmt.Errorf("coordinator: embedded NATS did not start listening on %s", addr)
		}
	}
	return srv, &base, nil
}

// ConnectOptions are the nats.go options a client of this configuration uses: credentials,
// TLS, and reconnecting forever (a coordinator outlives NATS server restarts).
func (n *NATSConfig) ConnectOptions(name string) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
	}
	if err := n.validateClientTLS(); err != nil {
		return nil, err
	}
	if n.User != "" {
		opts = append(opts, nats.UserInfo(n.User, n.Password))
	}
	if n.NkeySeedFile != "" {
		o, err := nats.NkeyOptionFromSeed(n.NkeySeedFile)
		if err != nil {
			return nil, securityErr("--nats-nkey-seed %s: %v", n.NkeySeedFile, err)
		}
		opts = append(opts, o)
	}
	if n.CAFile != "" {
		opts = append(opts, nats.RootCAs(n.CAFile))
	}
	if n.CertFile != "" {
		opts = append(opts, nats.ClientCert(n.CertFile, n.KeyFile))
	}
	return opts, nil
}

// natsLogger passes the embedded server's warnings and errors to slog; notices, debug and
// traces are dropped. Fatal errors also go to fatal (when set, without blocking): the server
// logs a listener it cannot open and goes on without it.
type natsLogger struct {
	log   *slog.Logger
	fatal chan<- string
}

func (l natsLogger) Noticef(format string, v ...any) {}
func (l natsLogger) Debugf(format string, v ...any)  {}
func (l natsLogger) Tracef(format string, v ...any)  {}
func (l natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l natsLogger) Errorf(format string, v ...any)  { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l natsLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	select {
	case l.fatal <- msg:
	default:
	}
}
