package features

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the eddy_features_* series. The runtime exports the generic
// ones per stage (eddy_stream_* with group and store labels: records
// applied, batch size, apply and commit latency, lag per partition, restore
// progress); these add what only the features know.
type metrics struct {
	events struct {
		vec                         *prometheus.CounterVec
		applied, duplicate, invalid prometheus.Counter
	}
	itemUpdates struct {
		vec                      *prometheus.CounterVec
		applied, replay, invalid prometheus.Counter
	}
	late, tooLate      prometheus.Counter
	snapshots          prometheus.Counter
	driftCopies        prometheus.Counter
	pendingSnapshots   prometheus.Gauge
	processSeconds     prometheus.Histogram
	itemProcessSeconds prometheus.Histogram
	batchCycle         prometheus.Histogram
	itemBatchCycle     prometheus.Histogram

	stateBytes, overlayEntries *prometheus.Desc
	// proc is the Process whose overlays are counted (the latest made).
	proc atomic.Pointer[Process]

	// stateDirs are measured for eddy_features_state_bytes.
	stateDirs []string
	sizeMu    sync.Mutex
	sizeAt    time.Time
	size      float64
}

func newMetrics(reg prometheus.Registerer, p *Process) (*metrics, error) {
	m := &metrics{}
	m.events.vec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eddy_features_events_total",
		Help: "Records of the events topic by outcome: applied to a user, duplicate (event_id seen before, dropped), invalid (sent to the DLQ).",
	}, []string{"result"})
	m.events.applied = m.events.vec.WithLabelValues("applied")
	m.events.duplicate = m.events.vec.WithLabelValues("duplicate")
	m.events.invalid = m.events.vec.WithLabelValues("invalid")
	m.itemUpdates.vec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eddy_features_item_updates_total",
		Help: "Item updates by outcome: applied, replay (source offset already applied, dropped), invalid (skipped).",
	}, []string{"result"})
	m.itemUpdates.applied = m.itemUpdates.vec.WithLabelValues("applied")
	m.itemUpdates.replay = m.itemUpdates.vec.WithLabelValues("replay")
	m.itemUpdates.invalid = m.itemUpdates.vec.WithLabelValues("invalid")
	m.late = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "eddy_features_late_events_total",
		Help: "Applied events older than their user's latest event.",
	})
	m.tooLate = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "eddy_features_too_late_events_total",
		Help: "Applied events later than the allowed lateness (30 min): counted everywhere but in sessions.",
	})
	m.snapshots = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "eddy_features_snapshots_total",
		Help: "User snapshots published to the snapshot topic.",
	})
	m.driftCopies = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "eddy_features_drift_copies_total",
		Help: "Events of the drift sample's users copied to the drift role's input topic.",
	})
	m.pendingSnapshots = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "eddy_features_snapshots_pending",
		Help: "Users whose latest change waits for the snapshot throttle.",
	})
	buckets := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
	m.processSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "eddy_features_user_batch_process_seconds", Buckets: buckets,
		Help: "Time the user stage spends computing one batch (before the runtime commits it).",
	})
	m.itemProcessSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "eddy_features_item_batch_process_seconds", Buckets: buckets,
		Help: "Time the item stage spends computing one batch.",
	})
	m.batchCycle = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "eddy_features_user_batch_cycle_seconds", Buckets: buckets,
		Help: "Time between the starts of two batches of one user partition: compute, commit, and waiting for records.",
	})
	m.itemBatchCycle = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "eddy_features_item_batch_cycle_seconds", Buckets: buckets,
		Help: "Time between the starts of two batches of one item partition.",
	})
	m.stateBytes = prometheus.NewDesc("eddy_features_state_bytes",
		"Bytes of the local state stores on disk (both stages; measured at most every 10 s).", nil, nil)
	m.overlayEntries = prometheus.NewDesc("eddy_features_overlay_entries",
		"Committed states held in memory until the local store has them.", nil, nil)
	m.proc.Store(p)
	if reg == nil {
		return m, nil
	}
	if err := reg.Register(m); err != nil {
		// A Process made again in one process (the role restarts after
		// a failure) continues the series of the first.
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(*metrics); ok {
				old.proc.Store(p)
				return old, nil
			}
		}
		return nil, fmt.Errorf("features: register metrics: %w", err)
	}
	return m, nil
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.events.vec, m.itemUpdates.vec, m.late, m.tooLate, m.snapshots, m.driftCopies, m.pendingSnapshots,
		m.processSeconds, m.itemProcessSeconds, m.batchCycle, m.itemBatchCycle}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
	ch <- m.stateBytes
	ch <- m.overlayEntries
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
	ch <- prometheus.MustNewConstMetric(m.stateBytes, prometheus.GaugeValue, m.stateSize())
	n := 0
	if p := m.proc.Load(); p != nil {
		for _, v := range []*overlays{&p.userViews, &p.itemViews} {
			v.mu.Lock()
			for _, o := range v.m {
				n += o.size()
			}
			v.mu.Unlock()
		}
	}
	ch <- prometheus.MustNewConstMetric(m.overlayEntries, prometheus.GaugeValue, float64(n))
}

// stateSize sums the files of the state directories, re-measured at most
// every 10 s (a scrape must stay cheap).
func (m *metrics) stateSize() float64 {
	m.sizeMu.Lock()
	defer m.sizeMu.Unlock()
	if time.Since(m.sizeAt) < 10*time.Second {
		return m.size
	}
	m.sizeAt = time.Now()
	m.size = float64(DirBytes(m.stateDirs...))
	return m.size
}

// DirBytes returns the disk space used by the regular files under dirs
// (allocated blocks where the platform reports them: Badger preallocates
// sparse value-log files, whose apparent size would overstate the state;
// missing directories count as empty).
func DirBytes(dirs ...string) int64 {
	var n int64
	for _, d := range dirs {
		_ = filepath.WalkDir(d, func(_ string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if e.Type().IsRegular() {
				if info, err := e.Info(); err == nil {
					n += diskBytes(info)
				}
			}
			return nil
		})
	}
	return n
}

func diskBytes(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512
	}
	return info.Size()
}
