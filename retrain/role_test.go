package retrain

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/connectors/archive"
	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/learner/modelrec"
	"github.com/eddyrec/eddy/stream"
)

var quiet = slog.New(slog.DiscardHandler)

// world is a test's broker, topics and archive directory.
type world struct {
	k     *testkafka.Kafka
	dir   string
	store archive.Store
	opts  []kgo.Opt
}

func newWorld(t *testing.T) *world {
	t.Helper()
	k := testkafka.Start(t, 2)
	k.CreateTopics(t)
	dir := t.TempDir()
	st, err := archive.OpenStore(context.Background(), dir, archive.S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := k.Client()
	opts, err := c.Opts()
	if err != nil {
		t.Fatal(err)
	}
	return &world{k: k, dir: dir, store: st, opts: opts}
}

func (w *world) topics() Topics {
	l := w.k.Layout
	return Topics{Events: l.Name(stream.TopicEvents), Control: l.Name(stream.TopicControl), Versions: l.Name(stream.TopicModelVersions),
		Users: l.Name(stream.TopicModelUsers), Items: l.Name(stream.TopicModelItems)}
}

// produceClusters produces clicks of users in three taste clusters (each
// clicks items of its own cluster) over the ten days before end.
func (w *world) produceClusters(t *testing.T, users int, seed uint64, end time.Time) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	cl := w.k.NewClient(t)
	start := end.Add(-10 * 24 * time.Hour).Truncate(time.Millisecond)
	var recs []*kgo.Record
	n := 0
	for u := range users {
		c := u % 3
		for range 14 {
			ev := event.Event{EventID: fmt.Sprintf("e%d-%d", seed, n), UserID: fmt.Sprintf("u%d", u),
				ItemID: fmt.Sprintf("i%d", c*20+rng.IntN(20)), Type: event.Click,
				Time: start.Add(time.Duration(rng.Int64N(int64(240 * time.Hour))))}
			recs = append(recs, &kgo.Record{Topic: w.topics().Events, Key: []byte(ev.UserID), Value: ev.AppendJSON(nil)})
			n++
		}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// runArchive runs the archive role until the test ends.
func (w *world) runArchive(t *testing.T) {
	t.Helper()
	cfg := archive.DefaultConfig()
	cfg.EventsTopic, cfg.Group, cfg.FlushAge = w.topics().Events, w.k.Layout.Prefix+"archive", 100*time.Millisecond
	r, err := archive.New(cfg, w.store, w.opts, prometheus.NewRegistry(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func (w *world) config() Config {
	c := DefaultConfig()
	c.ClientOpts, c.Topics, c.Archive, c.ArchiveName = w.opts, w.topics(), w.store, w.dir
	c.Holdout, c.Window = 2*24*time.Hour, 30*24*time.Hour
	c.ArchiveWait = 30 * time.Second
	c.IALS.Dim, c.IALS.Epochs = 8, 6
	c.TransactionalID = w.k.Layout.Prefix + "retrain"
	return c
}

// startRole runs a role with cfg until stop is called (or the test ends).
func startRole(t *testing.T, cfg Config) (r *Role, stop func()) {
	t.Helper()
	r, err := New(cfg, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := r.Run(ctx); err != nil {
			t.Errorf("role: %v", err)
		}
	})
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait(); r.Close() }) }
	t.Cleanup(stop)
	return r, stop
}

func ask(t *testing.T, w *world, req Request) *Version {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if req.ID == "" {
		req.ID = NewRequestID()
	}
	req.Time = time.Now().UTC()
	v, err := Ask(ctx, w.opts, w.topics(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// marked returns the model-topic records of version v.
func marked(t *testing.T, w *world, topic string, v uint64) []*kgo.Record {
	var out []*kgo.Record
	for _, r := range w.k.ReadAll(t, topic) {
		for _, h := range r.Headers {
			if h.Key == HeaderVersion && string(h.Value) == fmt.Sprint(v) {
				out = append(out, r)
			}
		}
	}
	return out
}

// TestRolePromotesRejectsAndRollsBack: with no live model to beat, the
// challenger is promoted — its vectors on the model topics, marked, in
// the ranges its record names, and its snapshot kept; a challenger the
// gate finds not better enough is rejected, recorded, and publishes
// nothing; a rollback republishes a kept snapshot as a new version.
func TestRolePromotesRejectsAndRollsBack(t *testing.T) {
	if testing.Short() {
		t.Skip("three trainings; the unit run (without -short) covers it")
	}
	w := newWorld(t)
	now := time.Now()
	w.produceClusters(t, 300, 1, now.Add(-3*24*time.Hour))
	w.runArchive(t)
	_, stop := startRole(t, w.config())

	v := ask(t, w, Request{Kind: KindRetrain, Trigger: TriggerManual})
	if v.Decision != Promoted || v.Version != 2 || v.Parent != 1 {
		t.Fatalf("first run: version %d %s parent %d: %s; data %+v", v.Version, v.Decision, v.Parent, v.Reason, v.Data)
	}
	if v.Data.Events != 300*14 || v.Data.ReplayOffsets == nil || v.Data.HoldoutUsers < 50 || v.Published.Users != 300 || v.Published.Items != 60 || v.Published.Dim != 8 {
		t.Fatalf("data %+v, published %+v", v.Data, v.Published)
	}
	users := marked(t, w, w.topics().Users, 2)
	items := marked(t, w, w.topics().Items, 2)
	if len(users) != 300 || len(items) != 60 {
		t.Fatalf("marked records: %d users, %d items", len(users), len(items))
	}
	for _, r := range append(users, items...) {
		ranges := v.Published.UserRanges
		if r.Topic == w.topics().Items {
			ranges = v.Published.ItemRanges
		}
		rg := ranges[r.Partition]
		if r.Offset < rg[0] || r.Offset >= rg[1] {
			t.Fatalf("%s[%d]@%d outside the published range %v", r.Topic, r.Partition, r.Offset, rg)
		}
		var vec modelrec.Vector
		if err := modelrec.DecodeVector(r.Value, &vec); err != nil || vec.ModelVersion != 2 {
			t.Fatalf("record: %v, version %d", err, vec.ModelVersion)
		}
	}
	m, err := archive.ReadModel(context.Background(), w.store, SnapshotKey(2))
	if err != nil || len(m.Users) != 300 || len(m.Items) != 60 {
		t.Fatalf("snapshot: %v", err)
	}
	stop()

	// Three more days of events (the champion, version 2, learned from
	// none of them), and a gate no challenger can pass.
	w.produceClusters(t, 300, 3, now)
	cfg := w.config()
	cfg.Gate.MinGain = 10
	startRole(t, cfg)
	ends := func() int {
		return len(w.k.ReadAll(t, w.topics().Users)) + len(w.k.ReadAll(t, w.topics().Items))
	}
	before := ends()
	v = ask(t, w, Request{Kind: KindRetrain, Trigger: TriggerManual})
	if v.Decision != Rejected || v.Version != 3 || v.Parent != 2 || !strings.Contains(v.Reason, "not better") || v.Published != nil {
		t.Fatalf("second run: version %d %s parent %d: %s", v.Version, v.Decision, v.Parent, v.Reason)
	}
	if v.Champion == nil || v.Champion.HR == 0 || v.ChampionUsers != 300 {
		t.Fatalf("the champion (version 2) was not judged: %+v, %d users", v.Champion, v.ChampionUsers)
	}
	if after := ends(); after != before {
		t.Fatalf("a rejected run wrote %d model records", after-before)
	}

	rb := ask(t, w, Request{Kind: KindRollback, Version: 2})
	if rb.Decision != Promoted || rb.Version != 4 || rb.Parent != 2 || rb.Trigger != TriggerRollback || rb.Published.Users != 300 {
		t.Fatalf("rollback: version %d %s parent %d: %s", rb.Version, rb.Decision, rb.Parent, rb.Reason)
	}
	if got := marked(t, w, w.topics().Users, 4); len(got) != 300 {
		t.Fatalf("rollback published %d users", len(got))
	}
	bad := ask(t, w, Request{Kind: KindRollback, Version: 3})
	if bad.Decision != Failed || !strings.Contains(bad.Reason, "never served") {
		t.Fatalf("rollback to a rejected version: %s: %s", bad.Decision, bad.Reason)
	}
	h, err := ReadHistory(context.Background(), w.opts, w.topics().Versions, quiet)
	if err != nil || len(h.All()) != 4 || h.LiveVersion() != 4 {
		t.Fatalf("history: %v, %d versions, live %d", err, len(h.All()), h.LiveVersion())
	}
}

// TestRoleRunsAgainAfterKill: a role stopped in the middle of a run (here
// while it waits for the archive) has committed nothing; the next one
// reads the request again and answers it, once.
func TestRoleRunsAgainAfterKill(t *testing.T) {
	w := newWorld(t)
	w.produceClusters(t, 150, 2, time.Now())
	r, stop := startRole(t, w.config())
	id := NewRequestID()
	got := make(chan *Version, 1)
	go func() { got <- ask(t, w, Request{ID: id, Kind: KindRetrain, Trigger: TriggerManual}) }()
	// The run starts and waits: the archive role is not running.
	deadline := time.Now().Add(30 * time.Second)
	for testutil.ToFloat64(r.m.running) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the run did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if h, err := ReadHistory(context.Background(), w.opts, w.topics().Versions, quiet); err != nil || len(h.All()) != 0 {
		t.Fatalf("after the kill: %v, %d versions", err, len(h.All()))
	}
	w.runArchive(t)
	_, stop = startRole(t, w.config())
	defer stop()
	v := <-got
	if v.Decision != Promoted || len(v.RequestIDs) != 1 || v.RequestIDs[0] != id {
		t.Fatalf("after the restart: %s, requests %v: %s", v.Decision, v.RequestIDs, v.Reason)
	}
	// A third role does not run it again.
	stop()
	_, stop = startRole(t, w.config())
	time.Sleep(2 * time.Second)
	stop()
	if h, _ := ReadHistory(context.Background(), w.opts, w.topics().Versions, quiet); len(h.All()) != 1 {
		t.Fatalf("%d versions after a second restart, want 1", len(h.All()))
	}
}

// TestRoleNoData: a run over an empty archive fails with a reason, and
// eddy retrain --now would exit non-zero on it.
func TestRoleNoData(t *testing.T) {
	w := newWorld(t)
	startRole(t, w.config())
	v := ask(t, w, Request{Kind: KindRetrain, Trigger: TriggerManual})
	if v.Decision != Failed || !strings.Contains(v.Reason, "no events") || v.Version != 2 {
		t.Fatalf("version %d %s: %s", v.Version, v.Decision, v.Reason)
	}
}

// TestRoleKilledDuringPromotion: a role that dies with a promotion's
// vectors and version record written but not committed leaves nothing a
// read_committed reader (a scorer, a stage) can see: no vector of the
// version, no version record. The next role, under the same transactional
// id, fences the dead one's transaction (the broker aborts it), runs the
// request again and promotes it once.
func TestRoleKilledDuringPromotion(t *testing.T) {
	w := newWorld(t)
	w.produceClusters(t, 150, 4, time.Now())
	w.runArchive(t)
	r, err := New(w.config(), quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	written := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	r.beforeCommit = func() {
		// Everything is written; the process dies before the commit:
		// its connections close and no abort is sent.
		close(written)
		cancel()
		r.prod.Close()
	}
	died := make(chan error, 1)
	go func() { died <- r.Run(ctx) }()
	id := NewRequestID()
	got := make(chan *Version, 1)
	go func() { got <- ask(t, w, Request{ID: id, Kind: KindRetrain, Trigger: TriggerManual}) }()
	select {
	case <-written:
	case <-time.After(90 * time.Second):
		t.Fatal("the run did not reach its commit")
	}
	if err := <-died; err != nil {
		t.Fatalf("role: %v", err)
	}
	r.Close()
	if n := len(marked(t, w, w.topics().Users, 2)) + len(marked(t, w, w.topics().Items, 2)); n != 0 {
		t.Fatalf("%d vectors of the uncommitted version visible", n)
	}
	if h, err := ReadHistory(context.Background(), w.opts, w.topics().Versions, quiet); err != nil || len(h.All()) != 0 {
		t.Fatalf("after the kill: %v, %d versions", err, len(h.All()))
	}

	_, stop := startRole(t, w.config())
	defer stop()
	v := <-got
	if v.Decision != Promoted || v.Version != 2 || len(v.RequestIDs) != 1 || v.RequestIDs[0] != id {
		t.Fatalf("after the restart: version %d %s, requests %v: %s", v.Version, v.Decision, v.RequestIDs, v.Reason)
	}
	users, items := marked(t, w, w.topics().Users, 2), marked(t, w, w.topics().Items, 2)
	if len(users) != v.Published.Users || len(items) != v.Published.Items {
		t.Fatalf("version 2: %d user and %d item vectors visible, the record says %d and %d", len(users), len(items), v.Published.Users, v.Published.Items)
	}
	if h, _ := ReadHistory(context.Background(), w.opts, w.topics().Versions, quiet); len(h.All()) != 1 {
		t.Fatalf("%d versions, want 1", len(h.All()))
	}
}
