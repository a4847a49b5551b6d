package retrain

import (
	"fmt"

	"github.com/eddyrec/eddy/learner/offline"
)

// The primary metrics a gate can compare on.
const (
	MetricHR   = "hr_at_10"
	MetricNDCG = "ndcg_at_10"
)

// GateConfig is the champion/challenger rule. The challenger is promoted
// only if, on the held-out slice, its primary metric beats the champion's
// by more than MinGain (relative), at least MinHoldoutUsers users were
// judged, and no guardrail is worse beyond its tolerance: catalogue
// coverage may fall by at most MaxCoverageDrop (relative), popularity bias
// may rise by at most MaxPopularityRise (relative).
type GateConfig struct {
	Metric            string  `json:"metric"`
	MinGain           float64 `json:"min_gain"`
	MinHoldoutUsers   int     `json:"min_holdout_users"`
	MaxCoverageDrop   float64 `json:"max_coverage_drop"`
	MaxPopularityRise float64 `json:"max_popularity_rise"`
}

// DefaultGate returns the defaults: HR@10 better by more than 2 %, at
// least 50 users judged, coverage down or popularity bias up by at most
// 30 %.
func DefaultGate() GateConfig {
	return GateConfig{Metric: MetricHR, MinGain: 0.02, MinHoldoutUsers: 50, MaxCoverageDrop: 0.3, MaxPopularityRise: 0.3}
}

// Validate reports the first setting out of range.
func (g GateConfig) Validate() error {
	switch {
	case g.Metric != MetricHR && g.Metric != MetricNDCG:
		return fmt.Errorf("retrain: gate metric %q: want %s or %s", g.Metric, MetricHR, MetricNDCG)
	case !(g.MinGain >= 0 && g.MinGain <= 10):
		return fmt.Errorf("retrain: gate min gain %v: want 0–10", g.MinGain)
	case g.MinHoldoutUsers < 1:
		return fmt.Errorf("retrain: min holdout users %d: want ≥ 1", g.MinHoldoutUsers)
	case !(g.MaxCoverageDrop >= 0 && g.MaxCoverageDrop <= 1):
		return fmt.Errorf("retrain: gate max coverage drop %v: want 0–1", g.MaxCoverageDrop)
	case !(g.MaxPopularityRise >= 0 && g.MaxPopularityRise <= 100):
		return fmt.Errorf("retrain: gate max popularity rise %v: want 0–100", g.MaxPopularityRise)
	}
	return nil
}

func (g GateConfig) primary(m *offline.Metrics) float64 {
	if g.Metric == MetricNDCG {
		return m.NDCG
	}
	return m.HR
}

// Decide applies the gate to the two models' metrics on the same slice
// of holdoutUsers users. It returns whether to promote and why, in words
// an operator reads in eddy model show.
func (g GateConfig) Decide(champion, challenger *offline.Metrics, holdoutUsers int) (bool, string) {
	if holdoutUsers < g.MinHoldoutUsers {
		return false, fmt.Sprintf("only %d users in the held-out slice (want at least %d): widen --holdout or lower --min-holdout-users", holdoutUsers, g.MinHoldoutUsers)
	}
	cp, hp := g.primary(champion), g.primary(challenger)
	if !(hp > cp*(1+g.MinGain)) || hp <= cp {
		return false, fmt.Sprintf("%s %.4f is not better than the champion's %.4f by more than %.1f %%", g.Metric, hp, cp, 100*g.MinGain)
	}
	if champion.Coverage > 0 && challenger.Coverage < champion.Coverage*(1-g.MaxCoverageDrop) {
		return false, fmt.Sprintf("%s %.4f beats %.4f, but coverage falls from %.4f to %.4f (more than %.0f %%)",
			g.Metric, hp, cp, champion.Coverage, challenger.Coverage, 100*g.MaxCoverageDrop)
	}
	if champion.PopularityBias > 0 && challenger.PopularityBias > champion.PopularityBias*(1+g.MaxPopularityRise) {
		return false, fmt.Sprintf("%s %.4f beats %.4f, but popularity bias rises from %.4f to %.4f (more than %.0f %%)",
			g.Metric, hp, cp, champion.PopularityBias, challenger.PopularityBias, 100*g.MaxPopularityRise)
	}
	return true, fmt.Sprintf("%s %.4f beats the champion's %.4f (%+.1f %%) on %d users; coverage %.4f (champion %.4f), popularity bias %.4f (champion %.4f)",
		g.Metric, hp, cp, 100*(hp-cp)/max(cp, 1e-12), holdoutUsers, challenger.Coverage, champion.Coverage, challenger.PopularityBias, champion.PopularityBias)
}

func metricsOf(m *offline.Metrics) *struct{ hr, ndcg, cov, pop float64 } {
	if m == nil {
		return nil
	}
	return &struct{ hr, ndcg, cov, pop float64 }{m.HR, m.NDCG, m.Coverage, m.PopularityBias}
}
