package coordinator

import (
	"errors"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the replica's Prometheus metrics, in a registry of its own (no globals: a test
// process runs several replicas).
type metrics struct {
	reg           *prometheus.Registry
	isLeader      prometheus.Gauge
	term          prometheus.Gauge
	applySeconds  prometheus.Histogram
	requests      *prometheus.CounterVec
	requestSecs   *prometheus.HistogramVec
	deadWorkers   prometheus.Counter
	step          prometheus.Gauge
	samplesPerSec prometheus.Gauge
	s             *Server
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		s:   s,
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vlp_coordinator_leader", Help: "1 while this replica leads and serves the API.",
		}),
		term: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vlp_coordinator_raft_term", Help: "Current Raft term.",
		}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vlp_coordinator_raft_apply_seconds",
			Help:    "Time from proposing a command on the leader to its FSM result, seconds.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 1.5, 30), // 100µs … ~19s
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vlp_coordinator_requests_total", Help: "API requests served, by operation and result code.",
		}, []string{"op", "code"}),
		requestSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vlp_coordinator_request_seconds",
			Help:    "API request handling time on the leader, seconds.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}, []string{"op"}),
		deadWorkers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vlp_coordinator_dead_workers_total", Help: "Workers declared dead for missed heartbeats.",
		}),
		step: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vlp_coordinator_step", Help: "Last committed global step reported.",
		}),
		samplesPerSec: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vlp_coordinator_samples_per_second", Help: "Pairs consumed per second between the last two progress reports.",
		}),
	}
	m.reg.MustRegister(m.isLeader, m.term, m.applySeconds, m.requests, m.requestSecs, m.deadWorkers, m.step, m.samplesPerSec,
		&stateCollector{s: s}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observeRaft() {
	if m.s.raft.State() == raft.Leader {
		m.isLeader.Set(1)
	} else {
		m.isLeader.Set(0)
	}
	m.term.Set(float64(m.s.term()))
}

func (m *metrics) observeRequest(op string, err error, d time.Duration) {
	code := "ok"
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) {
			code = ae.Code
		} else {
			code = toAPIError(err).Code
		}
	}
	if !knownOp(op) {
		op = "unknown"
	}
	m.requests.WithLabelValues(op, code).Inc()
	m.requestSecs.WithLabelValues(op).Observe(d.Seconds())
}

func knownOp(op string) bool {
	for _, o := range WorkerOps {
		if o == op {
			return true
		}
	}
	for _, o := range OperatorOps {
		if o == op {
			return true
		}
	}
	return false
}

// stateCollector reads the FSM at scrape time: workers, generation, step and units by state.
type stateCollector struct{ s *Server }

var (
	descWorkers    = prometheus.NewDesc("vlp_coordinator_workers", "Live workers (members of the current generation).", nil, nil)
	descGeneration = prometheus.NewDesc("vlp_coordinator_generation", "Current ring generation.", nil, nil)
	descFSMStep    = prometheus.NewDesc("vlp_coordinator_fsm_step", "Committed global step in this replica's FSM.", nil, nil)
	descUnits      = prometheus.NewDesc("vlp_coordinator_units", "Work units of the open epochs, by state.", []string{"state"}, nil)
	descEpoch      = prometheus.NewDesc("vlp_coordinator_epoch_progress", "Fraction of the current epoch's pairs consumed.", nil, nil)
	descApplied    = prometheus.NewDesc("vlp_coordinator_applied_index", "Last Raft index applied to the FSM.", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWorkers, descGeneration, descFSMStep, descUnits, descEpoch, descApplied} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	var st JobStatus
	var workers int
	c.s.fsm.Read(func(s *State) {
		st = s.status()
		workers = len(s.Members)
	})
	ch <- prometheus.MustNewConstMetric(descWorkers, prometheus.GaugeValue, float64(workers))
	ch <- prometheus.MustNewConstMetric(descGeneration, prometheus.GaugeValue, float64(st.Generation.Number))
	ch <- prometheus.MustNewConstMetric(descFSMStep, prometheus.GaugeValue, float64(st.Step))
	ch <- prometheus.MustNewConstMetric(descEpoch, prometheus.GaugeValue, st.EpochProgress)
	ch <- prometheus.MustNewConstMetric(descApplied, prometheus.GaugeValue, float64(c.s.fsm.AppliedIndex()))
	for state, n := range map[string]int{"pending": st.Units.Pending, "leased": st.Units.Leased, "orphaned": st.Units.Orphaned, "done": st.Units.Done} {
		ch <- prometheus.MustNewConstMetric(descUnits, prometheus.GaugeValue, float64(n), state)
	}
}
