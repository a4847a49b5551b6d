package scorer

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// routeLabel is the route label of the recommendation endpoint's series.
const routeLabel = "recommendations"

type metrics struct {
	duration  *prometheus.HistogramVec
	requests  *prometheus.CounterVec
	fallbacks *prometheus.CounterVec
	applied   *prometheus.CounterVec
	rejected  *prometheus.CounterVec
	applyLag  prometheus.Gauge
	recsSent  prometheus.Counter
	recsDrop  prometheus.Counter
	recsFail  prometheus.Counter
	recsDrift prometheus.Counter
	connected prometheus.Gauge
	// Promotion.
	stale      prometheus.Counter
	building   prometheus.Gauge
	promotions prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Scorer) (*metrics, error) {
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "eddy_scorer_request_duration_seconds", Help: "Recommendation request latency by route and variant (the configured variants; \"none\" for a request rejected before one was assigned).",
			Buckets: []float64{.0002, .0005, .001, .002, .003, .005, .0075, .01, .025, .05, .1, .5},
		}, []string{"route", "variant"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_scorer_requests_total", Help: "Recommendation requests by variant (as in the latency histogram) and HTTP status code.",
		}, []string{"variant", "code"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_scorer_fallback_total", Help: "Requests answered with the popularity fallback, by reason (rate = this / requests).",
		}, []string{"reason"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_scorer_records_applied_total", Help: "Model records applied to the hot state, by topic.",
		}, []string{"topic"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_scorer_records_rejected_total", Help: "Model records that could not be decoded or applied, by topic.",
		}, []string{"topic"}),
		applyLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eddy_scorer_apply_lag_seconds", Help: "Time between a model record's Kafka timestamp and its application, last batch.",
		}),
		recsSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_scorer_recs_published_total", Help: "Served lists produced to the recs topic.",
		}),
		recsDrop: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_scorer_recs_dropped_total", Help: "Served lists dropped because the recs log queue was full.",
		}),
		recsFail: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_scorer_recs_produce_errors_total", Help: "Served lists Kafka did not accept.",
		}),
		recsDrift: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_scorer_recs_drift_copies_total", Help: "Served lists of the drift role's sampled users also produced to its input topic (--drift-sample).",
		}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eddy_scorer_kafka_connected", Help: "1 while the scorer reaches Kafka, 0 while it serves its last state without it.",
		}),
		stale: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_scorer_stale_records_total", Help: "Model records of a version older than the one served (or superseded before it was complete), dropped.",
		}),
		building: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eddy_scorer_building_version", Help: "The promoted version being built beside the served one (0: none).",
		}),
		promotions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_scorer_promotions_total", Help: "Promoted versions swapped in.",
		}),
	}
	cs := []prometheus.Collector{m.duration, m.requests, m.fallbacks, m.applied, m.rejected, m.applyLag, m.recsSent, m.recsDrop, m.recsFail, m.recsDrift, m.connected,
		m.stale, m.building, m.promotions,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "eddy_scorer_model_version", Help: "The model version requests are served from."}, func() float64 {
			return float64(s.State().ModelVersion())
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "eddy_scorer_state_items", Help: "Live items in the hot state."}, func() float64 {
			n, _, _ := s.State().Sizes()
			return float64(n)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "eddy_scorer_state_users", Help: "Users in the hot state."}, func() float64 {
			_, n, _ := s.State().Sizes()
			return float64(n)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "eddy_scorer_state_item_matrix_bytes", Help: "Bytes of the item vector matrix."}, func() float64 {
			_, _, b := s.State().Sizes()
			return float64(b)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "eddy_scorer_model_freshness_seconds", Help: "Age of the newest applied model record (by its event time)."}, func() float64 {
			t := s.State().NewestRecord()
			if t.IsZero() {
				return 0
			}
			return time.Since(t).Seconds()
		}),
	}
	if s.wantFrozen {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "eddy_scorer_frozen_model_age_seconds",
			Help: "Age of the frozen variants' model copy (since it was taken; 0 before)."}, func() float64 {
			if _, at := s.FrozenVersion(); !at.IsZero() {
				return time.Since(at).Seconds()
			}
			return 0
		}))
	}
	// Each variant's series exist from the start, at zero, so that rates
	// per variant are defined before its first request.
	for i := range s.arms {
		a := &s.arms[i]
		a.okDuration = m.duration.WithLabelValues(routeLabel, a.name)
		a.okRequests = m.requests.WithLabelValues(a.name, "200")
	}
	if reg != nil {
		for _, c := range cs {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("scorer: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
