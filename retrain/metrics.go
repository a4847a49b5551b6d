package retrain

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the role's Prometheus series (DESIGN.md §7).
type metrics struct {
	runs         *prometheus.CounterVec
	duration     prometheus.Histogram
	running      prometheus.Gauge
	runStarted   prometheus.Gauge
	liveVersion  prometheus.Gauge
	promotedAt   prometheus.Gauge
	lastRun      prometheus.Gauge
	gateMetric   *prometheus.GaugeVec
	requests     *prometheus.CounterVec
	badRequests  prometheus.Counter
	pendingReqs  prometheus.Gauge
	publishedRow *prometheus.CounterVec
}

// Results of eddy_retrain_runs_total.
var results = []string{Promoted, Rejected, Failed}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eddy_retrain_runs_total",
			Help: "Retrain and rollback runs by result: promoted, rejected (the gate kept the champion) or failed."}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "eddy_retrain_duration_seconds",
			Help:    "Time from a run's start to its decision being written.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eddy_retrain_running",
			Help: "1 while a run is in progress."}),
		runStarted: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eddy_retrain_run_started_timestamp_seconds",
			Help: "When the run in progress started (0 when idle): time() minus it is how long it has run."}),
		liveVersion: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eddy_retrain_live_version",
			Help: "The model version last promoted (1: the initial online model)."}),
		promotedAt: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eddy_retrain_last_promotion_timestamp_seconds",
			Help: "When the live version was promoted (0 before any): time() minus it is its age."}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eddy_retrain_last_run_timestamp_seconds",
			Help: "When the last run ended, whatever its result."}),
		gateMetric: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "eddy_retrain_gate_metric",
			Help: "The last run's gate metrics on the held-out slice, per model (champion, challenger)."}, []string{"model", "metric"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eddy_retrain_requests_total",
			Help: "Control requests read, by trigger (drift, manual, schedule, rollback)."}, []string{"trigger"}),
		badRequests: prometheus.NewCounter(prometheus.CounterOpts{Name: "eddy_retrain_bad_requests_total",
			Help: "Control records addressed to the retrain role that could not be read (skipped)."}),
		pendingReqs: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eddy_retrain_pending_requests",
			Help: "Requests read and not answered yet (coalesced into the next run)."}),
		publishedRow: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eddy_retrain_published_rows_total",
			Help: "Vectors written to the model topics by promotions, by kind."}, []string{"kind"}),
	}
	for _, r := range results {
		m.runs.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.runs, m.duration, m.running, m.runStarted, m.liveVersion, m.promotedAt, m.lastRun,
			m.gateMetric, m.requests, m.badRequests, m.pendingReqs, m.publishedRow)
	}
	return m
}

// gate publishes a run's metrics.
func (m *metrics) gate(v *Version) {
	for model, mm := range map[string]*struct{ hr, ndcg, cov, pop float64 }{
		"challenger": metricsOf(v.Challenger), "champion": metricsOf(v.Champion),
	} {
		if mm == nil {
			continue
		}
		m.gateMetric.WithLabelValues(model, "hr_at_10").Set(mm.hr)
		m.gateMetric.WithLabelValues(model, "ndcg_at_10").Set(mm.ndcg)
		m.gateMetric.WithLabelValues(model, "coverage").Set(mm.cov)
		m.gateMetric.WithLabelValues(model, "popularity_bias").Set(mm.pop)
	}
}
