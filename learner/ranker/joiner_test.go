package ranker

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/learner/modelrec"
)

var abc = []item{{"a", "mf_score=0.1,item_ctr=0.2"}, {"b", "mf_score=0.3,item_ctr=0.4"}, {"c", "mf_score=0.5,item_ctr=0.6"}}

func TestJoinerPositivesAndExpiry(t *testing.T) {
	h := newJoinHarness(t, testConfig())
	if got := h.feed(listRec(t, "u1", "r1", minutes(0), abc...)); len(got) != 0 {
		t.Fatalf("examples before any answer: %v", labels(got))
	}
	got := h.feed(evRec(t, "u1", "r1", "b", event.Click, minutes(1)))
	if labels(got) != "b:1:engaged" {
		t.Fatalf("click: %s", labels(got))
	}
	if f := got[0].Features; len(f) != 2 || f[0] != (NamedValue{"item_ctr", 0.4}) || f[1] != (NamedValue{"mf_score", 0.3}) {
		t.Fatalf("features %v, want the logged ones sorted by name", f)
	}
	if got[0].ServedMs != minutes(0) || got[0].LabelMs != minutes(1) {
		t.Fatalf("times %d %d", got[0].ServedMs, got[0].LabelMs)
	}
	// A second click and a like of b are duplicates; the window has not
	// passed at 29 minutes.
	got = h.feed(evRec(t, "u1", "r1", "b", event.Click, minutes(2)), evRec(t, "u1", "r1", "b", event.Like, minutes(3)),
		evRec(t, "u2", "rx", "z", event.Impression, minutes(29)))
	if len(got) != 0 || h.result("engagement_duplicate") != 2 {
		t.Fatalf("duplicates: %s, counted %v", labels(got), h.result("engagement_duplicate"))
	}
	if g := counter(h.m.pendingLists); g != 1 {
		t.Fatalf("pending lists gauge %v", g)
	}
	// Another user's event moves the partition's clock past the window.
	got = h.feed(evRec(t, "u2", "rx", "z", event.Impression, minutes(30.5)))
	if labels(got) != "a:0:expired c:0:expired" {
		t.Fatalf("expiry: %s", labels(got))
	}
	if got[0].LabelMs != minutes(30) {
		t.Fatalf("expired label time %d, want the window's end", got[0].LabelMs)
	}
	if g := counter(h.m.pendingLists); g != 0 || counter(h.m.expired) != 1 {
		t.Fatalf("pending %v expired %v", g, counter(h.m.expired))
	}
	if len(h.b.state) != 1 { // only the meta; the queue chunk and the user are gone... or kept empty
		for k := range h.b.state {
			if k[0] == 'u' {
				t.Fatalf("user state %q left after its only list expired", k)
			}
		}
	}
}

func TestJoinerAnswers(t *testing.T) {
	h := newJoinHarness(t, testConfig())
	h.feed(listRec(t, "u1", "r1", minutes(0), abc...), listRec(t, "u1", "r2", minutes(0), abc...))
	got := h.feed(
		evRec(t, "u1", "r1", "a", event.Dislike, minutes(1)),
		evRec(t, "u1", "r1", "a", event.Click, minutes(2)), // a was decided by the dislike
		evRec(t, "u1", "r1", "b", event.Watch, minutes(1), watchRatio(0.2)),
		evRec(t, "u1", "r1", "c", event.Watch, minutes(1), watchRatio(0.05)),
		evRec(t, "u1", "r2", "a", event.Watch, minutes(1), watchRatio(0.9)),
		evRec(t, "u1", "r2", "b", event.Skip, minutes(1)),
		evRec(t, "u1", "r2", "c", event.Impression, minutes(1)),
		evRec(t, "u1", "r2", "q", event.Click, minutes(1)), // not in the list
		evRec(t, "u1", "", "c", event.Click, minutes(1)),   // no request id
	)
	if want := "a:0:rejected c:0:rejected a:1:engaged b:0:rejected"; labels(got) != want {
		t.Fatalf("answers: %s, want %s", labels(got), want)
	}
	if h.result("engagement_ambiguous") != 1 || h.result("engagement_unknown_item") != 1 || h.result("event_other") != 2 {
		t.Fatalf("ambiguous %v unknown item %v other %v", h.result("engagement_ambiguous"), h.result("engagement_unknown_item"), h.result("event_other"))
	}
	// r1 is fully decided (b ambiguously: no example); r2's c expires.
	got = h.feed(evRec(t, "u9", "r", "z", event.Impression, minutes(31)))
	if labels(got) != "c:0:expired" {
		t.Fatalf("expiry: %s", labels(got))
	}
}

func TestJoinerLateAndUnknown(t *testing.T) {
	h := newJoinHarness(t, testConfig())
	h.feed(listRec(t, "u1", "r1", minutes(0), abc...))
	// A click after the window: the click's own time closes the window
	// first, so the list expires whole and the click is late.
	got := h.feed(evRec(t, "u1", "r1", "a", event.Click, minutes(31)))
	if labels(got) != "a:0:expired b:0:expired c:0:expired" {
		t.Fatalf("late click: %s", labels(got))
	}
	// An engagement for a request never served is held (its list may
	// come), then dropped once the served lists' clock is a window past it.
	h.feed(evRec(t, "u1", "r9", "a", event.Click, minutes(32)))
	if h.result("engagement_orphan") != 2 || counter(h.m.orphans) != 2 {
		t.Fatalf("orphans %v (gauge %v), want the late click and the unknown one", h.result("engagement_orphan"), counter(h.m.orphans))
	}
	got = h.feed(listRec(t, "u2", "r5", minutes(63), abc...))
	if len(got) != 0 || h.result("orphan_dropped") != 2 || counter(h.m.orphans) != 0 {
		t.Fatalf("dropped %v gauge %v examples %s", h.result("orphan_dropped"), counter(h.m.orphans), labels(got))
	}
	// An engagement far behind the served lists' clock is not held.
	h.feed(evRec(t, "u2", "r0", "a", event.Click, minutes(20)))
	if h.result("engagement_unknown") != 1 {
		t.Fatalf("unknown engagements %v", h.result("engagement_unknown"))
	}
}

func TestJoinerEngagementBeforeList(t *testing.T) {
	h := newJoinHarness(t, testConfig())
	h.feed(evRec(t, "u1", "r1", "c", event.Click, minutes(1)), evRec(t, "u1", "r1", "c", event.Click, minutes(1)))
	if h.result("engagement_duplicate") != 1 {
		t.Fatal("duplicate orphan not recognised")
	}
	got := h.feed(listRec(t, "u1", "r1", minutes(0.5), abc...))
	if labels(got) != "c:1:engaged" || h.result("orphan_matched") != 1 {
		t.Fatalf("list after its click: %s", labels(got))
	}
	// A list arriving after the events passed its window is decided at
	// once, with the engagements that came before it.
	h.feed(evRec(t, "u1", "r2", "a", event.Like, minutes(2)), evRec(t, "u3", "x", "a", event.Impression, minutes(40)))
	got = h.feed(listRec(t, "u1", "r2", minutes(1.5), abc...))
	if labels(got) != "a:1:engaged b:0:expired c:0:expired" || h.result("list_late") != 1 {
		t.Fatalf("late list: %s", labels(got))
	}
}

func TestJoinerListsWithoutFeatures(t *testing.T) {
	h := newJoinHarness(t, testConfig())
	fb := listRec(t, "u1", "r0", minutes(0), item{"a", ""})
	fb.Value = []byte(`{"request_id":"r0","user_id":"u1","fallback":true,"ts":` + fmt.Sprint(minutes(0)) + `,"items":[{"item_id":"a","position":0,"score":9}]}`)
	// An experiment's popularity arm: not a fallback, but no ranker list.
	pop := listRec(t, "u1", "rp", minutes(0), item{"a", ""})
	pop.Value = []byte(`{"request_id":"rp","user_id":"u1","variant":"pop","policy":"popularity","fallback":false,"ts":` + fmt.Sprint(minutes(0)) + `,"items":[{"item_id":"a","position":0,"score":9}]}`)
	h.feed(fb, pop, listRec(t, "u1", "r1", minutes(0), item{"a", ""}, item{"b", ""}), listRec(t, "u1", "r1", minutes(0), abc...))
	if h.result("list_skipped") != 2 || h.result("list_duplicate") != 1 {
		t.Fatalf("skipped %v duplicate %v", h.result("list_skipped"), h.result("list_duplicate"))
	}
	got := h.feed(evRec(t, "u1", "r1", "b", event.Click, minutes(1)), evRec(t, "u1", "r0", "a", event.Click, minutes(1)), evRec(t, "u1", "rp", "a", event.Click, minutes(1)))
	// No ranker served r1: its score is the retrieval score.
	if labels(got) != "b:1:engaged" || len(got[0].Features) != 1 || got[0].Features[0] != (NamedValue{modelrec.FeatureMFScore, 0.6}) {
		t.Fatalf("bootstrap example %+v", got)
	}
}

func TestJoinerBounds(t *testing.T) {
	cfg := testConfig()
	cfg.MaxListsPerUser, cfg.MaxPendingLists = 2, 3
	cfg.MaxOrphansPerUser, cfg.MaxOrphans = 2, 3
	h := newJoinHarness(t, cfg)
	for i := range 3 {
		h.feed(listRec(t, "u1", fmt.Sprint("r", i), minutes(float64(i)), abc...))
	}
	if counter(h.m.pendingLists) != 2 || counter(h.m.evicted.WithLabelValues("list")) != 1 {
		t.Fatalf("per user: pending %v evicted %v", counter(h.m.pendingLists), counter(h.m.evicted.WithLabelValues("list")))
	}
	// The oldest list is gone: its click is an orphan, not a positive.
	if got := h.feed(evRec(t, "u1", "r0", "a", event.Click, minutes(4))); len(got) != 0 {
		t.Fatalf("evicted list answered: %s", labels(got))
	}
	for i := range 4 {
		h.feed(listRec(t, fmt.Sprint("v", i), "s", minutes(5), abc...))
	}
	if counter(h.m.pendingLists) != 3 || counter(h.m.evicted.WithLabelValues("list")) != 4 {
		t.Fatalf("in total: pending %v evicted %v", counter(h.m.pendingLists), counter(h.m.evicted.WithLabelValues("list")))
	}
	for i := range 5 {
		h.feed(evRec(t, fmt.Sprint("w", i%2), fmt.Sprint("q", i), "a", event.Click, minutes(6)))
	}
	if o := counter(h.m.orphans); o != 3 {
		t.Fatalf("orphans %v, want the bound 3", o)
	}
	if len(h.out) != 0 {
		t.Fatalf("evictions made examples: %s", labels(h.out))
	}
}

// randomInput is a stream of served lists and answers, shuffled a little
// between the two sources as two forwarders would interleave them.
func randomInput(t testing.TB, seed uint64, n int) []*kgo.Record {
	rng := rand.New(rand.NewPCG(seed, 7))
	var recs []*kgo.Record
	items := []item{{"a", "mf_score=1,item_ctr=0.1"}, {"b", "mf_score=2,item_ctr=0.5"}, {"c", "mf_score=0.5,item_ctr=0.9"}, {"d", ""}}
	types := []event.Type{event.Click, event.Like, event.Skip, event.Impression, event.Dislike, event.Click}
	for i := range n {
		ts := minutes(float64(i) / 4)
		user := fmt.Sprint("u", rng.IntN(30))
		req := fmt.Sprint("r", i)
		recs = append(recs, listRec(t, user, req, ts, items[:1+rng.IntN(4)]...))
		for range rng.IntN(3) {
			at := ts + int64(rng.IntN(40*60_000))
			recs = append(recs, evRec(t, user, req, string(rune('a'+rng.IntN(4))), types[rng.IntN(len(types))], at))
		}
	}
	// Local disorder: swap neighbours.
	for i := 1; i < len(recs); i++ {
		if rng.IntN(3) == 0 {
			recs[i-1], recs[i] = recs[i], recs[i-1]
		}
	}
	return recs
}

// TestJoinerRestartIsExact checks that a joiner rebuilt from its state
// (after a crash, or on another instance) emits exactly the examples of an
// uninterrupted run, and ends with the same state.
func TestJoinerRestartIsExact(t *testing.T) {
	recs := randomInput(t, 1, 3000)
	cfg := testConfig()
	cfg.MaxListsPerUser = 8 // evictions happen too
	a, b := newJoinHarness(t, cfg), newJoinHarness(t, cfg)
	for i := 0; i < len(recs); i += 53 {
		a.feed(recs[i:min(i+53, len(recs))]...)
	}
	for i := 0; i < len(recs); i += 53 {
		b.feed(recs[i:min(i+53, len(recs))]...)
		if (i/53)%7 == 0 {
			b.restart()
		}
	}
	if len(a.out) < 1000 {
		t.Fatalf("only %d examples: the test proves little", len(a.out))
	}
	if len(a.raw) != len(b.raw) {
		t.Fatalf("%d examples in one run, %d with restarts", len(a.raw), len(b.raw))
	}
	for i := range a.raw {
		if !slices.Equal(a.raw[i], b.raw[i]) {
			t.Fatalf("example %d differs after restarts", i)
		}
	}
	if len(a.b.state) != len(b.b.state) {
		t.Fatalf("state keys %d vs %d", len(a.b.state), len(b.b.state))
	}
	for k, v := range a.b.state {
		if !slices.Equal(b.b.state[k], v) {
			t.Fatalf("state %q differs after restarts", k)
		}
	}
	pos := 0
	for _, x := range a.out {
		pos += int(x.Label)
	}
	t.Logf("%d input records → %d examples (%d positive), %d pending lists", len(recs), len(a.out), pos, a.p.meta.pending)
}
