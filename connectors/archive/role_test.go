package archive

import (
	"context"
	"testing"
	"time"

	"github.com/eddyrec/eddy/internal/testkafka"
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
