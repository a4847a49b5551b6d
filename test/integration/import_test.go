package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eddyrec/eddy/connectors/movielens/movielenstest"
	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/stream"
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
	if testing.Short() {
		t.Skip("imports ml-100k through eddy up twice")
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
	checkTrainFromArchive(t, dir, ml)
}

// TestImportInterruptedThenCompleted imports the 3M Globo clicks to Kafka,
// stops the import with SIGINT while it publishes, and runs it again: the
// first run prints a summary of what it sent and exits non-zero, the
// second sends only the rest, and the topic ends with every click once.
func TestImportInterruptedThenCompleted(t *testing.T) {
	if os.Getenv(testkafka.EnvBrokers) != "" {
		t.Skip("runs on its own embedded broker")
	}
	if testing.Short() {
		t.Skip("imports 3M clicks")
	}
	globo := filepath.Join(filepath.Dir(movielenstest.Dir(t, "ml-100k")), "globo-g1-clicks", "clicks")
	dir := t.TempDir()
	brokerAddr := freeAddr(t)
	broker := startEddy(t, nil, "broker", "--data-dir", dir, "--embedded-broker-addr", brokerAddr, "--partitions", "3")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(broker.out.String(), "broker ready") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	args := []string{"import", "csv", "--data-dir", dir, "--embedded-broker-addr", brokerAddr, "--partitions", "3",
		"--type", "click", "--ts-unit", "ms", "--json",
		"--columns", "user_id=user_id,item_id=click_article_id,ts=click_timestamp,context.device=click_deviceGroup", globo}
	p := startEddy(t, nil, args...)
	deadline = time.Now().Add(120 * time.Second)
	for !strings.Contains(p.out.String(), "events/s") {
		if time.Now().After(deadline) {
			t.Fatal("the import never started publishing")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	err := p.stop(t, syscall.SIGINT, 60*time.Second)
	out := p.out.String()
	if err == nil || !strings.Contains(out, "import interrupted after") {
		t.Fatalf("interrupted import: exit %v, output:\n%s", err, out)
	}
	var first map[string]any
	for _, l := range lines(out) {
		if strings.HasPrefix(l, "{") {
			_ = json.Unmarshal([]byte(l), &first)
		}
	}
	sent, _ := first["sent"].(float64)
	if first["interrupted"] != true || sent <= 0 || sent >= 2_988_181 || first["accepted"].(float64) != sent {
		t.Fatalf("interrupted summary %v", first)
	}
	stdout, _ := runEddy(t, 300*time.Second, args...)
	var second map[string]any
	if err := json.Unmarshal([]byte(lines(stdout)[len(lines(stdout))-1]), &second); err != nil {
		t.Fatalf("second summary: %v\n%s", err, stdout)
	}
	if second["resumed"].(float64) != sent || second["sent"].(float64) != 2_988_181 || second["accepted"].(float64) != 2_988_181-sent {
		t.Fatalf("second run %v after %v sent", second, sent)
	}
	stdout, _ = runEddy(t, 60*time.Second, "topics", "list", "--json", "--embedded-broker-addr", brokerAddr)
	var topics []stream.TopicInfo
	if err := json.Unmarshal([]byte(stdout), &topics); err != nil {
		t.Fatalf("topics list --json: %v: %s", err, stdout)
	}
	for _, tp := range topics {
		if tp.Name == "eddy.events" && tp.Records != 2_988_181 {
			t.Fatalf("eddy.events holds %d records, want every click once (2988181)", tp.Records)
		}
	}
	t.Logf("interrupted after %v of 2988181; the re-run sent the rest", sent)
}
