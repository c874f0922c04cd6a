package coordinator

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// startHTTP serves /healthz (the process is up), /readyz (a leader is known, NATS is connected
// and the embedded server is routed to every configured peer server: the API is reachable
// through this replica) and /metrics (Prometheus).
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
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	s.httpLn = ln
	s.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go s.httpSrv.Serve(ln)
	return nil
}

func (s *Server) ready() error {
	if addr, _ := s.raft.LeaderWithID(); addr == "" {
		return fmt.Errorf("no Raft leader")
	}
	if s.nc.Status() != nats.CONNECTED {
		return fmt.Errorf("NATS %s", s.nc.Status())
	}
	if want := s.cfg.expectedRoutes(); want > 0 && s.ns != nil {
		if got := s.routedServers(); got < want {
			return fmt.Errorf("NATS routed to %d of %d peer servers (--nats-routes; with TLS check --nats-ca and the certificates' usages)", got, want)
		}
	}
	return nil
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
