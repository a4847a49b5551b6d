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
