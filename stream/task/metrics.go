package task

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are registered once per Runtime with the constant labels group and
// store, so several runtimes (user stage, item stage) share one registry.
// Partition labels are bounded by the source topic's partition count.
type metrics struct {
	applied          prometheus.Counter
	batchRecords     prometheus.Histogram
	applySeconds     prometheus.Histogram
	commitSeconds    prometheus.Histogram
	changelogRecords prometheus.Counter
	outputs          prometheus.Counter
	lag              *prometheus.GaugeVec
	restored         prometheus.Counter
	restoreRemaining *prometheus.GaugeVec
	tasks            prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, group, store string) (*metrics, error) {
	cl := prometheus.Labels{"group": group, "store": store}
	latency := []float64{.0002, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
	m := &metrics{
		applied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_stream_records_applied_total", ConstLabels: cl,
			Help: "Source records applied to state and committed (Kafka transaction and local store).",
		}),
		batchRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "eddy_stream_batch_records", ConstLabels: cl,
			Help:    "Source records per committed batch.",
			Buckets: []float64{1, 10, 50, 100, 500, 1000, 2000, 5000, 10000, 50000},
		}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "eddy_stream_apply_seconds", ConstLabels: cl,
			Help: "Time a processor spends on one batch.", Buckets: latency,
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "eddy_stream_commit_seconds", ConstLabels: cl,
			Help: "Time to commit one batch: Kafka transaction (changelog, outputs, checkpoint) then the local store.", Buckets: latency,
		}),
		changelogRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_stream_changelog_records_total", ConstLabels: cl,
			Help: "State changes written to the changelog topic.",
		}),
		outputs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_stream_output_records_total", ConstLabels: cl,
			Help: "Output records produced by processors in committed transactions.",
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eddy_stream_lag_records", ConstLabels: cl,
			Help: "Source records not yet committed: high watermark minus the committed next offset, per partition.",
		}, []string{"partition"}),
		restored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_stream_restore_records_total", ConstLabels: cl,
			Help: "Changelog records applied to the local store while restoring partitions.",
		}),
		restoreRemaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eddy_stream_restore_remaining_records", ConstLabels: cl,
			Help: "Changelog offsets left to restore, per partition being restored.",
		}, []string{"partition"}),
		tasks: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eddy_stream_tasks", ConstLabels: cl,
			Help: "Partition tasks running on this instance.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	reuse(reg, &m.applied, &err)
	reuse(reg, &m.batchRecords, &err)
	reuse(reg, &m.applySeconds, &err)
	reuse(reg, &m.commitSeconds, &err)
	reuse(reg, &m.changelogRecords, &err)
	reuse(reg, &m.outputs, &err)
	reuse(reg, &m.lag, &err)
	reuse(reg, &m.restored, &err)
	reuse(reg, &m.restoreRemaining, &err)
	reuse(reg, &m.tasks, &err)
	if err != nil {
		return nil, fmt.Errorf("task: register metrics: %w", err)
	}
	return m, nil
}

// reuse registers *c, or, when a runtime of the same group and store was
// registered before (a restart inside one process), adopts the existing
// collector so that counters continue instead of failing.
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

func partitionLabel(p int32) string { return strconv.FormatInt(int64(p), 10) }
