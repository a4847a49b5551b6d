package prequential

import (
	"bytes"
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eddyrec/eddy/connectors/movielens"
	"github.com/eddyrec/eddy/connectors/movielens/movielenstest"
	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/synth"
	"github.com/eddyrec/eddy/learner"
)

func like(u, i string, sec int) event.Event {
	return event.Event{UserID: u, ItemID: i, Type: event.Like, Time: time.Unix(int64(sec), 0).UTC()}
}

// TestPopularityByHand checks the scoring loop on a stream small enough to
// work out: K=1, no decay to speak of.
func TestPopularityByHand(t *testing.T) {
	evs := []event.Event{
		like("u1", "A", 1), // not scored: catalogue empty → miss
		like("u2", "A", 2), // top-1 = A → hit
		like("u3", "B", 3), // top-1 = A → miss (B is new anyway)
		like("u3", "A", 4), // top-1 = A → hit
		{UserID: "u1", ItemID: "B", Type: event.Impression, Time: time.Unix(5, 0)}, // not consumption
		like("u1", "B", 6), // u1 consumed A; top-1 = B → hit
		like("u1", "B", 7), // repeat: not scored
	}
	cfg := DefaultConfig()
	cfg.K, cfg.Window, cfg.Candidates, cfg.RankerNegatives = 1, 2, 1, 1
	cfg.PopHalfLife = 1e9
	cfg.Models = []string{Popularity}
	res, err := Run(context.Background(), evs, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Positives != 5 {
		t.Fatalf("scored %d positives, want 5", res.Positives)
	}
	pop := res.Model(Popularity)
	if pop.HR != 3.0/5 || pop.NDCG != 3.0/5 {
		t.Errorf("HR %v NDCG %v, want 0.6 0.6", pop.HR, pop.NDCG)
	}
	if !slices.Equal(pop.WindowHR, []float64{0.5, 0.5, 1}) {
		t.Errorf("window HR %v, want [0.5 0.5 1]", pop.WindowHR)
	}
	if pop.Coverage != 1 { // A and B were both recommended
		t.Errorf("coverage %v, want 1", pop.Coverage)
	}
	if len(res.WindowEnd) != 3 || !res.WindowEnd[2].Equal(time.Unix(6, 0)) {
		t.Errorf("window ends %v", res.WindowEnd)
	}
}

func TestTallyNDCG(t *testing.T) {
	ta := newTally("x")
	list := []learner.Scored{{Item: 5}, {Item: 7}, {Item: 9}}
	ta.record(list, 5, 10) // rank 0 → 1
	ta.record(list, 9, 10) // rank 2 → 1/log2(4) = 0.5
	ta.record(list, 1, 10) // miss
	r := ta.finish(3, 10, 3)
	if math.Abs(r.NDCG-1.5/3) > 1e-12 || math.Abs(r.HR-2.0/3) > 1e-12 || r.Coverage != 0.3 {
		t.Errorf("HR %v NDCG %v coverage %v", r.HR, r.NDCG, r.Coverage)
	}
}

func synthEvents(t testing.TB, n int) []event.Event {
	t.Helper()
	cfg, err := synth.ParseSpec("users=300,items=400,seed=5")
	if err != nil {
		t.Fatal(err)
	}
	g, err := synth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]event.Event, n)
	for i := range evs {
		g.Next(&evs[i])
	}
	return evs
}

func TestRunDeterministicAndComplete(t *testing.T) {
	evs := synthEvents(t, 30000)
	cfg := DefaultConfig()
	cfg.MF.Dim = 32
	cfg.Window = 100
	cfg.Progress = 0
	cfg.Shift = 15000
	a, err := Run(context.Background(), evs, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(context.Background(), evs, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for k, m := range a.Models {
		names = append(names, m.Name)
		n := b.Models[k]
		if m.HR != n.HR || m.NDCG != n.NDCG || m.Coverage != n.Coverage || !slices.Equal(m.WindowHR, n.WindowHR) {
			t.Errorf("%s differs between identical runs", m.Name)
		}
		if len(m.WindowHR) != len(a.WindowEnd) {
			t.Errorf("%s has %d windows, want %d", m.Name, len(m.WindowHR), len(a.WindowEnd))
		}
	}
	if !slices.EqualFunc(a.Recovery, b.Recovery, func(x, y Recovery) bool {
		return x.Model == y.Model && x.Before == y.Before && x.Tail == y.Tail && x.Dip == y.Dip && x.RecoverWindows == y.RecoverWindows
	}) || len(a.Recovery) != len(ModelNames) {
		t.Errorf("recovery differs between identical runs or misses models: %+v vs %+v", a.Recovery, b.Recovery)
	}
	if !slices.Equal(names, ModelNames) {
		t.Errorf("models %v, want %v", names, ModelNames)
	}
	if len(a.Tests) != 7 {
		t.Errorf("%d tests, want 7", len(a.Tests))
	}
	// Reports render.
	var buf bytes.Buffer
	for _, w := range []func() error{
		func() error { return WriteJSON(&buf, a) },
		func() error { return WriteText(&buf, a) },
		func() error { return WriteCSV(&buf, a) },
		func() error { return WritePlot(&buf, a, "test") },
	} {
		if err := w(); err != nil {
			t.Fatal(err)
		}
	}
	if lines := strings.Count(buf.String(), "\n"); lines < len(a.WindowEnd) {
		t.Errorf("reports too short: %d lines", lines)
	}
}

func TestRunErrors(t *testing.T) {
	if _, err := Run(context.Background(), []event.Event{{UserID: "u", ItemID: "i", Type: event.Impression}}, DefaultConfig(), nil); err != ErrNoPositives {
		t.Errorf("no positives: err = %v", err)
	}
	cfg := DefaultConfig()
	cfg.Models = []string{"bogus"}
	if _, err := Run(context.Background(), nil, cfg, nil); err == nil {
		t.Error("unknown model accepted")
	}
	cfg = DefaultConfig()
	cfg.Shift = 2000
	if _, err := Run(context.Background(), synthEvents(t, 2000), cfg, nil); err == nil || !strings.Contains(err.Error(), "shift at event 2000") {
		t.Errorf("shift past the end: err = %v", err)
	}
	cfg.Shift = -1
	if _, err := Run(context.Background(), nil, cfg, nil); err == nil {
		t.Error("negative shift accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg = DefaultConfig()
	cfg.Progress = 10
	if _, err := Run(ctx, synthEvents(t, 2000), cfg, nil); err == nil {
		t.Error("cancelled run returned no error")
	}
}

// TestOnlineMFBeatsPopularity is the acceptance check of issue 4 on the
// shared MovieLens copies: online MF beats decayed popularity on HR@10 and
// NDCG@10, significantly over windows.
func TestOnlineMFBeatsPopularity(t *testing.T) {
	if testing.Short() {
		t.Skip("full MovieLens replay")
	}
	for _, name := range []string{"ml-100k", "ml-latest-small"} {
		t.Run(name, func(t *testing.T) {
			rs, err := movielens.ReadDir(movielenstest.Dir(t, name))
			if err != nil {
				t.Fatal(err)
			}
			cfg := DefaultConfig()
			cfg.Models = []string{OnlineMF}
			cfg.Progress = 0
			res, err := Run(context.Background(), movielens.Events(rs), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			on, pop := res.Model(OnlineMF), res.Model(Popularity)
			if on.HR < 1.1*pop.HR || on.NDCG < 1.1*pop.NDCG {
				t.Errorf("online MF HR %.4f NDCG %.4f vs popularity %.4f %.4f: want ≥ 10%% better", on.HR, on.NDCG, pop.HR, pop.NDCG)
			}
			for _, pt := range res.Tests {
				if pt.A == OnlineMF && pt.B == Popularity && (pt.WilcoxonP > 0.001 || pt.MeanDiff <= 0) {
					t.Errorf("%s: mean diff %v, Wilcoxon p %v", pt.Metric, pt.MeanDiff, pt.WilcoxonP)
				}
			}
			t.Logf("%s: online_mf HR@10 %.4f NDCG@10 %.4f; popularity %.4f %.4f", name, on.HR, on.NDCG, pop.HR, pop.NDCG)
		})
	}
}

func BenchmarkPrequentialMovieLensSmall(b *testing.B) {
	rs, err := movielens.ReadDir(movielenstest.Dir(b, "ml-latest-small"))
	if err != nil {
		b.Fatal(err)
	}
	evs := movielens.Events(rs)
	cfg := DefaultConfig()
	cfg.Progress = 0
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Run(context.Background(), evs, cfg, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(evs)*b.N)/b.Elapsed().Seconds(), "events/s")
}

// tasteShiftSpec is the taste-shift scenario of issue 4: tastes that
// matter more than popularity (affinity weight 3, 70 % of impressions
// explore, mild popularity), few taste dimensions so a user's taste can be
// learnt from tens of clicks, and every user's taste resampled at event
// 300,000 — after the frozen model's 20 % (120,000-event) prefix.
const tasteShiftSpec = "users=2000,items=500,dim=4,explore=0.7,zipf-s=0.8,popularity-weight=0.5,affinity-weight=3,drift-at=300000,drift-kind=taste"

// TestTasteShiftRecovery is the drift acceptance check of issue 4: after
// an injected taste shift the online MF gets back to its pre-shift HR
// while the frozen MF stays down. Measured on seeds 1–8 (learning rate
// 0.1): online tail/before 1.08–1.24, back to 90 % of its pre-shift HR
// within 3–6 windows; frozen 0.41–0.47, never back. Seed 1 gives 1.08 and
// 0.44. The thresholds are the issue's, ≥ 0.8 and ≤ 0.5; with the
// MovieLens learning rate 0.25 the frozen model's ratio is 0.53–0.60 and
// this test fails.
func TestTasteShiftRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("600,000-event replay (~3 s plain, far longer under -race)")
	}
	cfg, err := synth.ParseSpec(tasteShiftSpec + ",seed=1")
	if err != nil {
		t.Fatal(err)
	}
	g, err := synth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]event.Event, 600_000)
	for i := range evs {
		g.Next(&evs[i])
	}
	pc := DefaultConfig()
	pc.Models = []string{OnlineMF, FrozenMF}
	pc.Progress = 0
	// 0.1 rather than the MovieLens-tuned 0.25: synthetic clicks are noisier
	// (exposure is random), and every click is followed by a watch and often
	// more positives on the same item, so each interaction takes several
	// steps.
	pc.MF.LearnRate = 0.1
	pc.Shift = int(cfg.DriftAt)
	res, err := Run(context.Background(), evs, pc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.FrozenAt >= res.Shift {
		t.Fatalf("frozen at event %d, shift at %d: the shift must come after the frozen prefix", res.FrozenAt, res.Shift)
	}
	on, fr := res.RecoveryOf(OnlineMF), res.RecoveryOf(FrozenMF)
	if on == nil || fr == nil {
		t.Fatal("no recovery in the result")
	}
	for _, rc := range []*Recovery{on, fr} {
		t.Logf("%s: before %.4f (%d windows), dip %.4f, tail %.4f (%d windows), ratio %.2f, recovered after %d windows",
			rc.Model, rc.Before, rc.BeforeWindows, rc.Dip, rc.Tail, rc.TailWindows, rc.Ratio, rc.RecoverWindows)
		if rc.BeforeWindows < 5 || rc.TailWindows < 5 {
			t.Errorf("%s: %d windows before, %d in the tail: too few to judge", rc.Model, rc.BeforeWindows, rc.TailWindows)
		}
	}
	if on.Ratio < 0.8 {
		t.Errorf("online MF tail HR %.4f is %.2f of its pre-shift %.4f: want ≥ 0.8", on.Tail, on.Ratio, on.Before)
	}
	if on.RecoverWindows < 0 {
		t.Errorf("online MF never got back to %.0f%% of its pre-shift HR", 100*RecoverAt)
	}
	if fr.Ratio > 0.5 {
		t.Errorf("frozen MF tail HR %.4f is %.2f of its pre-shift %.4f: want ≤ 0.5", fr.Tail, fr.Ratio, fr.Before)
	}
	if fr.Dip >= 0.8*fr.Before {
		t.Errorf("frozen MF did not drop at the shift: dip %.4f, before %.4f", fr.Dip, fr.Before)
	}
}

// TestRecoveryByHand checks the window bookkeeping of recovery on a
// hand-made result: windows of 10 positives, the frozen prefix ends at
// event 100 and the shift comes at event 300.
func TestRecoveryByHand(t *testing.T) {
	r := &Result{
		Window: 10, Positives: 83,
		//                  w0  w1   w2   w3   w4   w5   w6   w7   w8(3 positives)
		WindowEndEvent: []int{50, 120, 200, 290, 330, 400, 500, 600, 610},
	}
	m := &ModelResult{Name: "m", WindowHR: []float64{0.9, 0.4, 0.4, 0.4, 0.1, 0.2, 0.3, 0.4, 0}}
	// Before: w1 starts at 51 < 100, so only w2 (121–200) and w3 (201–290).
	// w4 straddles the shift; post = w5, w6, w7 (w8 is a sliver, dropped).
	rc := recovery(r, m, 100, 300, 0)
	want := Recovery{Model: "m", Before: 0.4, BeforeWindows: 2, Dip: 0.2, Tail: 0.4, TailWindows: 1, Ratio: 1, RecoverWindows: -1}
	if math.Abs(rc.Before-want.Before) > 1e-12 || rc.BeforeWindows != 2 || math.Abs(rc.Dip-0.2) > 1e-12 ||
		math.Abs(rc.Tail-0.4) > 1e-12 || rc.TailWindows != 1 || math.Abs(rc.Ratio-1) > 1e-12 || rc.RecoverWindows != -1 {
		t.Errorf("recovery = %+v, want %+v", rc, want)
	}
	// 0.2, 0.3, 0.4 average 0.3 < 0.9·0.4, so never recovered; with a lower
	// bar of 0.3 for "before" it recovers over the first three windows.
	m.WindowHR[2], m.WindowHR[3] = 0.3, 0.3
	if rc = recovery(r, m, 100, 300, 3); rc.RecoverWindows != 3 || rc.TailWindows != 3 || math.Abs(rc.Tail-0.3) > 1e-12 {
		t.Errorf("recovery = %+v, want recovered after 3 windows, tail 0.3 over 3", rc)
	}
	// No window after the shift: nothing but the before level.
	if rc = recovery(r, m, 100, 1000, 0); rc.RecoverWindows != -1 || !math.IsNaN(rc.Ratio) || rc.TailWindows != 0 {
		t.Errorf("shift past the end: %+v", rc)
	}
}
