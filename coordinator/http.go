package coordinator

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// startHTTP serves /healthz (liveness: the process is up and answers), /readyz (readiness:
// this replica serves its part of the group — see ready — whether or not a leader exists) and
// /metrics (Prometheus).
func (s *Server) startHTTP() error {
	ln, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("coordinator: HTTP on %s: %w", s.cfg.HTTPAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		if _, leader := s.raft.LeaderWithID(); leader != "" {
			fmt.Fprintf(w, "ready (leader %s)\n", leader)
		} else {
			fmt.Fprintln(w, "ready (no leader known)")
		}
	})
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	s.httpLn = ln
	s.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go s.httpSrv.Serve(ln)
	return nil
}

// ready says whether this replica serves its part of the group: its Raft node runs (the
// transport listens), it knows the group (it is a voter of its latest configuration: it
// bootstrapped, restored its state, or was added), its own NATS connection is up, and its
// embedded server is routed to every server of --nats-routes whose route port answers. It never
// asks for a leader, nor for peers that are down: a rolling update waits for each restarted
// replica to be ready, and a group that lost its quorum could then never get back the replicas
// that would restore it.
func (s *Server) ready() error {
	if st := s.raft.State(); st == raft.Shutdown {
		return fmt.Errorf("Raft %s", st)
	}
	if s.nc.Status() != nats.CONNECTED {
		return fmt.Errorf("NATS %s", s.nc.Status())
	}
	if !isVoterAt(s.configuration(), s.cfg.nodeID(), "") {
		return fmt.Errorf("not a voter of the group yet (waiting for its peers to bootstrap it, or for its leader to add this replica)")
	}
	if want := s.cfg.expectedRoutes(); want > 0 && s.ns != nil {
		// Only when a route is missing does it dial the route ports: a peer that is down is
		// not this replica's fault, a peer that answers and is not routed is (TLS, passwords).
		if got := s.routedServers(); got < want {
			if up := s.answeringRoutes(); got < up {
				return fmt.Errorf("NATS routed to %d of %d peer servers whose route port answers (--nats-routes names %d; with TLS check --nats-ca and the certificates' usages)", got, up, want)
			}
		}
	}
	return nil
}

// answeringRoutes counts the other servers of --nats-routes whose route port accepts a TCP
// connection now (dialled together, 500 ms each at most).
func (s *Server) answeringRoutes() int {
	hosts := s.cfg.otherRouteHosts()
	var n atomic.Int32
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c, err := net.DialTimeout("tcp", h, 500*time.Millisecond); err == nil {
				c.Close()
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(n.Load())
}

// routedServers counts the other NATS servers the embedded server has a route to (a route
// pool holds several connections per server).
func (s *Server) routedServers() int {
	rz, err := s.ns.Routez(nil)
	if err != nil {
		return 0
	}
	ids := map[string]bool{}
	for _, r := range rz.Routes {
		ids[r.RemoteID] = true
	}
	return len(ids)
}
