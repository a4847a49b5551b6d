package features

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/synth"
	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/stream"
)

// stageEnv is one test's broker, topics, produced events and the reference
// states they must produce (the same state machines applied in memory, in
// the order each user's events sit in their partition).
type stageEnv struct {
	k      *testkafka.Kafka
	topics Topics
	cl     *kgo.Client
	gen    *synth.Generator
	sent   []event.Event // every event produced once (duplicates excluded)
	users  map[string]*UserState
	items  map[string]*ItemState
	// invalid counts records produced that must go to the DLQ.
	invalid int
}

func newStageEnv(t testing.TB, partitions int32, users, items int) *stageEnv {
	t.Helper()
	k := testkafka.Start(t, partitions)
	cfg := synth.DefaultConfig()
	cfg.Users, cfg.Items, cfg.Seed = users, items, 7
	g, err := synth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &stageEnv{
		k: k,
		topics: Topics{
			Events:      k.Layout.Name(stream.TopicEvents),
			DLQ:         k.Layout.Name(stream.TopicEventsDLQ),
			ItemUpdates: k.Layout.Name(stream.TopicItemUpdates),
			Users:       k.Layout.Name(stream.TopicUserSnapshots),
		},
		cl:    k.NewClient(t, kgo.ProducerLinger(5*time.Millisecond)),
		gen:   g,
		users: map[string]*UserState{},
		items: map[string]*ItemState{},
	}
}

func (e *stageEnv) record(ev *event.Event) *kgo.Record {
	return &kgo.Record{Topic: e.topics.Events, Key: []byte(ev.UserID), Value: ev.AppendJSON(nil),
		Headers: []kgo.RecordHeader{{Key: event.SchemaHeader, Value: []byte(event.SchemaHeaderValue)}}}
}

func (e *stageEnv) produceRecords(t testing.TB, rs []*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// produce sends n new synthetic events, then dups copies of events sent
// before (same event_id: they must change nothing) and bad invalid records.
func (e *stageEnv) produce(t testing.TB, n, dups, bad int) {
	t.Helper()
	var rs []*kgo.Record
	for range n {
		var ev event.Event
		e.gen.Next(&ev)
		e.sent = append(e.sent, ev)
		rs = append(rs, e.record(&ev))
		u := e.users[ev.UserID]
		if u == nil {
			u = &UserState{}
			e.users[ev.UserID] = u
		}
		if err := u.Apply(&ev); err != nil {
			t.Fatal(err)
		}
		it := e.items[ev.ItemID]
		if it == nil {
			it = &ItemState{}
			e.items[ev.ItemID] = it
		}
		if err := it.Apply(&ev); err != nil {
			t.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(uint64(len(e.sent)), 3))
	for range dups {
		ev := e.sent[r.IntN(len(e.sent))]
		rs = append(rs, e.record(&ev))
	}
	for i := range bad {
		rs = append(rs, &kgo.Record{Topic: e.topics.Events, Key: []byte("u0"), Value: []byte(fmt.Sprintf(`{"event_id":"bad%d","user_id":"u0"}`, i))})
		e.invalid++
	}
	e.produceRecords(t, rs)
}

func (e *stageEnv) config() Config {
	cfg := DefaultConfig()
	// Groups, and so changelog topics, unique per test: a real broker is
	// shared by every test.
	cfg.UserGroup = e.k.Layout.Prefix + "features-users"
	cfg.ItemGroup = e.k.Layout.Prefix + "features-items"
	cfg.SnapshotInterval = 0
	cfg.Task.LagCommitInterval = 100 * time.Millisecond
	cfg.Task.SessionTimeout = 10 * time.Second
	cfg.Task.RebalanceTimeout = 20 * time.Second
	cfg.Task.TransactionTimeout = 20 * time.Second
	cfg.Task.LocalFlushInterval = 200 * time.Millisecond
	cfg.Task.MaxBatchRecords = 500
	return cfg
}

func testLog(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

type running struct {
	p      *Process
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func (e *stageEnv) start(t testing.TB, cfg Config, dir string) *running {
	t.Helper()
	p, err := New(cfg, e.k.Client(), e.topics, dir, nil, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{p: p, cancel: cancel, done: make(chan struct{})}
	go func() { r.err = p.Run(ctx); close(r.done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(60 * time.Second):
		}
	})
	return r
}

func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Fatalf("Run: %v", r.err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Process did not stop within 60 s")
	}
}

// at is the evaluation time of compared views: after every event.
var at = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// diff compares the served state of every user and item with the
// reference; it returns the first difference, "" when all match. Users
// must match exactly (their events are applied in partition order in both);
// items get updates from all partitions in varying order, so their totals
// must match exactly and their decayed counts to rounding.
func (e *stageEnv) diff(ps ...*Process) string {
	for id, want := range e.users {
		var got UserState
		found := false
		for _, p := range ps {
			st, ok, err := p.User(id)
			if err != nil && err != ErrNotReady {
				return fmt.Sprintf("user %s: %v", id, err)
			}
			if ok {
				got, found = st, true
				break
			}
		}
		if !found {
			return fmt.Sprintf("user %s not found; partitions held: %s", id, held(ps))
		}
		if g, w := jsonView(got.View(id, at)), jsonView(want.View(id, at)); g != w {
			return fmt.Sprintf("user %s:\n got %s\nwant %s", id, g, w)
		}
	}
	for id, want := range e.items {
		var got ItemState
		found := false
		for _, p := range ps {
			st, ok, err := p.Item(id)
			if err != nil && err != ErrNotReady {
				return fmt.Sprintf("item %s: %v", id, err)
			}
			if ok {
				got, found = st, true
				break
			}
		}
		if !found {
			return fmt.Sprintf("item %s not found; partitions held: %s", id, held(ps))
		}
		gv, wv := got.View(id, at), want.View(id, at)
		if gv.Events != wv.Events || gv.Impressions != wv.Impressions || gv.Clicks != wv.Clicks ||
			gv.WatchEvents != wv.WatchEvents || gv.DistinctUsers != wv.DistinctUsers || len(gv.Counts) != len(wv.Counts) {
			return fmt.Sprintf("item %s:\n got %s\nwant %s", id, jsonView(gv), jsonView(wv))
		}
		for typ, c := range wv.Counts {
			g := gv.Counts[typ]
			if g.Total != c.Total || !near(g.Decayed1h, c.Decayed1h) || !near(g.Decayed1d, c.Decayed1d) || !near(g.Decayed30d, c.Decayed30d) {
				return fmt.Sprintf("item %s %s: got %+v want %+v", id, typ, g, c)
			}
		}
		if got.Replays() != 0 {
			return fmt.Sprintf("item %s: %d replays: the user stage emitted an update twice", id, got.Replays())
		}
	}
	return ""
}

// held describes the partitions each Process holds (failure messages).
func held(ps []*Process) string {
	var b strings.Builder
	for i, p := range ps {
		u, it := p.Runtimes()
		fmt.Fprintf(&b, "[%d: users %+v items %+v err %v] ", i, u.Status(), it.Status(), p.Ready(context.Background()))
	}
	return b.String()
}

func jsonView(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// waitMatch polls diff until the states match the reference.
func (e *stageEnv) waitMatch(t *testing.T, d time.Duration, ps ...*Process) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msg := e.diff(ps...)
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("served state differs from the reference after %v: %s", d, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestStageExact runs both stages over a stream with duplicates and
// invalid records: every user and item matches the in-memory reference,
// duplicates change nothing, invalid records land in the DLQ with their
// reason, and the last snapshot of each user is the snapshot of its final
// state.
func TestStageExact(t *testing.T) {
	e := newStageEnv(t, 3, 300, 200)
	e.produce(t, 4000, 300, 5)
	r := e.start(t, e.config(), t.TempDir())
	e.produce(t, 3000, 300, 2)
	e.waitMatch(t, 60*time.Second, r.p)
	st := r.p.Stats()
	if st.Events != uint64(len(e.sent)) || st.Duplicates != 600 || st.Invalid != uint64(e.invalid) || st.ItemUpdates != uint64(len(e.sent)) || st.Replays != 0 {
		t.Fatalf("stats %+v: want %d events, 600 duplicates, %d invalid", st, len(e.sent), e.invalid)
	}

	dlq := e.k.ReadAll(t, e.topics.DLQ)
	if len(dlq) != e.invalid {
		t.Fatalf("DLQ holds %d records, want %d", len(dlq), e.invalid)
	}
	var dl event.DeadLetter
	if err := json.Unmarshal(dlq[0].Value, &dl); err != nil || !strings.Contains(dl.Reason, "required") || !strings.HasPrefix(dl.Source, "kafka:"+e.topics.Events) {
		t.Fatalf("dead letter %s: %+v %v", dlq[0].Value, dl, err)
	}

	snaps := map[string]UserSnapshot{}
	for _, rec := range e.k.ReadAll(t, e.topics.Users) {
		var s UserSnapshot
		if err := s.UnmarshalBinary(rec.Value); err != nil {
			t.Fatalf("snapshot of %s: %v", rec.Key, err)
		}
		if s.UserID != string(rec.Key) {
			t.Fatalf("snapshot keyed %s holds user %s", rec.Key, s.UserID)
		}
		snaps[s.UserID] = s
	}
	for id, u := range e.users {
		want := u.Snapshot(id)
		got := snaps[id]
		g, _ := got.MarshalBinary()
		w, _ := want.MarshalBinary()
		if string(g) != string(w) {
			t.Fatalf("last snapshot of %s:\n got %s\nwant %s", id, jsonView(got), jsonView(want))
		}
	}
	r.stop(t)
}

// TestDuplicateDelivery produces the whole stream a second time with the
// same event ids: nothing changes.
func TestDuplicateDelivery(t *testing.T) {
	e := newStageEnv(t, 2, 100, 80)
	e.produce(t, 2000, 0, 0)
	r := e.start(t, e.config(), t.TempDir())
	e.waitMatch(t, 60*time.Second, r.p)
	var rs []*kgo.Record
	for i := range e.sent {
		rs = append(rs, e.record(&e.sent[i]))
	}
	e.produceRecords(t, rs)
	deadline := time.Now().Add(60 * time.Second)
	for r.p.Stats().Duplicates < uint64(len(e.sent)) {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: want %d duplicates", r.p.Stats(), len(e.sent))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if msg := e.diff(r.p); msg != "" {
		t.Fatalf("after the second delivery: %s", msg)
	}
	if st := r.p.Stats(); st.Events != uint64(len(e.sent)) {
		t.Fatalf("stats %+v: applied %d events, want %d", st, st.Events, len(e.sent))
	}
	r.stop(t)
}

// TestRebalanceRestore: two instances share the groups; one stops (its
// partitions move to the other), a third starts with an empty data dir and
// takes partitions back, restoring them from the changelogs; the
// de-duplicator moves with them (duplicates produced after the moves are
// still dropped). Totals equal the reference throughout.
func TestRebalanceRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("three instances and several rebalances; skipped in -short")
	}
	e := newStageEnv(t, 4, 200, 150)
	cfg := e.config()
	e.produce(t, 3000, 100, 1)
	a := e.start(t, cfg, t.TempDir())
	b := e.start(t, cfg, t.TempDir())
	e.produce(t, 3000, 100, 1)
	e.waitMatch(t, 90*time.Second, a.p, b.p)
	ua, _ := a.p.Runtimes()
	ub, _ := b.p.Runtimes()
	if len(ua.Status()) == 0 || len(ub.Status()) == 0 {
		t.Logf("partitions: a %v, b %v (one instance holds all user partitions)", ua.Status(), ub.Status())
	}

	b.stop(t)
	e.produce(t, 2000, 300, 1)
	e.waitMatch(t, 90*time.Second, a.p)

	c := e.start(t, cfg, t.TempDir())
	e.produce(t, 2000, 300, 1)
	e.waitMatch(t, 90*time.Second, a.p, c.p)
	uc, ic := c.p.Runtimes()
	deadline := time.Now().Add(60 * time.Second)
	for len(uc.Status()) == 0 || len(ic.Status()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the new instance got no partitions: users %v items %v", uc.Status(), ic.Status())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Duplicates of old events, now handled by the restored instance too.
	var rs []*kgo.Record
	for i := range 500 {
		rs = append(rs, e.record(&e.sent[i*7%len(e.sent)]))
	}
	e.produceRecords(t, rs)
	e.produce(t, 500, 0, 0)
	e.waitMatch(t, 90*time.Second, a.p, c.p)
	a.stop(t)
	c.stop(t)
}

// TestHTTP checks the read API's answers.
func TestHTTP(t *testing.T) {
	e := newStageEnv(t, 2, 50, 40)
	e.produce(t, 500, 0, 0)
	r := e.start(t, e.config(), t.TempDir())
	e.waitMatch(t, 60*time.Second, r.p)
	mux := http.NewServeMux()
	r.p.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var uid, iid string
	for id := range e.users {
		uid = id
		break
	}
	for id := range e.items {
		iid = id
		break
	}
	ms := fmt.Sprint(at.UnixMilli())
	for _, tc := range []struct {
		path string
		code int
		want string // JSON the body must equal, or a substring
	}{
		{"/v1/users/" + uid + "/features?at=" + ms, 200, jsonView(e.users[uid].View(uid, at))},
		{"/v1/users/" + uid + "/features?at=" + at.Format(time.RFC3339), 200, jsonView(e.users[uid].View(uid, at))},
		{"/v1/items/" + iid + "/features?at=" + ms, 200, `"item_id":"` + iid + `"`},
		{"/v1/users/nobody/features", 404, `unknown user`},
		{"/v1/items/nothing/features", 404, `unknown item`},
		{"/v1/users/" + uid + "/features?at=yesterday", 400, `want RFC 3339`},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		var body strings.Builder
		_, _ = fmt.Fprint(&body, readAll(t, resp))
		got := strings.TrimSpace(body.String())
		if resp.StatusCode != tc.code || (got != tc.want && !strings.Contains(got, tc.want)) {
			t.Errorf("GET %s: %d %s\nwant %d %s", tc.path, resp.StatusCode, got, tc.code, tc.want)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: content type %q", tc.path, ct)
		}
	}
	r.stop(t)
	// A stopped process answers 503, not 404.
	resp, err := http.Get(srv.URL + "/v1/users/" + uid + "/features")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != 503 {
		t.Fatalf("after stop: %d, want 503", resp.StatusCode)
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

// lastSnapshots reads the snapshot topic: the last snapshot of each user and
// the number of snapshots per user.
func (e *stageEnv) lastSnapshots(t *testing.T) (map[string]UserSnapshot, map[string]int) {
	t.Helper()
	last, n := map[string]UserSnapshot{}, map[string]int{}
	for _, rec := range e.k.ReadAll(t, e.topics.Users) {
		var s UserSnapshot
		if err := s.UnmarshalBinary(rec.Value); err != nil {
			t.Fatalf("snapshot of %s: %v", rec.Key, err)
		}
		last[s.UserID] = s
		n[s.UserID]++
	}
	return last, n
}

// TestSnapshotThrottle: with a long interval each user is published once
// (its first change) and later changes wait; with a short one, changes
// that waited are published by a later batch once the interval passed, so
// the topic ends with every user's final state.
func TestSnapshotThrottle(t *testing.T) {
	t.Run("long", func(t *testing.T) {
		e := newStageEnv(t, 2, 60, 50)
		cfg := e.config()
		cfg.SnapshotInterval = time.Hour
		r := e.start(t, cfg, t.TempDir())
		e.produce(t, 1500, 0, 0)
		e.waitMatch(t, 60*time.Second, r.p)
		e.produce(t, 300, 0, 0)
		e.waitMatch(t, 60*time.Second, r.p)
		_, n := e.lastSnapshots(t)
		for id := range e.users {
			if n[id] != 1 {
				t.Fatalf("user %s: %d snapshots within the interval, want 1", id, n[id])
			}
		}
		r.stop(t)
	})
	t.Run("short", func(t *testing.T) {
		e := newStageEnv(t, 2, 60, 50)
		cfg := e.config()
		cfg.SnapshotInterval = 200 * time.Millisecond
		r := e.start(t, cfg, t.TempDir())
		e.produce(t, 1500, 0, 0)
		e.waitMatch(t, 60*time.Second, r.p)
		time.Sleep(300 * time.Millisecond)
		// One more event per partition's users: the batches that carry
		// them publish everything pending.
		e.produce(t, 200, 0, 0)
		e.waitMatch(t, 60*time.Second, r.p)
		deadline := time.Now().Add(30 * time.Second)
		for {
			last, _ := e.lastSnapshots(t)
			bad := ""
			for id, u := range e.users {
				want := u.Snapshot(id)
				got := last[id]
				g, _ := got.MarshalBinary()
				w, _ := want.MarshalBinary()
				if string(g) != string(w) {
					bad = id
					break
				}
			}
			if bad == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("user %s: the last snapshot is not the final state", bad)
			}
			// Users of a partition whose last batch came before the
			// interval passed wait for another batch: send one.
			time.Sleep(250 * time.Millisecond)
			e.produce(t, 50, 0, 0)
			e.waitMatch(t, 60*time.Second, r.p)
		}
		r.stop(t)
	})
}

// BenchmarkStages measures both stages end to end on the in-process broker:
// b.N events are produced first (a backlog), then processed until the item
// stage applied them all. The timer includes starting the stages (group
// join, about half a second) and the broker's CPU; eddy bench process is
// the end-to-end measurement with a million events.
func BenchmarkStages(b *testing.B) {
	e := newStageEnv(b, 4, 10000, 5000)
	for sent := 0; sent < b.N; sent += 20000 {
		e.produce(b, min(20000, b.N-sent), 0, 0)
	}
	cfg := e.config()
	cfg.SnapshotInterval = time.Second
	cfg.Task.MaxBatchRecords = 5000
	cfg.Task.LocalFlushInterval = time.Second
	b.ReportAllocs()
	b.ResetTimer()
	r := e.start(b, cfg, b.TempDir())
	for r.p.Stats().ItemUpdates < uint64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	r.stop(b)
}
