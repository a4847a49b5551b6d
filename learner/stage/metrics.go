package stage

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the eddy_learner_* series. Stage labels are "user" and
// "item"; the record results a fixed set.
type metrics struct {
	updates         *prometheus.CounterVec // stage
	records         *prometheus.CounterVec // stage, result
	published       *prometheus.CounterVec // stage
	loss            prometheus.Counter
	norms           *prometheus.HistogramVec // stage
	staleness       *prometheus.GaugeVec     // stage
	replicaApplied  prometheus.Counter
	replicaRejected prometheus.Counter
	replicaItems    prometheus.Gauge
	replicaDelay    prometheus.Gauge
	adoptions       *prometheus.CounterVec // stage
	staleGrads      prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_learner_updates_total",
			Help: "SGD updates applied to vectors: one per training event on the user stage, one per gradient on the item stage.",
		}, []string{"stage"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_learner_records_total",
			Help: "Source records by outcome: trained, seen (a non-training interaction recorded in the user's seen list), impression, invalid.",
		}, []string{"stage", "result"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_learner_published_vectors_total",
			Help: "Vector records published to the model topics (one per changed vector per batch).",
		}, []string{"stage"}),
		loss: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_learner_loss_total",
			Help: "Sum of the weighted logistic loss of each training event before the model learns from it (prequential loss); divided by the rate of eddy_learner_updates_total{stage=\"user\"} it is the mean loss per event.",
		}),
		norms: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eddy_learner_vector_norm",
			Help:    "L2 norms of the vectors published.",
			Buckets: []float64{0.01, 0.03, 0.1, 0.3, 0.5, 1, 2, 3, 5, 10, 30, 100},
		}, []string{"stage"}),
		staleness: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eddy_learner_staleness_seconds",
			Help: "At the last committed batch: now minus the Kafka timestamp of the newest source event applied (the item stage sees the event's through its gradients: end-to-end model staleness).",
		}, []string{"stage"}),
		replicaApplied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_learner_item_replica_records_total",
			Help: "model.items records applied to the user stage's item replica.",
		}),
		replicaRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_learner_item_replica_rejected_total",
			Help: "model.items records the item replica could not decode.",
		}),
		replicaItems: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eddy_learner_item_replica_items",
			Help: "Live items in the user stage's item replica.",
		}),
		replicaDelay: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eddy_learner_item_replica_delay_seconds",
			Help: "Parameter-sync delay: now minus the Kafka timestamp of the newest model.items record in the last fetch.",
		}),
		adoptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_learner_adoptions_total",
			Help: "Promoted model versions a stage partition adopted (its state replaced by the version's vectors).",
		}, []string{"stage"}),
		staleGrads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_learner_stale_gradients_total",
			Help: "Item gradients computed against a model version the item stage has replaced, dropped.",
		}),
	}
}

// register registers m on reg, adopting collectors registered before by an
// earlier Service in the same process.
func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	var err error
	reuse(reg, &m.updates, &err)
	reuse(reg, &m.records, &err)
	reuse(reg, &m.published, &err)
	reuse(reg, &m.loss, &err)
	reuse(reg, &m.norms, &err)
	reuse(reg, &m.staleness, &err)
	reuse(reg, &m.replicaApplied, &err)
	reuse(reg, &m.replicaRejected, &err)
	reuse(reg, &m.replicaItems, &err)
	reuse(reg, &m.replicaDelay, &err)
	reuse(reg, &m.adoptions, &err)
	reuse(reg, &m.staleGrads, &err)
	if err != nil {
		return fmt.Errorf("stage: register metrics: %w", err)
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

// lossSum records the summed loss of n training events.
func (m *metrics) lossSum(sum float64, _ int) { m.loss.Add(sum) }
