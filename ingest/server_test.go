package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/ingest"
	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/stream"
)

type fixture struct {
	k      *testkafka.Kafka
	srv    *httptest.Server
	reg    *prometheus.Registry
	topics ingest.Topics
}

func newFixture(t *testing.T, mutate func(*ingest.Config)) *fixture {
	t.Helper()
	k := testkafka.Start(t, 3)
	cfg := ingest.DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	cl := k.NewClient(t, ingest.ProducerOpts(cfg)...)
	topics := ingest.Topics{Events: k.Layout.Name(stream.TopicEvents), DLQ: k.Layout.Name(stream.TopicEventsDLQ)}
	reg := prometheus.NewRegistry()
	s, err := ingest.New(cfg, cl, topics, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fixture{k: k, srv: srv, reg: reg, topics: topics}
}

type answer struct {
	code       int
	retryAfter string
	body       ingest.Response
	raw        string
}

func (f *fixture) post(t *testing.T, contentType string, body []byte, hdr ...string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/v1/events", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

func ev(id string) string {
	return fmt.Sprintf(`{"event_id":%q,"user_id":"u1","item_id":"i1","type":"click","ts":1700000000000}`, id)
}

const ndjson = "application/x-ndjson"

func TestPostEventsBadInput(t *testing.T) {
	f := newFixture(t, func(c *ingest.Config) { c.MaxBodyBytes = 4096 })
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name        string
		contentType string
		body        string
		wantCode    int
		wantInError string
	}{
		{"malformed json", "application/json", `{"event_id": "e1",`, 400, ""},
		{"truncated array", "application/json", `[` + ev("a") + `,{"event_id":"b","us`, 400, ""},
		{"not json at all", "application/json", `hello`, 400, ""},
		{"empty body", "application/json", ``, 400, ""},
		{"wrong content type", "text/plain", ev("a"), 415, "content type"},
		{"missing content type", "", ev("a"), 415, "content type"},
		{"body over the limit", ndjson, strings.Repeat(ev("a")+"\n", 100), 413, "limit"},
		{"wrong field type", "application/json", `{"event_id":"e","user_id":5,"item_id":"i","type":"click","ts":1700000000000}`, 400, "user_id"},
		{"unknown type", "application/json", `{"event_id":"e","user_id":"u","item_id":"i","type":"poke","ts":1700000000000}`, 400, "type"},
		{"empty user id", "application/json", `{"event_id":"e","user_id":"","item_id":"i","type":"click","ts":1700000000000}`, 400, "user_id"},
		{"item id over the limit", "application/json", `{"event_id":"e","user_id":"u","item_id":"` + strings.Repeat("x", 257) + `","type":"click","ts":1700000000000}`, 400, "item_id"},
		{"invalid utf-8", "application/json", "{\"event_id\":\"e\",\"user_id\":\"u\xff\",\"item_id\":\"i\",\"type\":\"click\",\"ts\":1700000000000}", 400, "user_id"},
		{"control character", "application/json", `{"event_id":"e","user_id":"u\u0001","item_id":"i","type":"click","ts":1700000000000}`, 400, "user_id"},
		{"ts in the far future", "application/json", `{"event_id":"e","user_id":"u","item_id":"i","type":"click","ts":"` + future + `"}`, 400, "ts"},
		{"NaN value", "application/json", `{"event_id":"e","user_id":"u","item_id":"i","type":"watch","ts":1700000000000,"value":"NaN"}`, 400, "value"},
		{"negative watch", "application/json", `{"event_id":"e","user_id":"u","item_id":"i","type":"watch","ts":1700000000000,"value":-3}`, 400, "value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := f.post(t, tt.contentType, []byte(tt.body))
			if a.code != tt.wantCode {
				t.Fatalf("code = %d, want %d; body %s", a.code, tt.wantCode, a.raw)
			}
			if tt.wantInError != "" && !strings.Contains(a.raw, tt.wantInError) {
				t.Errorf("answer %s does not mention %q", a.raw, tt.wantInError)
			}
		})
	}
	if got := len(f.k.ReadAll(t, f.topics.Events)); got != 0 {
		t.Errorf("events topic has %d records after only bad input, want 0", got)
	}
	// Every single-event rejection that was decodable is dead-lettered with
	// its reason: the nine rule violations above.
	dlq := f.k.ReadAll(t, f.topics.DLQ)
	if len(dlq) != 9 {
		t.Errorf("dead-letter topic has %d records, want 9", len(dlq))
	}
	for _, r := range dlq {
		var dl event.DeadLetter
		if err := json.Unmarshal(r.Value, &dl); err != nil {
			t.Fatalf("dead letter %q: %v", r.Value, err)
		}
		if dl.Reason == "" || dl.Raw == "" || dl.Source != "http" {
			t.Errorf("dead letter lacks reason, raw or source: %+v", dl)
		}
	}
}

func TestPostBatchOneBadInTheMiddle(t *testing.T) {
	f := newFixture(t, func(c *ingest.Config) { c.MaxBodyBytes = 8 << 20 })
	const n = 10000
	var body bytes.Buffer
	for i := range n {
		if i == n/2 {
			body.WriteString(`{"event_id":"bad","user_id":"u1","item_id":"i1","type":"clack","ts":1700000000000}` + "\n")
			continue
		}
		fmt.Fprintf(&body, `{"event_id":"e%d","user_id":"u%d","item_id":"i%d","type":"click","ts":1700000000000}`+"\n", i, i%97, i%13)
	}
	a := f.post(t, ndjson, body.Bytes())
	if a.code != http.StatusAccepted {
		t.Fatalf("code %d: %s", a.code, a.raw)
	}
	if a.body.Accepted != n-1 || len(a.body.Rejected) != 1 || a.body.Rejected[0].Index != n/2 {
		t.Fatalf("answer accepted=%d rejected=%+v, want %d accepted and index %d rejected", a.body.Accepted, a.body.Rejected, n-1, n/2)
	}
	recs := f.k.ReadAll(t, f.topics.Events)
	if len(recs) != n-1 {
		t.Fatalf("events topic has %d records, want %d", len(recs), n-1)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		e, err := event.Decode(r.Value, event.DecodeOptions{})
		if err != nil {
			t.Fatalf("record does not decode: %v", err)
		}
		if string(r.Key) != e.UserID {
			t.Fatalf("record key %q, want user id %q", r.Key, e.UserID)
		}
		seen[e.EventID] = true
	}
	if len(seen) != n-1 || seen["bad"] {
		t.Fatalf("distinct accepted events %d (bad present: %v)", len(seen), seen["bad"])
	}
	if got := counterValue(t, f.reg, "eddy_ingest_events_total", "accepted"); got != n-1 {
		t.Errorf("accepted counter %v, want %d", got, n-1)
	}
	if dlq := f.k.ReadAll(t, f.topics.DLQ); len(dlq) != 1 {
		t.Errorf("dead letters %d, want 1", len(dlq))
	}
}

func TestPostEventsAuth(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(c *ingest.Config) { c.AuthTokenFile = tokenFile })
	for _, tt := range []struct {
		name string
		hdr  []string
		want int
	}{
		{"missing token", nil, 401},
		{"wrong token", []string{"Authorization", "Bearer nope"}, 401},
		{"wrong scheme", []string{"Authorization", "Basic s3cret"}, 401},
		{"right token", []string{"Authorization", "Bearer s3cret"}, 202},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if a := f.post(t, "application/json", []byte(ev("a-"+tt.name)), tt.hdr...); a.code != tt.want {
				t.Fatalf("code %d, want %d: %s", a.code, tt.want, a.raw)
			}
		})
	}
}

func TestPostEventsFormats(t *testing.T) {
	f := newFixture(t, nil)
	for _, tt := range []struct {
		name, ct, body string
		want           int
	}{
		{"object", "application/json", ev("o1"), 1},
		{"array", "application/json; charset=utf-8", "[" + ev("a1") + "," + ev("a2") + "]", 2},
		{"ndjson", ndjson, ev("n1") + "\n\n" + ev("n2") + "\n" + ev("n3"), 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := f.post(t, tt.ct, []byte(tt.body))
			if a.code != 202 || a.body.Accepted != tt.want {
				t.Fatalf("code %d accepted %d, want 202 and %d: %s", a.code, a.body.Accepted, tt.want, a.raw)
			}
		})
	}
}

// TestBrokerDownThenBack stops the broker under a running ingest server: the
// answer becomes 503 with Retry-After within the produce timeout, and once
// the broker is back (same port, same log) ingest recovers by itself.
func TestBrokerDownThenBack(t *testing.T) {
	if os.Getenv(testkafka.EnvBrokers) != "" {
		t.Skip("restarts the embedded broker; the real-broker restart is in the integration suite")
	}
	dir := t.TempDir()
	b, err := stream.StartEmbedded(stream.EmbeddedConfig{Addr: "127.0.0.1:0", DataDir: dir, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	k := &testkafka.Kafka{Brokers: []string{addr}, Layout: stream.TopicLayout{Prefix: "eddy.", Partitions: 2, ReplicationFactor: 1}}
	k.CreateTopics(t)
	cfg := ingest.DefaultConfig()
	cfg.ProduceTimeout = time.Second
	cc := k.Client()
	cl, err := cc.NewClient(ingest.ProducerOpts(cfg)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	s, err := ingest.New(cfg, cl, ingest.Topics{Events: "eddy.events", DLQ: "eddy.events.dlq"}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	f := &fixture{k: k, srv: srv}

	if a := f.post(t, "application/json", []byte(ev("before"))); a.code != 202 {
		t.Fatalf("before: %d %s", a.code, a.raw)
	}
	b.Close()
	start := time.Now()
	a := f.post(t, "application/json", []byte(ev("during")))
	if a.code != 503 || a.retryAfter == "" {
		t.Fatalf("broker down: code %d Retry-After %q, want 503 with Retry-After: %s", a.code, a.retryAfter, a.raw)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("503 took %v, want about the 1 s produce timeout", took)
	}
	if err := s.Ready(context.Background()); err == nil {
		t.Error("Ready() = nil with the broker down")
	}
	b2, err := stream.StartEmbedded(stream.EmbeddedConfig{Addr: addr, DataDir: dir, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		a := f.post(t, "application/json", []byte(ev("after")))
		if a.code == 202 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery within 30 s: last answer %d %s", a.code, a.raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
	ids := map[string]bool{}
	for _, r := range k.ReadAll(t, "eddy.events") {
		e, err := event.Decode(r.Value, event.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ids[e.EventID] = true
	}
	if !ids["before"] || !ids["after"] {
		t.Fatalf("acknowledged events missing after the broker restart: %v", ids)
	}
}

// TestInflightLimit holds the in-flight budget with a slow request and checks
// that the next one is refused at once with 503 instead of queueing.
func TestInflightLimit(t *testing.T) {
	f := newFixture(t, func(c *ingest.Config) {
		c.MaxBodyBytes = 1 << 10
		c.MaxInflightBytes = 1 << 10
	})
	pr, pw := io.Pipe()
	// The slow request is ended by canceling it: a closed pipe alone left
	// the client's Do waiting once (seen in CI).
	slowCtx, cancelSlow := context.WithCancel(context.Background())
	defer cancelSlow()
	req, _ := http.NewRequestWithContext(slowCtx, http.MethodPost, f.srv.URL+"/v1/events", pr)
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = 1 << 10 // reserve the whole budget
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	_, _ = pw.Write([]byte("[")) // the client is now sending the body
	// Probe only once the server holds the slow request's reservation: a
	// probe sent earlier could take the budget first, the slow request
	// would then be the one refused, and every later probe would pass
	// (seen against a real broker, where the probe's produce is slower).
	deadline := time.Now().Add(5 * time.Second)
	for gaugeValue(t, f.reg, "eddy_ingest_inflight_bytes") < 1<<10 {
		if time.Now().After(deadline) {
			t.Fatalf("the slow request never reserved the budget: %v bytes in flight", gaugeValue(t, f.reg, "eddy_ingest_inflight_bytes"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	a := f.post(t, "application/json", []byte(ev("x")))
	if a.code != 503 {
		t.Fatalf("not refused while the budget was held: %d %s", a.code, a.raw)
	}
	if a.retryAfter == "" {
		t.Error("503 without Retry-After")
	}
	pw.CloseWithError(io.ErrUnexpectedEOF)
	cancelSlow()
	wg.Wait()
	// The budget comes back when the server's handler returns, which may be
	// a moment after the client saw its request fail.
	deadline = time.Now().Add(5 * time.Second)
	for {
		a := f.post(t, "application/json", []byte(ev("y")))
		if a.code == 202 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("budget not released after the slow request ended: %d %s", a.code, a.raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gaugeValue reads the unlabelled gauge name from reg.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			return mf.Metric[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("gauge %s not found", name)
	return 0
}

// counterValue reads the counter name{…=label} from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			for _, lp := range m.Label {
				if lp.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("metric %s{%s} not found", name, label)
	return 0
}

var quietLog = slog.New(slog.DiscardHandler)
