package offline

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/eddyrec/eddy/learner/ials"
	"github.com/eddyrec/eddy/learner/trainset"
)

// Grid lists the values a sweep tries; every combination runs.
type Grid struct {
	Dim              []int
	Epochs           []int
	Reg              []float64
	UnobservedWeight []float64
	RegExponent      []float64
}

// DefaultGrid is the small grid of `eddy eval offline --sweep`: the
// dimension and Rendle et al.'s two most sensitive knobs, λ and α₀, at
// thirds of a decade around c's values, with c's epochs and ν (λ's scale
// depends on ν, so one grid cannot serve both ν = 0 and ν = 1).
func DefaultGrid(c ials.Config) Grid {
	dims := []int{c.Dim}
	if c.Dim >= 32 && c.Dim <= 512 {
		dims = []int{c.Dim / 2, c.Dim, c.Dim * 2}
	}
	return Grid{
		Dim:              dims,
		Epochs:           []int{c.Epochs},
		Reg:              []float64{c.Reg / 3, c.Reg, c.Reg * 3},
		UnobservedWeight: []float64{c.UnobservedWeight / 3, c.UnobservedWeight, c.UnobservedWeight * 3},
		RegExponent:      []float64{c.RegExponent},
	}
}

func (g Grid) configs(base ials.Config) []ials.Config {
	var out []ials.Config
	for _, d := range g.Dim {
		for _, e := range g.Epochs {
			for _, r := range g.Reg {
				for _, a := range g.UnobservedWeight {
					for _, n := range g.RegExponent {
						c := base
						c.Dim, c.Epochs, c.Reg, c.UnobservedWeight, c.RegExponent = d, e, r, a, n
						out = append(out, c)
					}
				}
			}
		}
	}
	return out
}

// SweepPoint is one grid point's validation result.
type SweepPoint struct {
	Config  ials.Config
	Metrics Metrics
	Seconds float64
}

// SweepResult is a finished sweep: every point, the best one (by
// validation HR@K, then NDCG) and that configuration's test result.
type SweepResult struct {
	Points []SweepPoint
	Best   int
	Test   *Result
}

// Sweep carves a validation split from the training part of cfg's
// protocol — the test part is never looked at while choosing — trains iALS
// at every point of grid on the validation split's training part, picks
// the best by validation HR@K, and finally runs cfg with it (training on
// the whole training part, testing on the test part).
func Sweep(ctx context.Context, s *trainset.Set, cfg Config, grid Grid, log *slog.Logger) (*SweepResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.IALS.Seed = cfg.Seed
	cs := grid.configs(cfg.IALS)
	if len(cs) == 0 {
		return nil, fmt.Errorf("offline: the sweep grid is empty")
	}
	for _, c := range cs {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("offline: sweep grid: %w", err)
		}
	}
	sp, err := makeSplit(s, nil, cfg.splitOptions())
	if err != nil {
		return nil, err
	}
	vs, err := makeSplit(s, sp.Train, cfg.splitOptions())
	if err != nil {
		return nil, err
	}
	if len(vs.Cases) == 0 {
		return nil, ErrNoCases
	}
	quiet := slog.New(slog.DiscardHandler)
	res := &SweepResult{}
	for n, c := range cs {
		start := time.Now()
		f, _, err := trainIALS(ctx, s, vs.Train, c, nil, quiet)
		if err != nil {
			return nil, fmt.Errorf("sweep point %d: %w", n+1, err)
		}
		m := evaluate(vs, factorScorer{f}, cfg.K, cfg.RecallK, vs.TrainItems)
		p := SweepPoint{Config: c, Metrics: m, Seconds: time.Since(start).Seconds()}
		res.Points = append(res.Points, p)
		best := res.Points[res.Best].Metrics
		if m.HR > best.HR || (m.HR == best.HR && m.NDCG > best.NDCG) {
			res.Best = n
		}
		log.Info("eval offline: sweep", "point", n+1, "of", len(cs), "dim", c.Dim, "epochs", c.Epochs, "reg", c.Reg,
			"unobserved_weight", c.UnobservedWeight, "reg_exponent", c.RegExponent,
			"validation_hr_at_10", round(m.HR, 4), "validation_ndcg_at_10", round(m.NDCG, 4), "seconds", round(p.Seconds, 2))
	}
	final := cfg
	final.IALS = res.Points[res.Best].Config
	if res.Test, err = Run(ctx, s, final, log); err != nil {
		return nil, err
	}
	return res, nil
}
