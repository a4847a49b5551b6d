package archive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/stream"
)

func TestOpenStoreErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		location, want string
	}{
		{filepath.Join(file, "archive"), "not a directory"},
		{"", "empty archive directory"},
		{"gs://bucket/x", "want a directory or s3://bucket/prefix"},
		{"s3:///nobucket", "want s3://bucket"},
	} {
		_, err := OpenStore(context.Background(), tc.location, S3Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("OpenStore(%q) = %v, want an error containing %q", tc.location, err, tc.want)
		}
	}
}

func TestScanRefusesAnotherSchemaVersion(t *testing.T) {
	st, err := OpenStore(context.Background(), t.TempDir(), S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	writeDay(t, st, 100)
	// A file of a layout this build does not read, beside good ones.
	m := fileMeta{kind: Events, topic: "x", first: 1000, last: 1001}
	opts := append(m.options(), eventSchema, parquet.KeyValueMetadata(MetaSchema, "eddy.archive.events/2"))
	var buf strings.Builder
	w := parquet.NewGenericWriter[EventRow](&buf, opts...)
	w.Write([]EventRow{newRowGen(1).next()})
	w.Close()
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	key := fileKey(Events, day.UnixMilli(), 9, 1000, 1001)
	if err := st.Put(context.Background(), key, []byte(buf.String())); err != nil {
		t.Fatal(err)
	}
	_, err = Scan(context.Background(), st, day, day.Add(24*time.Hour), func(*EventRow) error { return nil })
	if !errors.Is(err, ErrSchemaVersion) || !strings.Contains(err.Error(), "eddy.archive.events/2") {
		t.Fatalf("Scan = %v, want ErrSchemaVersion naming the file's version", err)
	}
	// Not Parquet at all.
	if err := st.Put(context.Background(), key, []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	if _, err = Scan(context.Background(), st, day, day.Add(24*time.Hour), func(*EventRow) error { return nil }); err == nil || !strings.Contains(err.Error(), "not a readable Parquet file") {
		t.Fatalf("Scan of a garbage file = %v", err)
	}
}

func TestScanSkipsByFolderAndRowGroup(t *testing.T) {
	st, err := OpenStore(context.Background(), t.TempDir(), S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	rowGroupRows = 1000
	defer func() { rowGroupRows = RowGroupRows }()
	writeDay(t, st, 2*24*1000) // two row groups per hour file
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	from := day.Add(5*time.Hour + 50*time.Minute)
	n := 0
	stats, err := Scan(context.Background(), st, from, from.Add(5*time.Minute), func(r *EventRow) error {
		if r.Ts < from.UnixMilli() || r.Ts >= from.Add(5*time.Minute).UnixMilli() {
			t.Fatalf("row at %v outside the range", timeMillis(r.Ts))
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// One hour folder read, and in it only the second row group.
	if stats.Files != 1 || stats.FilesSkipped != 23 || stats.RowGroups != 1 || stats.RowGroupsSkipped != 1 || n == 0 {
		t.Fatalf("stats %+v, %d rows", stats, n)
	}
}

func TestRoleSkipsInvalidRecordsAndCoversTheirOffsets(t *testing.T) {
	k := testkafka.Start(t, 1)
	st, err := OpenStore(context.Background(), t.TempDir(), S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	cl := k.NewClient(t)
	topic := k.Layout.Name(stream.TopicEvents)
	want := produceSynthetic(t, k, 9, 100)
	for _, r := range []*kgo.Record{
		{Topic: topic, Value: []byte("not json")},
		{Topic: topic, Value: []byte(`{"event_id":"x","user_id":"u","item_id":"i","type":"poke","ts":1}`)},
		{Topic: topic, Value: []byte(`{"event_id":"y","user_id":"u","item_id":"i","type":"click","ts":1}`),
			Headers: []kgo.RecordHeader{{Key: "eddy-schema", Value: []byte("event/v9")}}},
	} {
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	more := produceSynthetic(t, k, 10, 100)
	for id, e := range more {
		want[id] = e
	}
	_, stop := runRole(t, k, st, testConfig())
	rows := waitRows(t, st, len(want), 30*time.Second)
	stop()
	checkExactlyOnce(t, rows, want)
	s, _, err := loadState(context.Background(), st, Events, 0)
	if err != nil || s.Next != 203 || s.Rows != 200 {
		t.Fatalf("state %+v %v: want next 203 (every offset covered) and 200 rows", s, err)
	}
}

// TestRoleLogBehindArchive: an archive ahead of its topic (the topic
// recreated, the broker's log wiped) is counted as a gap, not silently
// skipped.
func TestRoleLogBehindArchive(t *testing.T) {
	k := testkafka.Start(t, 1)
	st, err := OpenStore(context.Background(), t.TempDir(), S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := saveState(context.Background(), st, Events, 0, partitionState{Next: 1000}); err != nil {
		t.Fatal(err)
	}
	produceSynthetic(t, k, 4, 10)
	r, stop := runRole(t, k, st, testConfig())
	deadline := time.Now().Add(20 * time.Second)
	for testutil.ToFloat64(r.m.gap.WithLabelValues("events")) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if got := testutil.ToFloat64(r.m.gap.WithLabelValues("events")); got != 990 {
		t.Fatalf("gap %v, want 990 (archived up to 1000, the log ends at 10)", got)
	}
}
