package integration

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/drift"
	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/testkafka"
)

// driftTestConfig: 1-minute event-time windows (~3,000 synthetic events at
// the generator's 20 ms mean gap), a reference of 3 windows, a trigger
// after 2 drifted windows.
const driftTestConfig = `
window: {size: 1m, lateness: 5s, sample: 1}
reference_windows: 3
min_samples: 100
trigger: {consecutive: 2}
`

// driftStream generates, with eddy gen, the seeded stream whose popularity
// shifts at event 18,000 (window 6: 3 reference windows, 3 stationary,
// then shifted), as NDJSON lines.
func driftStream(t *testing.T, count int) []string {
	t.Helper()
	out, _ := runEddy(t, 120*time.Second, "gen", "--seed", "5", "--users", "2000", "--items", "1000",
		"--count", strconv.Itoa(count), "--drift-at", "18000", "--drift-kind", "popularity")
	ls := lines(out)
	if len(ls) != count {
		t.Fatalf("eddy gen wrote %d events, want %d", len(ls), count)
	}
	return ls
}

// servedList is a served list of the stream with the index of the event
// it was served at (its first impression).
type servedList struct {
	at   int
	user string
	json []byte
}

// servedLists builds the lists the scorer would have published for the
// stream's requests (their impressions, scores falling with position,
// model version "m1"), in the drift.ServedList shape.
func servedLists(t *testing.T, ls []string) []servedList {
	t.Helper()
	idx := map[string]int{}
	var lists []drift.ServedList
	var at []int
	for i, l := range ls {
		e, err := event.Decode([]byte(l), event.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if e.Type != event.Impression || e.RequestID == "" {
			continue
		}
		j, ok := idx[e.RequestID]
		if !ok {
			lists = append(lists, drift.ServedList{RequestID: e.RequestID, UserID: e.UserID, ModelVersion: "m1", Time: e.Time})
			at = append(at, i)
			j = len(lists) - 1
			idx[e.RequestID] = j
		}
		n := len(lists[j].Items)
		lists[j].Items = append(lists[j].Items, drift.ServedItem{ItemID: e.ItemID, Position: n, Score: 1 / float64(1+n),
			Features: drift.Features{{Name: "mf_score", Value: 1 / float64(1+n)}}})
	}
	out := make([]servedList, len(lists))
	for i := range lists {
		b, err := json.Marshal(lists[i])
		if err != nil {
			t.Fatal(err)
		}
		out[i] = servedList{at: at[i], user: lists[i].UserID, json: b}
	}
	return out
}

// produceStream produces events [from, to) of the stream and the served
// lists served within it, lists to the recs topic with the recs/v1 schema
// header as the scorer writes them.
func produceStream(t *testing.T, k *testkafka.Kafka, ls []string, lists []servedList, from, to int) {
	t.Helper()
	produceLines(t, k, ls[from:to])
	cl := k.NewClient(t)
	var recs []*kgo.Record
	for _, l := range lists {
		if l.at >= from && l.at < to {
			recs = append(recs, &kgo.Record{Topic: k.Layout.Name("recs"), Key: []byte(l.user), Value: l.json,
				Headers: []kgo.RecordHeader{{Key: event.SchemaHeader, Value: []byte(drift.ServedListSchemaHeaderValue)}}})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// produceLines produces events to the events topic keyed by user id, as
// eddy gen --to kafka and the ingest API do.
func produceLines(t *testing.T, k *testkafka.Kafka, ls []string) {
	t.Helper()
	cl := k.NewClient(t)
	recs := make([]*kgo.Record, len(ls))
	for i, l := range ls {
		e, err := event.Decode([]byte(l), event.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = &kgo.Record{Topic: k.Layout.Name("events"), Key: []byte(e.UserID), Value: []byte(l)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func startDrift(t *testing.T, k *testkafka.Kafka, dataDir, cfgPath string) *proc {
	t.Helper()
	addr := freeAddr(t)
	p := startEddy(t, nil, "drift", "--brokers", strings.Join(k.Brokers, ","), "--topic-prefix", k.Layout.Prefix,
		"--data-dir", dataDir, "--drift-config", cfgPath, "--sample", "1", "--http-addr", addr,
		"--partitions", "2", "--log-level", "debug", "--instance-id", "drift-it",
		// Group ids name the changelog topics, which carry no topic prefix:
		// on the shared real broker each run needs groups of its own.
		"--group", strings.TrimSuffix(k.Layout.Prefix, ".")+"-drift")
	waitReady(t, p, "http://"+addr+"/healthz", 60*time.Second)
	return p
}

func driftReports(t *testing.T, k *testkafka.Kafka) []drift.Report {
	t.Helper()
	var out []drift.Report
	for _, r := range k.ReadAll(t, k.Layout.Name("drift")) {
		var rep drift.Report
		if err := json.Unmarshal(r.Value, &rep); err != nil {
			t.Fatalf("report %s: %v", r.Key, err)
		}
		out = append(out, rep)
	}
	return out
}

func retrainRequests(t *testing.T, k *testkafka.Kafka) []drift.RetrainRequest {
	t.Helper()
	var out []drift.RetrainRequest
	for _, r := range k.ReadAll(t, k.Layout.Name("control")) {
		var rq drift.RetrainRequest
		if err := json.Unmarshal(r.Value, &rq); err != nil {
			t.Fatalf("request %s: %v", r.Key, err)
		}
		out = append(out, rq)
	}
	return out
}

func waitReports(t *testing.T, k *testkafka.Kafka, p *proc, n int, timeout time.Duration) []drift.Report {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		reps := driftReports(t, k)
		if len(reps) >= n {
			return reps
		}
		select {
		case <-p.done:
			t.Fatalf("eddy drift exited with %d of %d reports: %v", len(reps), n, p.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d reports after %v", len(reps), n, timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestDriftRoleDetectsAndSurvivesKill drives the binary: a stationary then
// shifted stream in the events topic, with its served lists in the recs
// topic; `eddy drift` publishes one report per
// window, detects the shift within 2 windows and asks for retraining exactly
// once. A second run on another broker is SIGKILLed midway and restarted:
// its reports and request are the uninterrupted run's, none twice.
func TestDriftRoleDetectsAndSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("drives eddy gen and eddy drift against kfake")
	}
	const total = 33_000 // 11 windows; the last is left open
	cfgPath := filepath.Join(t.TempDir(), "drift.yaml")
	if err := os.WriteFile(cfgPath, []byte(driftTestConfig), 0o644); err != nil {
		t.Fatal(err)
	}

	t0 := time.Now()
	stream := driftStream(t, total)
	lists := servedLists(t, stream)
	t.Logf("stream generated in %v", time.Since(t0).Round(time.Millisecond))

	// Uninterrupted run.
	k1 := testkafka.Start(t, 2)
	produceStream(t, k1, stream, lists, 0, total)
	p1 := startDrift(t, k1, t.TempDir(), cfgPath)
	waitReports(t, k1, p1, 10, 120*time.Second)
	time.Sleep(time.Second) // nothing more may come
	if err := p1.stop(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatalf("eddy drift exit: %v", err)
	}
	want := driftReports(t, k1)
	t.Logf("uninterrupted run done at %v", time.Since(t0).Round(time.Millisecond))
	if len(want) != 10 {
		t.Fatalf("%d reports, want 10 (windows 0–9 closed)", len(want))
	}
	first := -1
	for i, r := range want {
		if r.Drifted && first < 0 {
			first = i
		}
	}
	if first < 6 || first > 7 {
		t.Errorf("first drifted window %d, want 6 or 7 (shift in window 6)", first)
	}
	for i, r := range want {
		if r.Lists == 0 {
			t.Errorf("report %d counted no served lists", i)
		}
	}
	rq1 := retrainRequests(t, k1)
	if len(rq1) != 1 {
		t.Fatalf("%d retrain requests, want exactly 1", len(rq1))
	}

	// Killed mid-stream and restarted: the first half is processed, the
	// process is killed while the second half arrives, and a restart on
	// the same data directory finishes.
	k2 := testkafka.Start(t, 2)
	dir := t.TempDir()
	produceStream(t, k2, stream, lists, 0, 16_000)
	p2 := startDrift(t, k2, dir, cfgPath)
	waitReports(t, k2, p2, 3, 120*time.Second)
	produceStream(t, k2, stream, lists, 16_000, 24_000)
	time.Sleep(100 * time.Millisecond) // let it get into the second part
	if err := p2.stop(t, syscall.SIGKILL, 10*time.Second); err == nil {
		t.Fatal("eddy drift exited cleanly after SIGKILL")
	}
	t.Logf("killed at %v with %d reports published", time.Since(t0).Round(time.Millisecond), len(driftReports(t, k2)))
	// A second kill, right after the rest of the stream arrives.
	p3 := startDrift(t, k2, dir, cfgPath)
	produceStream(t, k2, stream, lists, 24_000, total)
	time.Sleep(100 * time.Millisecond)
	if err := p3.stop(t, syscall.SIGKILL, 10*time.Second); err == nil {
		t.Fatal("eddy drift exited cleanly after SIGKILL")
	}
	t.Logf("killed again at %v with %d reports published", time.Since(t0).Round(time.Millisecond), len(driftReports(t, k2)))
	p4 := startDrift(t, k2, dir, cfgPath)
	waitReports(t, k2, p4, 10, 120*time.Second)
	time.Sleep(time.Second)
	if err := p4.stop(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatalf("eddy drift exit: %v", err)
	}
	t.Logf("killed and restarted run done at %v", time.Since(t0).Round(time.Millisecond))
	reportsEqual(t, driftReports(t, k2), want)
	rq2 := retrainRequests(t, k2)
	if len(rq2) != 1 || rq2[0].ID != rq1[0].ID || strings.Join(rq2[0].Signals, ",") != strings.Join(rq1[0].Signals, ",") {
		t.Errorf("retrain requests after kill %+v, want %+v", rq2, rq1)
	}
	if !strings.Contains(p4.out.String(), "drift monitor state restored") {
		t.Error("the restarted role did not restore its monitor state")
	}

	// eddy up: the drift role reads the events the process role's user
	// stage copies into its input (--drift-events-from process, the
	// default), not the events topic: the same reports, each window with
	// its served lists (the outcome join sees a user's events and lists
	// together), and the one request.
	k3 := testkafka.Start(t, 2)
	produceStream(t, k3, stream, lists, 0, total)
	// The lists here are not the scorer's (it serves no request), so
	// the role reads them from the recs topic.
	p5, _ := startUpDrift(t, k3, t.TempDir(), cfgPath, "--drift-recs-from", "forward")
	waitReports(t, k3, p5, 10, 120*time.Second)
	time.Sleep(time.Second)
	if err := p5.stop(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatalf("eddy up exit: %v", err)
	}
	t.Logf("eddy up run done at %v", time.Since(t0).Round(time.Millisecond))
	if out := p5.out.String(); !strings.Contains(out, "forward_events=false") || !strings.Contains(out, "drift_sample=1") {
		t.Error("eddy up did not feed the drift role from the process role")
	}
	got := driftReports(t, k3)
	reportsEqual(t, got, want)
	for i, r := range got {
		if r.Lists != want[i].Lists {
			t.Errorf("report %d counted %d served lists, want %d", i, r.Lists, want[i].Lists)
		}
	}
	if rq := retrainRequests(t, k3); len(rq) != 1 || rq[0].ID != rq1[0].ID {
		t.Errorf("retrain requests from eddy up %+v, want %+v", rq, rq1)
	}
}

// startUpDrift runs eddy up on k's broker with the drift role fed by the
// process role and the scorer (its defaults), every role's groups unique
// to the run; it returns the process and its HTTP address.
func startUpDrift(t *testing.T, k *testkafka.Kafka, dataDir, cfgPath string, extra ...string) (*proc, string) {
	t.Helper()
	addr := freeAddr(t)
	g := strings.TrimSuffix(k.Layout.Prefix, ".")
	args := append([]string{"up", "--brokers", strings.Join(k.Brokers, ","), "--topic-prefix", k.Layout.Prefix,
		"--data-dir", dataDir, "--http-addr", addr, "--partitions", "2", "--log-level", "debug",
		"--drift-config", cfgPath, "--drift-sample", "1", "--drift-group", g + "-drift",
		"--features-user-group", g + "-features-users", "--features-item-group", g + "-features-items",
		"--learner-stages", "users", "--learner-users-group", g + "-learner-users", "--learner-items-group", g + "-learner-items",
		"--learner-ranker-group", g + "-ranker"}, extra...)
	p := startEddy(t, nil, args...)
	waitReady(t, p, "http://"+addr+"/healthz", 60*time.Second)
	return p, addr
}

// TestUpScorerCopiesServedListsToDrift: in eddy up the scorer copies every
// served list of the drift sample's users (here all) into the drift role's
// input topic (--drift-recs-from serve, the default): the same bytes as in
// the recs topic, marked as lists, in the input partition where the
// process role copies the same user's events, so that the role's outcome
// join sees both; the role reads no recs topic of its own.
func TestUpScorerCopiesServedListsToDrift(t *testing.T) {
	if testing.Short() {
		t.Skip("drives eddy up against kfake")
	}
	cfgPath := filepath.Join(t.TempDir(), "drift.yaml")
	if err := os.WriteFile(cfgPath, []byte(driftTestConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	ls := driftStream(t, 2000)
	k := testkafka.Start(t, 2)
	p, addr := startUpDrift(t, k, t.TempDir(), cfgPath)
	produceLines(t, k, ls)
	input := k.Layout.Name(strings.TrimSuffix(k.Layout.Prefix, ".") + "-drift-input")
	source := func(r *kgo.Record) string {
		for _, h := range r.Headers {
			if h.Key == drift.SourceHeader {
				return string(h.Value)
			}
		}
		return ""
	}
	// waitInput waits until the input holds n records of src.
	waitInput := func(src string, n int) []*kgo.Record {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			var got []*kgo.Record
			for _, r := range k.ReadAll(t, input) {
				if source(r) == src {
					got = append(got, r)
				}
			}
			if len(got) >= n || time.Now().After(deadline) {
				if len(got) != n {
					t.Fatalf("%d %s records in %s, want %d", len(got), src, input, n)
				}
				return got
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	partOf := map[string]int32{}
	for _, r := range waitInput("events", len(ls)) {
		partOf[string(r.Key)] = r.Partition
	}
	var users []string
	for u := range partOf {
		if users = append(users, u); len(users) == 40 {
			break
		}
	}
	for _, u := range users {
		recommend(t, "http://"+addr, u)
	}
	copies := waitInput("recs", len(users))
	lists := map[string]bool{}
	for _, r := range k.ReadAll(t, k.Layout.Name("recs")) {
		lists[string(r.Key)+"\x00"+string(r.Value)] = true
	}
	if len(lists) != len(users) {
		t.Fatalf("%d lists in the recs topic, want %d", len(lists), len(users))
	}
	for _, c := range copies {
		l, err := drift.DecodeServedList(c.Value)
		switch {
		case err != nil:
			t.Errorf("copy for %s: %v", c.Key, err)
		case l.UserID != string(c.Key) || c.Partition != partOf[l.UserID]:
			t.Errorf("list of %s copied to partition %d with key %s; the user's events are in partition %d", l.UserID, c.Partition, c.Key, partOf[l.UserID])
		case !lists[string(c.Key)+"\x00"+string(c.Value)]:
			t.Errorf("copy for %s is not a list of the recs topic: %s", c.Key, c.Value)
		}
	}
	if v := metricValue(t, addr, "eddy_scorer_recs_drift_copies_total"); v != float64(len(users)) {
		t.Errorf("eddy_scorer_recs_drift_copies_total = %v, want %d", v, len(users))
	}
	if err := p.stop(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatalf("eddy up exit: %v", err)
	}
	if out := p.out.String(); !strings.Contains(out, "forward_recs=false") {
		t.Error("eddy up's drift role still reads the recs topic")
	}
}

func reportsEqual(t *testing.T, got, want []drift.Report) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d reports, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Events != w.Events || g.Drifted != w.Drifted || g.ReferenceID != w.ReferenceID ||
			strings.Join(g.DriftedSignals, ",") != strings.Join(w.DriftedSignals, ",") {
			t.Errorf("report %d: got %s events=%d drifted=%v, want %s events=%d drifted=%v", i, g.ID, g.Events, g.Drifted, w.ID, w.Events, w.Drifted)
			continue
		}
		for j := range w.Signals {
			gs, ws := g.Signals[j], w.Signals[j]
			if gs.Status != ws.Status || gs.N != ws.N || math.Abs(gs.Score-ws.Score) > 0.02 {
				t.Errorf("report %d signal %s: got %s n=%d %.4f, want %s n=%d %.4f", i, ws.Name, gs.Status, gs.N, gs.Score, ws.Status, ws.N, ws.Score)
			}
		}
	}
}
