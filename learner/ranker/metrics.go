package ranker

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the eddy_ranker_* series.
type metrics struct {
	examples     *prometheus.CounterVec // label: positive, negative
	joinRecords  *prometheus.CounterVec // result
	pendingLists prometheus.Gauge
	orphans      prometheus.Gauge
	expired      prometheus.Counter
	evicted      *prometheus.CounterVec // what: list, orphan
	trained      *prometheus.CounterVec // label
	loss         prometheus.Counter
	logLoss      prometheus.Gauge
	publishes    prometheus.Counter
	staleness    prometheus.Gauge
	weights      *prometheus.GaugeVec // feature (the configured names and "bias")
}

var joinResults = []string{"list", "list_duplicate", "list_skipped", "list_late", "engagement", "engagement_duplicate",
	"engagement_late", "engagement_unknown", "engagement_unknown_item", "engagement_ambiguous", "engagement_orphan",
	"orphan_matched", "orphan_dropped", "event_other", "invalid"}

func newMetrics() *metrics {
	m := &metrics{
		examples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_ranker_examples_joined_total",
			Help: "Labelled examples the joiner produced (one per served item), by label.",
		}, []string{"label"}),
		joinRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_ranker_join_records_total",
			Help: "Input records of the joiner by outcome: list, list_duplicate, list_skipped (fallback, an experiment's popularity arm, or empty), list_late (window already passed), engagement (decided an item), engagement_duplicate, engagement_late (after the window), engagement_unknown (no such list), engagement_unknown_item, engagement_ambiguous (decides without a label), engagement_orphan (held until its list arrives), orphan_matched, orphan_dropped, event_other (no request id or no answer), invalid.",
		}, []string{"result"}),
		pendingLists: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eddy_ranker_pending_lists",
			Help: "Served lists the joiner holds, waiting for engagements or their label window to pass (partitions of this process).",
		}),
		orphans: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eddy_ranker_orphan_engagements",
			Help: "Engagements the joiner holds because their served list has not arrived yet.",
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_ranker_expired_lists_total",
			Help: "Served lists whose label window passed (their undecided items became negatives).",
		}),
		evicted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_ranker_evicted_total",
			Help: "Pending lists and orphan engagements dropped, without examples, because a bound was reached.",
		}, []string{"what"}),
		trained: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_ranker_trained_examples_total",
			Help: "Examples the trainer learnt from, by label.",
		}, []string{"label"}),
		loss: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_ranker_loss_total",
			Help: "Sum of the log-loss of each example's prediction made before learning from it (progressive validation).",
		}),
		logLoss: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eddy_ranker_logloss",
			Help: "Progressive mean log-loss of the ranker over every example it learnt from (kept in its state).",
		}),
		publishes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_ranker_publishes_total",
			Help: "Ranker records published to model.ranker.",
		}),
		staleness: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eddy_ranker_staleness_seconds",
			Help: "At the last publish: now minus the Kafka timestamp of the source record that decided the newest example in it.",
		}),
		weights: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eddy_ranker_weight",
			Help: "Published ranker weights by feature (bias included).",
		}, []string{"feature"}),
	}
	for _, r := range joinResults {
		m.joinRecords.WithLabelValues(r)
	}
	for _, l := range []string{"positive", "negative"} {
		m.examples.WithLabelValues(l)
		m.trained.WithLabelValues(l)
	}
	for _, w := range []string{"list", "orphan"} {
		m.evicted.WithLabelValues(w)
	}
	return m
}

// register registers m on reg, adopting collectors registered before by an
// earlier Service in the same process.
func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	var err error
	reuse(reg, &m.examples, &err)
	reuse(reg, &m.joinRecords, &err)
	reuse(reg, &m.pendingLists, &err)
	reuse(reg, &m.orphans, &err)
	reuse(reg, &m.expired, &err)
	reuse(reg, &m.evicted, &err)
	reuse(reg, &m.trained, &err)
	reuse(reg, &m.loss, &err)
	reuse(reg, &m.logLoss, &err)
	reuse(reg, &m.publishes, &err)
	reuse(reg, &m.staleness, &err)
	reuse(reg, &m.weights, &err)
	if err != nil {
		return fmt.Errorf("ranker: register metrics: %w", err)
	}
	return nil
}

func reuse[T prometheus.Collector](reg prometheus.Registerer, c *T, err *error) {
	if *err != nil {
		return
	}
	e := reg.Register(*c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(e, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			*c = existing
			return
		}
	}
	*err = e
}
