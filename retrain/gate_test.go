package retrain

import (
	"strings"
	"testing"

	"github.com/eddyrec/eddy/learner/offline"
)

func TestGateDecide(t *testing.T) {
	g := DefaultGate()
	champ := offline.Metrics{HR: 0.20, NDCG: 0.10, Coverage: 0.30, PopularityBias: 0.20}
	tests := []struct {
		name    string
		chall   offline.Metrics
		users   int
		gate    func(*GateConfig)
		promote bool
		reason  string
	}{
		{"better by more than the gain", offline.Metrics{HR: 0.25, NDCG: 0.12, Coverage: 0.30, PopularityBias: 0.20}, 100, nil, true, "beats the champion's 0.2000"},
		{"better by less than the gain", offline.Metrics{HR: 0.203, Coverage: 0.30, PopularityBias: 0.20}, 100, nil, false, "not better than the champion's 0.2000 by more than 2.0 %"},
		{"equal", champ, 100, nil, false, "not better"},
		{"worse", offline.Metrics{HR: 0.10, Coverage: 0.30, PopularityBias: 0.20}, 100, nil, false, "not better"},
		{"too few users", offline.Metrics{HR: 0.9, Coverage: 0.30, PopularityBias: 0.20}, 49, nil, false, "only 49 users"},
		{"coverage falls too far", offline.Metrics{HR: 0.30, Coverage: 0.20, PopularityBias: 0.20}, 100, nil, false, "coverage falls from 0.3000 to 0.2000"},
		{"coverage falls within tolerance", offline.Metrics{HR: 0.30, Coverage: 0.22, PopularityBias: 0.20}, 100, nil, true, "beats"},
		{"popularity bias rises too far", offline.Metrics{HR: 0.30, Coverage: 0.30, PopularityBias: 0.27}, 100, nil, false, "popularity bias rises from 0.2000 to 0.2700"},
		{"ndcg is the primary metric", offline.Metrics{HR: 0.30, NDCG: 0.10, Coverage: 0.30, PopularityBias: 0.20}, 100,
			func(g *GateConfig) { g.Metric = MetricNDCG }, false, "ndcg_at_10 0.1000 is not better"},
		{"zero gain: any improvement", offline.Metrics{HR: 0.2001, Coverage: 0.30, PopularityBias: 0.20}, 100,
			func(g *GateConfig) { g.MinGain = 0 }, true, "beats"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gc := g
			if tc.gate != nil {
				tc.gate(&gc)
			}
			ok, reason := gc.Decide(&champ, &tc.chall, tc.users)
			if ok != tc.promote || !strings.Contains(reason, tc.reason) {
				t.Fatalf("Decide = %v, %q; want %v and a reason with %q", ok, reason, tc.promote, tc.reason)
			}
		})
	}
}

// An empty champion (no live model, or none of its rows before the
// cut-off) loses to any challenger that ranks something.
func TestGateEmptyChampion(t *testing.T) {
	var champ offline.Metrics
	if ok, reason := DefaultGate().Decide(&champ, &offline.Metrics{HR: 0.01}, 60); !ok {
		t.Fatal(reason)
	}
	if ok, _ := DefaultGate().Decide(&champ, &offline.Metrics{}, 60); ok {
		t.Fatal("a challenger that hits nothing was promoted")
	}
}

func TestGateValidate(t *testing.T) {
	for _, mod := range []func(*GateConfig){
		func(g *GateConfig) { g.Metric = "auc" },
		func(g *GateConfig) { g.MinGain = -0.1 },
		func(g *GateConfig) { g.MinHoldoutUsers = 0 },
		func(g *GateConfig) { g.MaxCoverageDrop = 1.5 },
		func(g *GateConfig) { g.MaxPopularityRise = -1 },
	} {
		g := DefaultGate()
		mod(&g)
		if g.Validate() == nil {
			t.Errorf("%+v validated", g)
		}
	}
	if err := DefaultGate().Validate(); err != nil {
		t.Fatal(err)
	}
}
