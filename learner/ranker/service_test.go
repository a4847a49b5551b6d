package ranker

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/learner/modelrec"
	"github.com/eddyrec/eddy/stream"
	"github.com/eddyrec/eddy/stream/task"
)

type kenv struct {
	k     *testkafka.Kafka
	cfg   Config
	cl    *kgo.Client
	lists int
	// last is the most recently started service, whose joiner counters
	// waitFor reports when it times out.
	last *running
}

func newKenv(t *testing.T, partitions int32) *kenv {
	t.Helper()
	k := testkafka.Start(t, partitions)
	cfg := DefaultConfig()
	cfg.PublishEvery = 500
	cfg.PublishInterval = 200 * time.Millisecond
	cfg.Topics = Topics{
		Events: k.Layout.Name(stream.TopicEvents), Recs: k.Layout.Name(stream.TopicRecs),
		Input: k.Layout.Name(stream.TopicRankerInput), Examples: k.Layout.Name(stream.TopicRankerExamples),
		Ranker: k.Layout.Name(stream.TopicModelRanker),
	}
	return &kenv{k: k, cfg: cfg, cl: k.NewClient(t)}
}

// traffic makes n served lists of 5 items and their clicks: items have a
// fixed item_ctr feature, a user clicks a served item with probability
// σ(4·item_ctr − 2) half a minute after the list; mf_score is noise. Half
// the events carry no request id (they are not forwarded). The lists are
// 10 s apart in event time; end closes every window: one impression with a
// request id per user an hour after the last list.
func traffic(t testing.TB, seed uint64, n, users int) (recs, events []*kgo.Record, clicks int) {
	rng := rand.New(rand.NewPCG(seed, 11))
	ctr := make([]float64, 50)
	for i := range ctr {
		ctr[i] = rng.Float64()
	}
	for i := range n {
		user := fmt.Sprint("u", rng.IntN(users))
		req := fmt.Sprintf("req-%d-%d", seed, i)
		ts := t0 + int64(i)*10_000
		var its []item
		for j := range 5 {
			it := rng.IntN(len(ctr))
			its = append(its, item{fmt.Sprint("i", it, "-", j), fmt.Sprintf("mf_score=%g,item_ctr=%g,item_recency=1", rng.NormFloat64(), ctr[it])})
			if rng.Float64() < 1/(1+math.Exp(-(4*ctr[it]-2))) {
				clicks++
				ev := event.Event{EventID: fmt.Sprint(req, j), UserID: user, ItemID: its[j].id, Type: event.Click,
					Time: time.UnixMilli(ts + 30_000).UTC(), RequestID: req}
				events = append(events, &kgo.Record{Key: []byte(user), Value: ev.AppendJSON(nil)})
			}
			if rng.IntN(2) == 0 {
				ev := event.Event{EventID: fmt.Sprint(req, "x", j), UserID: user, ItemID: "other", Type: event.Click, Time: time.UnixMilli(ts).UTC()}
				events = append(events, &kgo.Record{Key: []byte(user), Value: ev.AppendJSON(nil)})
			}
		}
		r := listRec(t, user, req, ts, its...)
		r.Headers = nil
		recs = append(recs, r)
	}
	for u := range users {
		user := fmt.Sprint("u", u)
		ev := event.Event{EventID: fmt.Sprint("end", seed, u), UserID: user, ItemID: "x", Type: event.Impression,
			Time: time.UnixMilli(t0 + int64(n)*10_000 + 3_600_000).UTC(), RequestID: "end"}
		events = append(events, &kgo.Record{Key: []byte(user), Value: ev.AppendJSON(nil)})
	}
	return recs, events, clicks
}

func eventMs(t testing.TB, r *kgo.Record) int64 {
	ev, err := event.Decode(r.Value, event.DecodeOptions{Now: func() time.Time { return farFuture }})
	if err != nil {
		t.Fatal(err)
	}
	return ev.Time.UnixMilli()
}

// produce writes copies of the lists and events to their topics, stamped
// with the wall clock as ingest and the scorer stamp them. The synthetic
// records carry their event time (2025) as Kafka timestamp, and a real
// broker's time retention (7 days) deleted such segments mid-test when its
// retention check came round (CI: a restart test lost a third of its lists).
func (e *kenv) produce(t *testing.T, recs, events []*kgo.Record) {
	t.Helper()
	out := make([]*kgo.Record, 0, len(recs)+len(events))
	now := time.Now()
	for _, r := range recs {
		out = append(out, &kgo.Record{Topic: e.cfg.Topics.Recs, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: now})
	}
	for _, r := range events {
		out = append(out, &kgo.Record{Topic: e.cfg.Topics.Events, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: now})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.cl.ProduceSync(ctx, out...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	e.lists += len(recs)
}

type running struct {
	s      *Service
	cancel context.CancelFunc
	done   chan error
}

func (e *kenv) start(t *testing.T, name, dir string) *running {
	t.Helper()
	c := task.DefaultConfig()
	c.Client = e.k.Client()
	c.DataDir = dir
	c.SessionTimeout, c.RebalanceTimeout, c.TransactionTimeout = 10*time.Second, 20*time.Second, 20*time.Second
	c.LagCommitInterval = 100 * time.Millisecond
	c.MaxBatchRecords = 500
	c.InstanceID = name
	s, err := NewService(e.cfg, c, e.k.Layout.Prefix+"ranker", nil, quietLog().With("instance", name))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{s: s, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	e.last = r
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("service stopped with %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("service did not stop within 60 s")
	}
}

// latestRanker is the newest committed model.ranker record, nil if none.
func (e *kenv) latestRanker(t *testing.T) *modelrec.Ranker {
	t.Helper()
	recs := e.k.ReadAll(t, e.cfg.Topics.Ranker)
	if len(recs) == 0 {
		return nil
	}
	r := recs[len(recs)-1]
	if string(r.Key) != e.cfg.Name {
		t.Fatalf("ranker record key %q", r.Key)
	}
	rk, err := modelrec.DecodeRanker(r.Value)
	if err != nil {
		t.Fatal(err)
	}
	return rk
}

// examples reads the committed examples (ticks left out).
func (e *kenv) examples(t *testing.T) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	for _, r := range e.k.ReadAll(t, e.cfg.Topics.Examples) {
		if !isTick(r) {
			out = append(out, r)
		}
	}
	return out
}

// expectedRanker trains a plain FTRL over the committed examples in order:
// what the trainer must have published last.
func (e *kenv) expectedRanker(t *testing.T, exs []*kgo.Record) *modelrec.Ranker {
	t.Helper()
	h := newTrainHarness(t, e.cfg)
	h.feed(exs)
	return h.p.ranker()
}

// waitFor waits until the examples topic holds want examples and the
// latest ranker record is the one a clean trainer computes from them.
func (e *kenv) waitFor(t *testing.T, want int, timeout time.Duration) (*modelrec.Ranker, []*kgo.Record) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		exs := e.examples(t)
		got := e.latestRanker(t)
		if len(exs) == want && got != nil {
			exp := e.expectedRanker(t, exs)
			if slices.Equal(got.Weights, exp.Weights) && got.Bias == exp.Bias {
				return got, exs
			}
		}
		if time.Now().After(deadline) {
			diag := ""
			if r := e.last; r != nil {
				diag = "; last service's joiner: " + joinCounts(r.s.m)
				select {
				case err := <-r.done:
					diag += fmt.Sprintf("; it ended with %v", err)
					r.done <- err
				default:
				}
			}
			t.Fatalf("after %v: %d examples (want %d), latest ranker %+v%s", timeout, len(exs), want, got, diag)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestServiceLearnsFromServedLists runs the four stages on a broker: served
// lists and clicks in, a model.ranker record out whose weights are exactly
// those of an FTRL over the examples, with item_ctr (which drives the
// clicks) clearly positive and every served item labelled once.
func TestServiceLearnsFromServedLists(t *testing.T) {
	e := newKenv(t, 2)
	recs, events, clicks := traffic(t, 1, 1500, 60)
	r := e.start(t, "a", t.TempDir())
	// Live traffic: each list, then its clicks, in chunks.
	for i, j := 0, 0; i < len(recs); i += 100 {
		end := min(i+100, len(recs))
		k := j
		for k < len(events) && (end == len(recs) || eventMs(t, events[k]) < recs[end].Timestamp.UnixMilli()) {
			k++
		}
		e.produce(t, recs[i:end], events[j:k])
		j = k
	}
	rk, exs := e.waitFor(t, 5*e.lists, 120*time.Second)
	if ev := counter(r.s.m.evicted.WithLabelValues("list")) + counter(r.s.m.evicted.WithLabelValues("orphan")); ev != 0 {
		t.Fatalf("%v lists or orphans evicted under the default bounds; joiner: %s", ev, joinCounts(r.s.m))
	}
	pos := 0
	var x Example
	for _, r := range exs {
		if err := DecodeExample(r.Value, &x); err != nil {
			t.Fatal(err)
		}
		pos += int(x.Label)
	}
	if pos != clicks {
		t.Fatalf("%d positives, %d clicks; joiner: %s", pos, clicks, joinCounts(r.s.m))
	}
	wc, wm := weightOf(rk, modelrec.FeatureItemCTR), weightOf(rk, modelrec.FeatureMFScore)
	t.Logf("%d lists, %d examples (%d positive); weights item_ctr %.3f mf_score %.3f item_recency %.3f bias %.3f",
		e.lists, len(exs), pos, wc, wm, weightOf(rk, modelrec.FeatureItemRecency), rk.Bias)
	if wc < 0.5 || math.Abs(wm) > wc/3 {
		t.Fatalf("item_ctr weight %.3f, mf_score %.3f: want item_ctr clearly positive and mf_score small", wc, wm)
	}
}

// TestServiceRestartIsExact stops the stages mid-stream and starts them
// again from an empty data directory (every partition restored from its
// changelog), then once more on the first directory: every served item is
// labelled exactly once and the published weights are exactly a clean
// FTRL's over the examples.
func TestServiceRestartIsExact(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts take seconds; skipped in -short")
	}
	e := newKenv(t, 3)
	recs, events, clicks := traffic(t, 2, 2400, 80)
	dir := t.TempDir()
	a := e.start(t, "a", dir)
	third := len(recs) / 3
	// Events of the first part only up to its last list: the rest of the
	// events (and the closing ones) come at the end.
	e.produce(t, recs[:third], nil)
	time.Sleep(time.Second)
	a.stop(t)
	b := e.start(t, "b", t.TempDir())
	e.produce(t, recs[third:2*third], events[:len(events)/2])
	time.Sleep(time.Second)
	b.stop(t)
	e.start(t, "a", dir)
	e.produce(t, recs[2*third:], events[len(events)/2:])
	// Static members (InstanceID) do not leave their groups on close: the
	// restarted a waits for b's session (10 s) to time out in each of the
	// four groups.
	rk, exs := e.waitFor(t, 5*e.lists, 120*time.Second)
	pos := 0
	var x Example
	for _, r := range exs {
		if err := DecodeExample(r.Value, &x); err != nil {
			t.Fatal(err)
		}
		pos += int(x.Label)
	}
	if pos != clicks {
		t.Fatalf("%d positives after restarts, %d clicks", pos, clicks)
	}
	t.Logf("%d lists → %d examples (%d positive) across two restarts; item_ctr weight %.3f", e.lists, len(exs), pos, weightOf(rk, modelrec.FeatureItemCTR))
}

// joinCounts lists the joiner's non-zero result counters, to tell why a
// label went missing.
func joinCounts(m *metrics) string {
	var b strings.Builder
	for _, r := range joinResults {
		if v := counter(m.joinRecords.WithLabelValues(r)); v != 0 {
			fmt.Fprintf(&b, "%s=%v ", r, v)
		}
	}
	for _, w := range []string{"list", "orphan"} {
		if v := counter(m.evicted.WithLabelValues(w)); v != 0 {
			fmt.Fprintf(&b, "evicted_%s=%v ", w, v)
		}
	}
	fmt.Fprintf(&b, "expired_lists=%v", counter(m.expired))
	return b.String()
}
