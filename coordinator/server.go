package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Server is one coordinator replica: a Raft node with the FSM, a NATS connection (to its embedded
// server or an external cluster), the API it serves while it leads, the lease loop, and the HTTP
// endpoints. Build it with NewServer; Close releases everything.
type Server struct {
	cfg      Config
	log      *slog.Logger
	subjects Subjects
	fsm      *FSM
	raft     *raft.Raft
	parts    *raftParts
	ns       *server.Server  // nil with an external NATS
	natsBase *server.Options // the embedded server's start options, which reloads change
	keys     atomic.Pointer[WorkerKeys]
	keysRaw  []byte // the registry file as last applied (watchWorkerKeys only)
	nc       *nats.Conn
	peerSub  *nats.Subscription // Subjects.Peers, answered by every replica (membership.go)
	// peerClient asks the group's leader to add or remove this replica (its own connection).
	peerClient *Client
	metrics    *metrics
	httpSrv    *http.Server
	httpLn     net.Listener

	mu   sync.Mutex
	lead *leadership // non-nil while serving as leader

	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// NewServer starts a replica: opens (or creates) its Raft state, bootstraps or joins the group,
// starts or connects to NATS, and begins watching for leadership. Restarting on the same DataDir
// resumes where the replica stopped.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger.With("node", cfg.nodeID()),
		subjects: Subjects{Job: cfg.Job},
		fsm:      NewFSM(),
		done:     make(chan struct{}),
	}
	if err := s.start(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	hl := hclogAdapter(s.log, "raft")
	parts, err := newRaftParts(&s.cfg, hl)
	if err != nil {
		return err
	}
	s.parts = parts
	rc := s.cfg.Raft.raftConfig(s.cfg.nodeID())
	rc.Logger = hl
	r, err := raft.NewRaft(rc, s.fsm, parts.logs, parts.stable, parts.snaps, parts.trans)
	if err != nil {
		return fmt.Errorf("coordinator: raft: %w", err)
	}
	s.raft = r
	has, err := raft.HasExistingState(parts.logs, parts.stable, parts.snaps)
	if err != nil {
		return fmt.Errorf("coordinator: raft state: %w", err)
	}
	fresh := !has
	booted, err := bootstrap(r, &s.cfg, parts)
	if err != nil {
		return err
	}
	s.metrics = newMetrics(s)

	url := s.cfg.NATS.URL
	opts, err := s.cfg.ownConnectOptions("vlp-coordinator-"+s.cfg.nodeID(), url == "")
	if err != nil {
		return err
	}
	if err := s.loadWorkerKeys(); err != nil {
		return err
	}
	if url == "" {
		if s.ns, s.natsBase, err = startEmbeddedNATS(&s.cfg); err != nil {
			return err
		}
		url = s.ns.ClientURL()
		opts = append(opts, nats.InProcessServer(s.ns))
	}
	// Bounded, so a TLS mistake fails here, at once, rather than as a write timeout later.
	opts = append(opts, nats.Timeout(10*time.Second))
	if s.nc, err = nats.Connect(url, opts...); err != nil {
		return fmt.Errorf("coordinator: its own NATS connection to %s: %w (with TLS: check --nats-ca and, under --nats-tls-client-ca, --nats-cert or the clientAuth usage of --nats-tls-cert)", url, err)
	}
	if err := s.servePeerInfo(); err != nil {
		return err
	}
	s.peerClient = NewClient(s.nc, s.cfg.Job, s.cfg.Token, WithRequestTimeout(2*time.Second))
	if s.cfg.HTTPAddr != "" {
		if err := s.startHTTP(); err != nil {
			return err
		}
	}
	s.log.Info(s.cfg.Posture())
	if e := s.cfg.NATS.Embedded; s.ns != nil && !s.cfg.authenticated() && !e.TrustedNetwork && !isLoopbackHost(e.Host) {
		s.log.Warn("embedded NATS accepts anyone on "+e.Host+": whoever reaches it can read the job token and stop the job (docs/security.md; --nats-user, or --nats-trusted-network to silence this)", "nats", url)
	}
	s.log.Info("coordinator started", "raft", parts.trans.LocalAddr(), "bootstrapped", booted, "nats", url, "job", s.cfg.Job)
	s.wg.Add(1)
	go s.watchLeadership()
	if s.ns != nil && s.cfg.expectedRoutes() > 0 {
		s.wg.Add(1)
		go s.watchRoutes()
	}
	switch {
	case s.cfg.Join != "":
		s.wg.Add(1)
		go s.joinGroup()
	case s.cfg.discovers() && fresh:
		s.wg.Add(1)
		go s.formGroup()
	case len(s.cfg.Peers) > 1:
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.keepMembership()
		}()
	}
	if s.cfg.NATS.WorkerNkeysFile != "" {
		s.wg.Add(1)
		go s.watchWorkerKeys()
	}
	return nil
}

// Close stops the replica: it stops serving, shuts Raft down (without handing leadership over:
// to the group this looks like a crash; Leave first for a graceful stop), and closes NATS, the
// stores and the HTTP server.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.stopLeading()
		if s.raft != nil {
			if err := s.raft.Shutdown().Error(); err != nil {
				s.closeErr = err
			}
		}
		s.wg.Wait()
		if s.httpSrv != nil {
			s.httpSrv.Close()
		}
		if s.nc != nil {
			s.nc.Close()
		}
		if s.ns != nil {
			s.ns.Shutdown()
			s.ns.WaitForShutdown()
		}
		if s.parts != nil {
			s.parts.close()
		}
	})
	return s.closeErr
}

// ID is this replica's Raft id.
func (s *Server) ID() string { return s.cfg.nodeID() }

// Raft is the underlying Raft node (for tests and tools).
func (s *Server) Raft() *raft.Raft { return s.raft }

// FSM is the replica's state machine.
func (s *Server) FSM() *FSM { return s.fsm }

// IsLeader reports whether this replica leads and serves the API.
func (s *Server) IsLeader() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lead != nil
}

// NATSURL is the client URL of the embedded NATS server, or the external URL.
func (s *Server) NATSURL() string {
	if s.ns != nil {
		return s.ns.ClientURL()
	}
	return s.cfg.NATS.URL
}

// NATSServer is the embedded NATS server, or nil.
func (s *Server) NATSServer() *server.Server { return s.ns }

// HTTPAddr is the address the HTTP endpoints listen on, or "".
func (s *Server) HTTPAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// Status is the job's status as this replica's FSM has it.
func (s *Server) Status() JobStatus {
	var st JobStatus
	s.fsm.Read(func(state *State) { st = state.status() })
	_, id := s.raft.LeaderWithID()
	st.Leader = string(id)
	st.Term = s.term()
	st.AppliedIndex = s.fsm.AppliedIndex()
	return st
}

func (s *Server) term() uint64 {
	var t uint64
	fmt.Sscan(s.raft.Stats()["term"], &t)
	return t
}

// apply proposes a command, stamped with the leader's clock, and waits for its result.
func (s *Server) apply(typ CommandType, body any) (any, error) {
	data, err := EncodeCommand(typ, time.Now().UnixMilli(), body)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	f := s.raft.Apply(data, s.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
			return nil, fmt.Errorf("%w: %v", ErrNotLeader, err)
		case errors.Is(err, raft.ErrEnqueueTimeout):
			return nil, fmt.Errorf("%w: raft apply: %v", ErrUnavailable, err)
		default:
			return nil, fmt.Errorf("%w: raft apply: %v", ErrInternal, err)
		}
	}
	s.metrics.applySeconds.Observe(time.Since(start).Seconds())
	res, ok := f.Response().(*ApplyResult)
	if !ok {
		return nil, fmt.Errorf("%w: unexpected apply response %T", ErrInternal, f.Response())
	}
	if res.GenerationChanged {
		s.publishGeneration()
	}
	if res.Err != nil {
		return nil, res.Err
	}
	return res.Value, nil
}

// joinGroup asks the existing group, through Config.Join, to add this replica as a voter, retrying
// until it is in the configuration or the replica closes.
func (s *Server) joinGroup() {
	defer s.wg.Done()
	opts, err := s.cfg.ownConnectOptions("vlp-coordinator-join-"+s.cfg.nodeID(), false)
	if err != nil {
		s.log.Error("join: NATS options", "err", err)
		return
	}
	for attempt := 0; ; attempt++ {
		if s.inConfiguration() {
			s.log.Info("joined the coordinator group")
			return
		}
		nc, err := nats.Connect(s.cfg.Join, opts...)
		if err == nil {
			cl := NewClient(nc, s.cfg.Job, s.cfg.Token, WithRequestTimeout(5*time.Second))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = cl.AddPeer(ctx, AddPeerRequest{ID: s.cfg.nodeID(), Address: string(s.parts.trans.LocalAddr())})
			cancel()
			nc.Close()
		}
		if err != nil && attempt%10 == 0 {
			s.log.Warn("join: asking the group to add this replica", "via", s.cfg.Join, "err", err)
		}
		select {
		case <-s.done:
			return
		case <-time.After(time.Second):
		}
	}
}

func (s *Server) inConfiguration() bool {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, srv := range f.Configuration().Servers {
		if srv.ID == raft.ServerID(s.cfg.nodeID()) {
			return true
		}
	}
	return false
}

// watchRoutes logs the embedded server's routes to its peers whenever their count changes: a
// route that cannot form (a TLS or credential mistake) is otherwise silent, since the embedded
// server does not log.
func (s *Server) watchRoutes() {
	defer s.wg.Done()
	want, last := s.cfg.expectedRoutes(), -1
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-tick.C:
		}
		got := s.routedServers()
		switch {
		case got == last:
		case got < want:
			s.log.Warn("NATS cluster incomplete: routed to fewer peer servers than --nats-routes names (not ready)", "routed", got, "want", want)
		default:
			s.log.Info("NATS cluster formed", "routed", got)
		}
		last = got
	}
}
