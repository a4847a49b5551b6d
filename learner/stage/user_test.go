package stage

import (
	"fmt"
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/modelrec"
)

// TestMatchesModel runs the stages on one partition with a replica that is
// current between batches, and learner.Model over the same events: the two
// must agree bit for bit (vectors, biases), because the stages call the
// same functions in the same order, sample the same negatives, and a batch
// sees its own item updates (the overlay), whatever the batch size.
func TestMatchesModel(t *testing.T) {
	for _, batch := range []int{1, 250} {
		t.Run(fmt.Sprint("batch=", batch), func(t *testing.T) { testMatchesModel(t, batch) })
	}
}

func testMatchesModel(t *testing.T, batch int) {
	evs := synthEvents(t, "users=60,items=40,seed=5", 3000)
	cfg := testConfig()
	p := newPipeline(t, cfg)
	p.run(evs, batch)

	users, items := learner.NewCatalog(), learner.NewCatalog()
	m, err := learner.NewModel(cfg.MF, users, items)
	if err != nil {
		t.Fatal(err)
	}
	trained := 0
	for i := range evs {
		ev := &evs[i]
		if _, w := cfg.MF.Confidence.Signal(ev); w <= 0 {
			continue
		}
		// Intern as the stage's catalogue does: training items in order of
		// first sight, so both samplers index items alike.
		m.LearnEvent(users.Intern(ev.UserID), items.Intern(ev.ItemID), ev)
		trained++
	}
	if trained < 200 {
		t.Fatalf("only %d training events: the test proves little", trained)
	}
	if items.Len() != len(p.pub) {
		t.Fatalf("model has %d items, the item stage published %d", items.Len(), len(p.pub))
	}
	checked := 0
	for ui := range int32(users.Len()) {
		uid := users.ID(ui)
		uv, ok := p.users[uid]
		if !ok {
			t.Fatalf("user %s was never published", uid)
		}
		for ii := range int32(items.Len()) {
			iv := p.pub[items.ID(ii)]
			got := learner.Score(&learner.Row{Vec: uv.Vec}, &learner.Row{Vec: iv.Vec, Bias: iv.Bias})
			if want := m.Score(ui, ii); got != want {
				t.Fatalf("score(%s, %s): stages %v, model %v (user %s)", uid, items.ID(ii), got, want, fmtVec(uv.Vec))
			}
			checked++
		}
	}
	t.Logf("%d training events, %d users, %d items, %d scores identical", trained, users.Len(), items.Len(), checked)
}

// TestUserStageCounters checks the per-event bookkeeping: update counters,
// timestamps, seen lists, impressions and invalid records.
func TestUserStageCounters(t *testing.T) {
	cfg := testConfig()
	cfg.SeenItems = 2
	p := newPipeline(t, cfg)
	ev := func(user, item string, typ event.Type, ms int64) event.Event {
		return event.Event{EventID: user + item, UserID: user, ItemID: item, Type: typ, Time: timeMs(ms)}
	}
	w := ev("u1", "a", event.Watch, 5)
	w.Value, w.HasValue, w.Duration, w.HasDuration = 50, true, 200, true // ratio 0.25: no MF signal
	evs := []event.Event{
		ev("u1", "a", event.Click, 10),
		ev("u1", "b", event.Impression, 11),
		ev("u1", "b", event.Impression, 12),
		ev("u2", "b", event.Click, 20),
		ev("u1", "c", event.Dislike, 15),
		w,
		ev("u1", "a", event.Like, 30),
	}
	recs := make([]*kgo.Record, 0, len(evs)+1)
	for i := range evs {
		recs = append(recs, eventRecord(t, &evs[i], int64(i)))
	}
	recs = append(recs, &kgo.Record{Key: []byte("u9"), Value: []byte(`{"not":"an event"}`), Offset: 99})
	p.feed(recs)

	u1, u2 := p.users["u1"], p.users["u2"]
	if u1.Updates != 3 || u2.Updates != 1 {
		t.Fatalf("updates u1 %d (want 3: click, dislike, like), u2 %d (want 1)", u1.Updates, u2.Updates)
	}
	if u1.TsMillis != 30 || u2.TsMillis != 20 {
		t.Fatalf("ts u1 %d u2 %d", u1.TsMillis, u2.TsMillis)
	}
	if got := u1.Seen; len(got) != 2 || got[0] != "c" || got[1] != "a" {
		t.Fatalf("u1 seen %v, want [c a] (a moved to the end, b was only an impression, the oldest dropped)", got)
	}
	if u1.ModelVersion != cfg.ModelVersion || u1.Kind != modelrec.KindUser {
		t.Fatalf("u1 record header %+v", u1)
	}
	// Gradients: every training event's own item, plus sampled negatives
	// for positives; one impression record for b.
	kinds := map[GradKind]int{}
	for _, r := range p.grads {
		k, _, err := decodeGradHeader(gradHeader(r))
		if err != nil {
			t.Fatal(err)
		}
		kinds[k]++
	}
	if kinds[KindPositive] != 3 || kinds[KindNegative] != 1 || kinds[KindImpressions] != 1 {
		t.Fatalf("gradient kinds %v", kinds)
	}
	b := p.pub["b"]
	// Impressions at 12 ms decay a hair by the click at 20 ms.
	if math.Abs(float64(b.Impressions)-2) > 1e-5 || b.Popularity != 1 {
		t.Fatalf("item b: impressions %v popularity %v, want 2 and 1", b.Impressions, b.Popularity)
	}
	a := p.pub["a"]
	if a.Popularity != 2 || a.TsMillis != 30 {
		t.Fatalf("item a: popularity %v ts %d, want 2 at 30", a.Popularity, a.TsMillis)
	}
	var sampled uint64
	for _, v := range p.pub {
		sampled += v.Updates
	}
	if want := uint64(kinds[KindPositive] + kinds[KindNegative] + kinds[KindSampled]); sampled != want {
		t.Fatalf("item updates sum %d, gradients %d", sampled, want)
	}
	if got := testutilCounter(p.m.records.WithLabelValues("user", "invalid")); got != 1 {
		t.Fatalf("invalid records counted %v, want 1", got)
	}
}

// TestRestartIsExact checks that a processor rebuilt from state (after a
// crash, or on another instance) continues as if nothing happened: the
// sampler and the catalogue are part of the state.
func TestRestartIsExact(t *testing.T) {
	evs := synthEvents(t, "users=200,items=3000,seed=3,zipf-s=0.5", 12000)
	cfg := testConfig()
	cfg.MF.NegativeWindow = 100 // wraps within the stream
	a := newPipeline(t, cfg)
	a.run(evs, 97)
	b := newPipeline(t, cfg)
	// Restart every 10 batches, keeping batch boundaries (impressions are
	// summed per batch).
	for i := 0; i < len(evs); i += 970 {
		b.run(evs[i:min(i+970, len(evs))], 97)
		b.restartUser()
	}
	if len(a.grads) != len(b.grads) {
		t.Fatalf("%d gradients in one run, %d with restarts", len(a.grads), len(b.grads))
	}
	for i := range a.grads {
		if string(a.grads[i].Key) != string(b.grads[i].Key) || string(a.grads[i].Value) != string(b.grads[i].Value) {
			t.Fatalf("gradient %d differs after restarts", i)
		}
	}
	if len(a.ub.state) != len(b.ub.state) {
		t.Fatalf("state keys %d vs %d", len(a.ub.state), len(b.ub.state))
	}
	for k, v := range a.ub.state {
		if string(b.ub.state[k]) != string(v) {
			t.Fatalf("state %q differs after restarts", k)
		}
	}
	if a.user.cat.stored <= catalogueChunk {
		t.Fatalf("catalogue of %d ids does not span chunks", a.user.cat.stored)
	}
}

func TestDecayed(t *testing.T) {
	d := decayed{halfLifeMillis: 1000}
	for _, tc := range []struct {
		name     string
		adds     [][2]int64 // time, weight
		wantPop  float32
		wantTs   int64
		wantImps float32
	}{
		{"one", [][2]int64{{5, 1}}, 1, 5, 0},
		{"same time", [][2]int64{{5, 1}, {5, 2}}, 3, 5, 0},
		{"later halves", [][2]int64{{0, 4}, {1000, 1}}, 3, 1000, 0},
		{"earlier decays the addition", [][2]int64{{1000, 1}, {0, 4}}, 3, 1000, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pop, imps float32
			ts := int64(math.MinInt64)
			for _, a := range tc.adds {
				d.add(&pop, &imps, &ts, a[0], float32(a[1]))
			}
			if pop != tc.wantPop || ts != tc.wantTs || imps != tc.wantImps {
				t.Fatalf("pop %v ts %d imps %v; want %v %d %v", pop, ts, imps, tc.wantPop, tc.wantTs, tc.wantImps)
			}
		})
	}
	// The other count decays along when time moves forward.
	pop, imps, ts := float32(0), float32(8), int64(0)
	d.add(&pop, &imps, &ts, 2000, 1)
	if pop != 1 || imps != 2 {
		t.Fatalf("pop %v imps %v, want 1 and 2", pop, imps)
	}
}
