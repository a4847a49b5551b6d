package archive

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/stream"
)

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.FlushAge = 200 * time.Millisecond
	cfg.FlushRows = 700
	return cfg
}

// checkExactlyOnce asserts that rows are the events of want, each once,
// equal field by field.
func checkExactlyOnce(t *testing.T, rows []EventRow, want map[string]eventWant) {
	t.Helper()
	seen := map[string]int{}
	for i := range rows {
		r := &rows[i]
		seen[r.EventID]++
		w, ok := want[r.EventID]
		if !ok {
			t.Fatalf("archived event %q was never produced", r.EventID)
		}
		e, err := r.Event()
		if err != nil {
			t.Fatal(err)
		}
		if got, exp := string(e.AppendJSON(nil)), string(w.AppendJSON(nil)); got != exp {
			t.Fatalf("event %s archived as\n%s\nwant\n%s", r.EventID, got, exp)
		}
	}
	for id := range want {
		if seen[id] != 1 {
			t.Fatalf("event %s archived %d times, want once (%d of %d archived)", id, seen[id], len(rows), len(want))
		}
	}
}

func TestRoleArchivesEveryEventOnce(t *testing.T) {
	k := testkafka.Start(t, 3)
	st, err := OpenStore(context.Background(), t.TempDir(), S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := produceSynthetic(t, k, 1, 5000)
	_, stop := runRole(t, k, st, testConfig())
	rows := waitRows(t, st, len(want), 60*time.Second)
	stop()
	checkExactlyOnce(t, rows, wrap(want))

	// A restart archives only what is new.
	more := produceSynthetic(t, k, 2, 3000)
	for id, e := range more {
		want[id] = e
	}
	_, stop = runRole(t, k, st, testConfig())
	rows = waitRows(t, st, len(want), 60*time.Second)
	stop()
	checkExactlyOnce(t, rows, wrap(want))
}

func TestRoleArchivesServedLists(t *testing.T) {
	k := testkafka.Start(t, 2)
	st, err := OpenStore(context.Background(), t.TempDir(), S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	cl := k.NewClient(t)
	topic := k.Layout.Name(stream.TopicRecs)
	base := time.Now().Add(-2 * time.Hour).UnixMilli()
	const lists = 500
	for i := range lists {
		v := fmt.Sprintf(`{"request_id":"r%d","user_id":"u%d","model_version":"7","variant":"online","fallback":%v,"ts":%d,`+
			`"items":[{"item_id":"i%d","position":0,"score":0.5,"features":{"mf_score":0.25,"pop":1.5}},{"item_id":"i2","position":1,"score":0.25}]}`,
			i, i%37, i%10 == 0, base+int64(i)*20_000, i)
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint("u", i%37)), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// One record that is not a served list: skipped, its offset covered.
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Key: []byte("u1"), Value: []byte(`{"nope":1}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	_, stop := runRole(t, k, st, testConfig())
	var got []RecsRow
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < lists && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		got = got[:0]
		if _, err := ScanRecs(context.Background(), st, ScanOptions{}, func(r *RecsRow) error {
			got = append(got, *r)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	if len(got) != lists {
		t.Fatalf("%d served lists archived, want %d", len(got), lists)
	}
	seen := map[string]bool{}
	for _, r := range got {
		if seen[r.RequestID] {
			t.Fatalf("list %s archived twice", r.RequestID)
		}
		seen[r.RequestID] = true
		if len(r.Items) != 2 || r.Items[0].Features["mf_score"] != 0.25 || r.Items[1].Position != 1 || r.Variant == nil || *r.Variant != "online" {
			t.Fatalf("list %+v", r)
		}
	}
	// The range reads only what falls in it: 30 minutes of lists 20 s apart.
	from := time.UnixMilli(base).Add(time.Hour)
	n := 0
	stats, err := ScanRecs(context.Background(), st, ScanOptions{From: from, To: from.Add(30 * time.Minute)}, func(*RecsRow) error { n++; return nil })
	if err != nil || n != 90 {
		t.Fatalf("range scan: %d lists (want 90), %+v, %v", n, stats, err)
	}
}
