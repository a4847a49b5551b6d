package archive

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	records     *prometheus.CounterVec
	invalid     *prometheus.CounterVec
	files       *prometheus.CounterVec
	bytes       *prometheus.CounterVec
	flushErrors *prometheus.CounterVec
	flushTime   *prometheus.HistogramVec
	buffered    *prometheus.GaugeVec
	gap         *prometheus.CounterVec
	recovered   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	kind := []string{"kind"}
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eddy_archive_records_total",
			Help: "Records written to archive files."}, kind),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eddy_archive_invalid_records_total",
			Help: "Records skipped because they are not valid events or served lists (their offsets are still covered)."}, kind),
		files: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eddy_archive_files_total",
			Help: "Parquet files written."}, kind),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eddy_archive_file_bytes_total",
			Help: "Bytes of Parquet files written."}, kind),
		flushErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eddy_archive_flush_errors_total",
			Help: "Flushes that failed (full disk, unreachable store); each is retried with the same records."}, kind),
		flushTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "eddy_archive_flush_seconds",
			Help: "Time to encode and write one partition's flush.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 9)}, kind),
		buffered: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "eddy_archive_buffered_records",
			Help: "Records read but not yet in a file."}, kind),
		gap: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eddy_archive_retention_gap_records_total",
			Help: "Offsets never archived: deleted by the topic's retention first, or below the archived position of a recreated topic or wiped broker."}, kind),
		recovered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eddy_archive_recovered_flushes_total",
			Help: "Flushes a crash left half-written, undone at start and archived again."}, kind),
	}
	for _, c := range []prometheus.Collector{m.records, m.invalid, m.files, m.bytes, m.flushErrors, m.flushTime, m.buffered, m.gap, m.recovered} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
