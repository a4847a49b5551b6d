package integration

import (
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eddyrec/eddy/connectors/movielens/movielenstest"
	"github.com/eddyrec/eddy/internal/testkafka"
)

// TestImportMovieLensTwiceThroughUp imports ml-100k into a running
// `eddy up` through its ingest API: the import is applied by the feature
// store and archived. A second run of the same import sends nothing (the
// ledger), and one with --force sends the same deterministic event ids
// again: the archive, a faithful log of the topic, then holds each id
// twice. (The feature store's de-duplication remembers ids for an hour of
// event time, so it cannot catch a re-sent history: that is the ledger's
// job.)
func TestImportMovieLensTwiceThroughUp(t *testing.T) {
	if os.Getenv(testkafka.EnvBrokers) != "" {
		t.Skip("runs eddy up on its embedded broker")
	}
	ml := movielenstest.Dir(t, "ml-100k")
	dir := t.TempDir()
	httpAddr, brokerAddr := freeAddr(t), freeAddr(t)
	p := startEddy(t, nil, "up", "--data-dir", dir, "--http-addr", httpAddr, "--embedded-broker-addr", brokerAddr,
		"--partitions", "2", "--archive-flush-age", "500ms")
	waitReady(t, p, "http://"+httpAddr+"/readyz", 60*time.Second)
	summary := func(out string) map[string]any {
		var s map[string]any
		if err := json.Unmarshal([]byte(lines(out)[len(lines(out))-1]), &s); err != nil {
			t.Fatalf("import summary: %v\n%s", err, out)
		}
		return s
	}
	importOnce := func(extra ...string) map[string]any {
		args := append([]string{"import", "movielens", "--data-dir", dir, "--to", "http://" + httpAddr, "--json"}, extra...)
		out, _ := runEddy(t, 120*time.Second, append(args, ml)...)
		return summary(out)
	}
	applied := `eddy_features_events_total{result="applied"}`
	waitArchived := func(n int) {
		deadline := time.Now().Add(120 * time.Second)
		for metricValue(t, httpAddr, `eddy_archive_records_total{kind="events"}`) < float64(n) {
			if time.Now().After(deadline) {
				t.Fatalf("archive holds %v events, want %d", metricValue(t, httpAddr, `eddy_archive_records_total{kind="events"}`), n)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if s := importOnce(); s["accepted"].(float64) != 100_000 || s["bad_rows"].(float64) != 0 {
		t.Fatalf("first import: %v", s)
	}
	waitArchived(100_000)
	deadline := time.Now().Add(60 * time.Second)
	for metricValue(t, httpAddr, applied) < 100_000 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	first := metricValue(t, httpAddr, applied)
	if first != 100_000 {
		t.Fatalf("applied %v of 100000 imported events", first)
	}
	if s := importOnce(); s["already_imported"] != true || s["accepted"].(float64) != 0 {
		t.Fatalf("second import sent again: %v", s)
	}
	time.Sleep(2 * time.Second)
	if a := metricValue(t, httpAddr, applied); a != first {
		t.Fatalf("after the skipped import: applied %v, was %v", a, first)
	}
	if s := importOnce("--force"); s["accepted"].(float64) != 100_000 {
		t.Fatalf("forced import: %v", s)
	}
	waitArchived(200_000)
	ids := map[string]int{}
	for _, r := range archivedEvents(t, dir+"/archive") {
		ids[r.EventID]++
	}
	if len(ids) != 100_000 {
		t.Fatalf("archive: %d distinct event ids, want 100000", len(ids))
	}
	for id, n := range ids {
		if n != 2 || !strings.HasPrefix(id, "imp-") {
			t.Fatalf("event %s archived %d times, want 2 (the import and the forced one)", id, n)
		}
	}
	if err := p.stop(t, syscall.SIGTERM, 60*time.Second); err != nil {
		t.Fatalf("clean stop: %v", err)
	}
}
