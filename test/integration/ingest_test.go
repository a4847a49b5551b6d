package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/stream"
)

func eventLine(id, user string) string {
	return fmt.Sprintf(`{"event_id":%q,"user_id":%q,"item_id":"i%d","type":"click","ts":1700000000000}`, id, user, len(id)%7)
}

func post(url, body string) (int, []byte, error) {
	resp, err := http.Post(url+"/v1/events", "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func eventIDs(t *testing.T, k *testkafka.Kafka) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for _, r := range k.ReadAll(t, k.Layout.Name(stream.TopicEvents)) {
		e, err := event.Decode(r.Value, event.DecodeOptions{})
		if err != nil {
			t.Fatalf("record at %d/%d does not decode: %v", r.Partition, r.Offset, err)
		}
		ids[e.EventID]++
	}
	return ids
}

// startIngest runs `eddy ingest` against k and waits until it is ready.
func startIngest(t *testing.T, k *testkafka.Kafka, extra ...string) (*proc, string) {
	t.Helper()
	addr := freeAddr(t)
	args := append([]string{"ingest",
		"--brokers", strings.Join(k.Brokers, ","),
		"--topic-prefix", k.Layout.Prefix,
		"--partitions", fmt.Sprint(k.Layout.Partitions),
		"--http-addr", addr,
		"--log-format", "json",
	}, extra...)
	p := startEddy(t, nil, args...)
	url := "http://" + addr
	waitReady(t, p, url+"/readyz", 60*time.Second)
	return p, url
}

func TestIngestEndToEnd(t *testing.T) {
	k := testkafka.Start(t, 3)
	_, url := startIngest(t, k)
	var b strings.Builder
	for i := range 1000 {
		b.WriteString(eventLine(fmt.Sprintf("e%d", i), fmt.Sprintf("u%d", i%31)) + "\n")
	}
	code, body, err := post(url, b.String())
	if err != nil || code != 202 {
		t.Fatalf("post: %d %s %v", code, body, err)
	}
	code, body, _ = post(url, `{"event_id":"x","user_id":"u","item_id":"i","type":"tap","ts":1}`)
	if code != 400 || !bytes.Contains(body, []byte(`"index":0`)) {
		t.Fatalf("bad event: %d %s", code, body)
	}
	ids := eventIDs(t, k)
	if len(ids) != 1000 {
		t.Fatalf("topic holds %d distinct events, want 1000", len(ids))
	}
	if dlq := k.ReadAll(t, k.Layout.Name(stream.TopicEventsDLQ)); len(dlq) != 1 {
		t.Fatalf("dead letters: %d, want 1", len(dlq))
	}
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`eddy_ingest_events_total{result="accepted"} 1000`, `eddy_ingest_events_total{result="rejected"} 1`, "eddy_ingest_request_duration_seconds_bucket", "eddy_ingest_produce_duration_seconds_bucket"} {
		if !bytes.Contains(m, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestSIGTERMWithRequestsInFlight: every batch that was answered 202 before
// or during a graceful shutdown is in the topic.
func TestSIGTERMWithRequestsInFlight(t *testing.T) {
	k := testkafka.Start(t, 3)
	p, url := startIngest(t, k)
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				var b strings.Builder
				ids := make([]string, 200)
				for i := range ids {
					ids[i] = fmt.Sprintf("w%d-b%d-%d", w, n, i)
					b.WriteString(eventLine(ids[i], fmt.Sprintf("u%d", i)) + "\n")
				}
				code, _, err := post(url, b.String())
				if err != nil {
					return // the server is gone
				}
				if code == 202 {
					mu.Lock()
					acked = append(acked, ids...)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := p.stop(t, syscall.SIGTERM, 60*time.Second); err != nil {
		t.Fatalf("eddy ingest exited with %v after SIGTERM, want a clean exit", err)
	}
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no batch was acknowledged before the shutdown")
	}
	got := eventIDs(t, k)
	missing := 0
	for _, id := range acked {
		if got[id] == 0 {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged events are not in the topic", missing, len(acked))
	}
	t.Logf("%d acknowledged events, all in the topic", len(acked))
}

// TestKcatProducerEddyReads: an outside client (kcat) produces plain JSON
// events without Eddy's headers; Eddy reads exactly those events.
func TestKcatProducerEddyReads(t *testing.T) {
	kcat := testkafka.RequireTool(t, "kcat")
	k := testkafka.Start(t, 3)
	topic := k.Layout.Name(stream.TopicEvents)
	var in strings.Builder
	want := map[string]event.Event{}
	for i := range 50 {
		ts := `1700000000123`
		if i%2 == 1 {
			ts = `"2023-11-14T22:13:20.5Z"`
		}
		line := fmt.Sprintf(`{"event_id":"k%d","user_id":"u%d","item_id":"i%d","type":"watch","ts":%s,"value":%d,"duration":100,"context":{"device":"tv"}}`, i, i%5, i, ts, i)
		e, err := event.Decode([]byte(line), event.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want[e.EventID] = e
		fmt.Fprintf(&in, "u%d\t%s\n", i%5, line)
	}
	cmd := exec.Command(kcat, "-b", strings.Join(k.Brokers, ","), "-P", "-t", topic, "-K", "\t")
	cmd.Stdin = strings.NewReader(in.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}
	stdout, stderr := runEddy(t, 60*time.Second, "tail",
		"--brokers", strings.Join(k.Brokers, ","), "--topic-prefix", k.Layout.Prefix,
		"--count", "50", "--idle-timeout", "30s")
	got := lines(stdout)
	if len(got) != 50 {
		t.Fatalf("eddy read %d events, want 50\nstderr: %s", len(got), stderr)
	}
	for _, l := range got {
		e, err := event.Decode([]byte(l), event.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w, ok := want[e.EventID]
		if !ok {
			t.Fatalf("eddy read an event kcat did not write: %s", e.EventID)
		}
		wj, gj := w.AppendJSON(nil), e.AppendJSON(nil)
		if !bytes.Equal(wj, gj) {
			t.Fatalf("event %s read as %s, written as %s", e.EventID, gj, wj)
		}
		delete(want, e.EventID)
	}
	if !strings.Contains(stderr, "50 valid events, 0 invalid") {
		t.Errorf("summary: %s", stderr)
	}
}

// TestUpSurvivesKill9: `eddy up` keeps its broker log under --data-dir; after
// a SIGKILL and a restart, every acknowledged event is still there and new
// ones are accepted.
func TestUpSurvivesKill9(t *testing.T) {
	if os.Getenv(testkafka.EnvBrokers) != "" {
		t.Skip("tests the embedded broker")
	}
	dir := t.TempDir()
	httpAddr, brokerAddr := freeAddr(t), freeAddr(t)
	args := []string{"up", "--data-dir", dir, "--http-addr", httpAddr, "--embedded-broker-addr", brokerAddr, "--partitions", "2"}
	url := "http://" + httpAddr
	post100 := func(prefix string) {
		var b strings.Builder
		for i := range 100 {
			b.WriteString(eventLine(fmt.Sprintf("%s%d", prefix, i), "u1") + "\n")
		}
		if code, body, err := post(url, b.String()); err != nil || code != 202 {
			t.Fatalf("post: %d %s %v", code, body, err)
		}
	}
	p := startEddy(t, nil, args...)
	waitReady(t, p, url+"/readyz", 60*time.Second)
	post100("a")
	_ = p.stop(t, syscall.SIGKILL, 10*time.Second)

	p = startEddy(t, nil, args...)
	waitReady(t, p, url+"/readyz", 60*time.Second)
	post100("b")
	stdout, _ := runEddy(t, 60*time.Second, "topics", "list", "--json", "--embedded-broker-addr", brokerAddr)
	var topics []stream.TopicInfo
	if err := json.Unmarshal([]byte(stdout), &topics); err != nil {
		t.Fatalf("topics list --json: %v: %s", err, stdout)
	}
	var records int64 = -1
	for _, tp := range topics {
		if tp.Name == "eddy.events" {
			records = tp.Records
		}
	}
	if records != 200 {
		t.Fatalf("eddy.events holds %d records after kill -9 and restart, want 200 (%s)", records, stdout)
	}
	if err := p.stop(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatalf("clean stop: %v", err)
	}
	// A second instance on the same data dir is refused, not corrupting it.
	if _, err := os.Stat(filepath.Join(dir, "broker", "LOCK")); err != nil {
		t.Fatalf("no lock file in the broker dir: %v", err)
	}
}

// TestRealBrokerRestart stops and starts the real Kafka broker under a
// running `eddy ingest`: answers are 503 while it is away, and ingest
// recovers by itself.
func TestRealBrokerRestart(t *testing.T) {
	if os.Getenv(testkafka.EnvBrokers) == "" {
		// scripts/integration.sh runs this package again with a real broker
		// (and fails in CI when it cannot start one).
		t.Skip("runs only against the real broker of scripts/integration.sh (EDDY_TEST_BROKERS unset)")
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "kafka-broker.sh")
	k := testkafka.Start(t, 3)
	_, url := startIngest(t, k, "--produce-timeout", "2s")
	if code, body, err := post(url, eventLine("before", "u1")); err != nil || code != 202 {
		t.Fatalf("before: %d %s %v", code, body, err)
	}
	stopCmd := exec.Command("bash", script, "stop", "--keep-data")
	if out, err := stopCmd.CombinedOutput(); err != nil {
		t.Fatalf("stop broker: %v\n%s", err, out)
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = exec.Command("bash", script, "start", "--reuse").Run()
		}
	}()
	code, body, err := post(url, eventLine("during", "u1"))
	if err != nil || code != 503 {
		t.Fatalf("with the broker down: %d %s %v, want 503", code, body, err)
	}
	startCmd := exec.Command("bash", script, "start", "--reuse")
	if out, err := startCmd.CombinedOutput(); err != nil {
		t.Fatalf("start broker: %v\n%s", err, out)
	}
	restarted = true
	deadline := time.Now().Add(90 * time.Second)
	for {
		code, body, err := post(url, eventLine("after", "u1"))
		if err == nil && code == 202 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingest did not recover within 90 s: %d %s %v", code, body, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	ids := eventIDs(t, k)
	if ids["before"] == 0 || ids["after"] == 0 {
		t.Fatalf("acknowledged events missing: %v", ids)
	}
}
