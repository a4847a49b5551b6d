package drift

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the drift role's Prometheus metrics. Label values are signal
// names and methods from the configuration and the fixed Actions, so
// cardinality is bounded by the signal list.
//
//   - eddy_drift_score{signal,method}: the latest judged score (the
//     method's statistic);
//   - eddy_drift_alert{signal}: 1 when the signal drifted in the latest
//     window, else 0 (also 0 while it cannot be judged);
//   - eddy_drift_samples{signal}: observations in the latest window;
//   - eddy_drift_windows_total: windows judged (or captured);
//   - eddy_drift_decisions_total{action}: trigger decisions by action;
//   - eddy_drift_retrain_requests_total: retrain requests emitted.
type Metrics struct {
	score     *prometheus.GaugeVec
	alert     *prometheus.GaugeVec
	samples   *prometheus.GaugeVec
	windows   prometheus.Counter
	decisions *prometheus.CounterVec
	requests  prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		score: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eddy_drift_score", Help: "Latest drift score of a signal against its reference (the method's statistic).",
		}, []string{"signal", "method"}),
		alert: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eddy_drift_alert", Help: "1 when the signal drifted beyond its threshold in the latest window, else 0.",
		}, []string{"signal"}),
		samples: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eddy_drift_samples", Help: "Observations of a signal in the latest window.",
		}, []string{"signal"}),
		windows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_drift_windows_total", Help: "Merged windows processed by the drift monitor.",
		}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_drift_decisions_total", Help: "Retraining trigger decisions, by action.",
		}, []string{"action"}),
		requests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_drift_retrain_requests_total", Help: "Retrain requests emitted to the control topic.",
		}),
	}
	for _, a := range Actions {
		m.decisions.WithLabelValues(string(a))
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.score, m.alert, m.samples, m.windows, m.decisions, m.requests} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("drift: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

// ObserveReport sets the gauges from a report.
func (m *Metrics) ObserveReport(r *Report) {
	m.windows.Inc()
	for i := range r.Signals {
		s := &r.Signals[i]
		m.samples.WithLabelValues(s.Name).Set(float64(s.N))
		alert := 0.0
		if s.Status == StatusOK {
			m.score.WithLabelValues(s.Name, s.Method.String()).Set(finite(s.Score))
			if s.Drifted {
				alert = 1
			}
		}
		m.alert.WithLabelValues(s.Name).Set(alert)
	}
}

// ObserveDecision counts a trigger decision.
func (m *Metrics) ObserveDecision(d Decision) {
	m.decisions.WithLabelValues(string(d.Action)).Inc()
	if d.Action == ActionRequest {
		m.requests.Inc()
	}
}
