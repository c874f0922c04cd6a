package coordinator

import (
	"errors"
	"fmt"
	"net"
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
	// requires and verifies client certificates.
	TLSCert string
	TLSKey  string
	TLSCA   string
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
	case (e.TLSCert == "") != (e.TLSKey == ""):
		return errors.New("TLSCert and TLSKey: give both or neither")
	case e.WorkerUser != "" && e.WorkerPassword == "":
		return errors.New("WorkerPassword: required with WorkerUser")
	}
	return nil
}

// WorkerPermissions are the NATS permissions of a worker of job: publish only the worker
// operations' requests, the ring and reply inboxes; subscribe only inboxes, the ring and events.
func WorkerPermissions(job string) *server.Permissions {
	sub := Subjects{Job: job}
	pub := []string{sub.Ring(), "_INBOX.>"}
	for _, op := range WorkerOps {
		pub = append(pub, sub.Op(op))
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>", sub.Ring(), sub.Events()}},
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
		NoLog:         true,
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
			o.Routes = append(o.Routes, server.RoutesFromStr(r)...)
		}
	}
	if c.NATS.User != "" {
		o.Users = []*server.User{{Username: c.NATS.User, Password: c.NATS.Password}}
		perms := WorkerPermissions(c.Job)
		if e.WorkerUser != "" {
			o.Users = append(o.Users, &server.User{Username: e.WorkerUser, Password: e.WorkerPassword, Permissions: perms})
		}
		if e.WorkerNkey != "" {
			o.Nkeys = []*server.NkeyUser{{Nkey: e.WorkerNkey, Permissions: perms}}
		}
	} else if e.WorkerUser != "" || e.WorkerNkey != "" {
		return nil, fmt.Errorf("%w: NATS worker credentials need NATS.User (the operator's) too", ErrInvalidConfig)
	}
	if e.TLSCert != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: e.TLSCert, KeyFile: e.TLSKey, CaFile: e.TLSCA, Verify: e.TLSCA != ""})
		if err != nil {
			return nil, fmt.Errorf("%w: NATS TLS: %v", ErrInvalidConfig, err)
		}
		o.TLSConfig, o.TLS, o.TLSVerify, o.TLSTimeout = tc, true, e.TLSCA != "", 5
		if e.ClusterPort != 0 {
			o.Cluster.TLSConfig, o.Cluster.TLSTimeout = tc.Clone(), 5
		}
	}
	return o, nil
}

// startEmbeddedNATS starts the embedded server and waits until it accepts connections.
func startEmbeddedNATS(c *Config) (*server.Server, error) {
	o, err := c.serverOptions()
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("coordinator: embedded NATS: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("coordinator: embedded NATS did not start listening on %s", net.JoinHostPort(o.Host, strconv.Itoa(o.Port)))
	}
	return srv, nil
}

// ConnectOptions are the nats.go options a client of this configuration uses: credentials,
// TLS, and reconnecting forever (a coordinator outlives NATS server restarts).
func (n *NATSConfig) ConnectOptions(name string) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
	}
	if n.User != "" {
		opts = append(opts, nats.UserInfo(n.User, n.Password))
	}
	if n.NkeySeedFile != "" {
		o, err := nats.NkeyOptionFromSeed(n.NkeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("%w: NATS nkey: %v", ErrInvalidConfig, err)
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
