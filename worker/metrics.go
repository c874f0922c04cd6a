package worker

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are a worker's Prometheus metrics: the step time split by phase,
// samples per second (as a counter of pairs), losses by name, generations.
type Metrics struct {
	phase       *prometheus.HistogramVec
	pairs       prometheus.Counter
	steps       prometheus.Counter
	loss        *prometheus.GaugeVec
	step        prometheus.Gauge
	generations prometheus.Counter
	abandoned   prometheus.Counter
	ckptSeconds prometheus.Histogram
	ckptStall   prometheus.Histogram
	ckptBytes   prometheus.Counter
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		phase: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vlp_worker_step_phase_seconds", Help: "Time of each phase of a training step: data, forward_backward, allreduce, optimizer, total.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"phase"}),
		pairs:       prometheus.NewCounter(prometheus.CounterOpts{Name: "vlp_worker_pairs_total", Help: "Image-text pairs this worker consumed in committed steps (rate: samples/s)."}),
		steps:       prometheus.NewCounter(prometheus.CounterOpts{Name: "vlp_worker_steps_total", Help: "Steps committed by this worker."}),
		loss:        prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vlp_worker_loss", Help: "Global mean loss of the last committed step, by name."}, []string{"name"}),
		step:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "vlp_worker_global_step", Help: "Last committed global step."}),
		generations: prometheus.NewCounter(prometheus.CounterOpts{Name: "vlp_worker_generations_total", Help: "Ring generations this worker trained in."}),
		abandoned:   prometheus.NewCounter(prometheus.CounterOpts{Name: "vlp_worker_steps_abandoned_total", Help: "Steps abandoned because the generation changed."}),
		ckptSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vlp_worker_checkpoint_write_seconds", Help: "Background checkpoint write time until durable.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
		ckptStall:   prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vlp_worker_checkpoint_stall_seconds", Help: "Training stall a checkpoint causes (host copy and hand-over).", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		ckptBytes:   prometheus.NewCounter(prometheus.CounterOpts{Name: "vlp_worker_checkpoint_bytes_total", Help: "Bytes of checkpoints written durably."}),
	}
	reg.MustRegister(m.phase, m.pairs, m.steps, m.loss, m.step, m.generations, m.abandoned, m.ckptSeconds, m.ckptStall, m.ckptBytes)
	return m
}

func (m *Metrics) observeStep(s StepSummary, ownPairs int) {
	if m == nil {
		return
	}
	t := s.Timings
	m.phase.WithLabelValues("data").Observe(t.Data.Seconds())
	m.phase.WithLabelValues("forward_backward").Observe(t.Compute.Seconds())
	m.phase.WithLabelValues("allreduce").Observe(t.AllReduce.Seconds())
	m.phase.WithLabelValues("optimizer").Observe(t.Optimizer.Seconds())
	m.phase.WithLabelValues("total").Observe(t.Total.Seconds())
	m.pairs.Add(float64(ownPairs))
	m.steps.Inc()
	m.step.Set(float64(s.Step))
	for k, v := range s.Losses {
		m.loss.WithLabelValues(k).Set(v)
	}
}

func (m *Metrics) generation() {
	if m != nil {
		m.generations.Inc()
	}
}

func (m *Metrics) abandon() {
	if m != nil {
		m.abandoned.Inc()
	}
}
