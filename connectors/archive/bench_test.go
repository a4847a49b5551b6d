package archive

import (
	"context"
	"testing"
	"time"

	"github.com/eddyrec/eddy/internal/testkafka"
)

// archivedRows is what the role has committed to files so far.
func (r *Role) archivedRows() (rows int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, pb := range r.parts {
		rows += pb.state.Rows
	}
	return rows
}

// BenchmarkRole measures the role alone: b.N synthetic events are produced
// to the embedded broker first, then the timer runs from the role's start
// until every event is in a committed file. It reports events/s and the
// archive's bytes per event.
//
//	go test -run '^$' -bench Role -benchtime 1000000x ./connectors/archive
func BenchmarkRole(b *testing.B) {
	k := testkafka.Start(b, 6)
	dir := b.TempDir()
	st, err := OpenStore(context.Background(), dir, S3Options{})
	if err != nil {
		b.Fatal(err)
	}
	produceSynthetic(b, k, 7, b.N)
	// Flushes by rows while the backlog is read, as a busy partition does
	// (at 300k events/s over 6 partitions one reaches 1M rows in 20 s); a
	// short age writes the tail without a wait that is not archiving work.
	cfg := DefaultConfig()
	cfg.FlushRows = 100_000
	cfg.FlushAge = 200 * time.Millisecond
	b.ResetTimer()
	start := time.Now()
	r, stop := runRole(b, k, st, cfg)
	var firstRows time.Duration
	for n := r.archivedRows(); n < int64(b.N); n = r.archivedRows() {
		if n > 0 && firstRows == 0 {
			firstRows = time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Logf("first rows committed after %v", firstRows)
	elapsed := time.Since(start)
	b.StopTimer()
	stop()
	var files int64
	keys, _ := st.List(context.Background(), "events/")
	for _, key := range keys {
		o, err := st.Open(context.Background(), key)
		if err != nil {
			b.Fatal(err)
		}
		files += o.Size()
		o.Close()
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(files)/float64(b.N), "bytes/event")
	b.ReportMetric(float64(len(keys)), "files")
}

// BenchmarkScan measures Scan over one day of archived events, with the
// context maps and without them (what training reads).
//
//	go test -run '^$' -bench Scan -benchtime 3000000x ./connectors/archive
func BenchmarkScan(b *testing.B) {
	b.Run("context", func(b *testing.B) { benchScan(b, false) })
	b.Run("no-context", func(b *testing.B) { benchScan(b, true) })
}

func benchScan(b *testing.B, skipContext bool) {
	dir := b.TempDir()
	st, err := OpenStore(context.Background(), dir, S3Options{})
	if err != nil {
		b.Fatal(err)
	}
	n := b.N
	writeDay(b, st, n)
	b.ResetTimer()
	start := time.Now()
	var rows int64
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	stats, err := ScanEvents(context.Background(), st, ScanOptions{From: day, To: day.Add(24 * time.Hour), SkipContext: skipContext}, func(r *EventRow) error {
		rows++
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	if rows != int64(n) {
		b.Fatalf("scanned %d rows, want %d (%+v)", rows, n, stats)
	}
	b.ReportMetric(float64(rows)/elapsed.Seconds(), "events/s")
}

// writeDay writes n synthetic events spread over 2026-12-01 as the role
// would (one file per hour and partition), without Kafka.
func writeDay(b testing.TB, st Store, n int) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	gen := newRowGen(7)
	byHour := map[int64][]EventRow{}
	for i := range n {
		r := gen.next()
		r.Ts = day + int64(i)*(24*hourMillis)/int64(n)
		r.Offset = int64(i)
		byHour[hourOf(r.Ts)] = append(byHour[hourOf(r.Ts)], r)
	}
	for h, rows := range byHour {
		meta := fileMeta{kind: Events, topic: "bench", first: rows[0].Offset, last: rows[len(rows)-1].Offset}
		body, err := encodeFile(rows, eventSchema, meta)
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Put(context.Background(), fileKey(Events, h, 0, meta.first, meta.last), body); err != nil {
			b.Fatal(err)
		}
	}
}
