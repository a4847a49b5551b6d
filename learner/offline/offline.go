package offline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/ials"
	"github.com/eddyrec/eddy/learner/trainset"
)

// Config says how to split and what to run.
type Config struct {
	Protocol string
	// K is the list length of HR and NDCG (10); RecallK that of recall (20).
	K, RecallK int
	// Negatives is the number of sampled negatives per case (99).
	Negatives int
	// TestFrac is the share of events after the time-split cut (0.2).
	TestFrac float64
	// MaxTestUsers caps the number of test cases (a seeded sample); 0 tests
	// every user. Full ranking costs users × items × Dim.
	MaxTestUsers int
	// Seed fixes the sampled negatives, the test-user sample and the
	// models' initialisation (it overrides IALS.Seed and MF.Seed).
	Seed uint64
	// Models lists what to run (default all of ModelNames).
	Models []string
	// ValidateEpochs first trains iALS on a validation split carved from
	// the training part (same protocol) and reports HR@K on it after every
	// epoch (see ValidationCurve); the tested model is then trained on the
	// whole training part.
	ValidateEpochs bool
	IALS           ials.Config
	MF             learner.MFConfig
}

// DefaultConfig returns the leave-last-out protocol and the default models.
func DefaultConfig() Config {
	return Config{Protocol: LeaveLastOut, K: 10, RecallK: 20, Negatives: 99, TestFrac: 0.2,
		MaxTestUsers: 0, Seed: 1, IALS: ials.DefaultConfig(), MF: learner.DefaultMFConfig()}
}

// Validate reports the first setting out of range.
func (c Config) Validate() error {
	switch {
	case !slices.Contains(Protocols, c.Protocol):
		return fmt.Errorf("offline: protocol %q: want one of %v", c.Protocol, Protocols)
	case c.K < 1 || c.K > 1000 || c.RecallK < 1 || c.RecallK > 1000:
		return fmt.Errorf("offline: k %d, recall k %d: want 1–1000", c.K, c.RecallK)
	case c.Negatives < 1 || c.Negatives > 100_000:
		return fmt.Errorf("offline: negatives %d: want 1–100000", c.Negatives)
	case !(c.TestFrac > 0 && c.TestFrac < 1):
		return fmt.Errorf("offline: test fraction %v: want (0, 1)", c.TestFrac)
	case c.MaxTestUsers < 0:
		return fmt.Errorf("offline: max test users %d: want ≥ 0", c.MaxTestUsers)
	}
	for _, m := range c.Models {
		if !slices.Contains(ModelNames, m) {
			return fmt.Errorf("offline: model %q: want some of %v", m, ModelNames)
		}
	}
	if err := c.IALS.Validate(); err != nil {
		return err
	}
	return c.MF.Validate()
}

func (c Config) runs(model string) bool {
	return len(c.Models) == 0 || slices.Contains(c.Models, model)
}

func (c Config) splitOptions() splitOptions {
	return splitOptions{protocol: c.Protocol, testFrac: c.TestFrac, negatives: c.Negatives, seed: c.Seed, maxUsers: c.MaxTestUsers}
}

// ModelResult is one model's line of the report.
type ModelResult struct {
	Name string `json:"-"`
	Metrics
	TrainSeconds float64 `json:"train_seconds"`
	EvalSeconds  float64 `json:"eval_seconds"`
}

// Result is the report of a run.
type Result struct {
	Dataset         string        `json:"dataset"`
	Protocol        string        `json:"protocol"`
	Events          int           `json:"events"`
	Duplicates      int           `json:"duplicates"`
	Users           int           `json:"users"`
	Items           int           `json:"items"`
	TrainEvents     int           `json:"train_events"`
	TrainItems      int           `json:"train_items"`
	TestCases       int           `json:"test_cases"`
	SkippedUsers    int           `json:"skipped_users"`
	ShortCandidates int           `json:"short_candidates,omitempty"`
	Models          []ModelResult `json:"-"`
	IALS            ials.Config   `json:"-"`
	IALSSummary     *ials.Summary `json:"-"`
	// ValidationCurve is iALS's validation HR@K per epoch (ValidateEpochs).
	ValidationCurve []float64 `json:"validation_curve,omitempty"`
}

// Model returns the named model's result, nil if it did not run.
func (r *Result) Model(name string) *ModelResult {
	for i := range r.Models {
		if r.Models[i].Name == name {
			return &r.Models[i]
		}
	}
	return nil
}

// ErrNoCases is returned when the split leaves nothing to test.
var ErrNoCases = errors.New("offline: the split leaves no user to test (every user needs a positive to hold out and something else to learn from)")

// Run splits s by cfg's protocol, trains every model on the training part
// and measures it on the test part.
func Run(ctx context.Context, s *trainset.Set, cfg Config, log *slog.Logger) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.IALS.Seed, cfg.MF.Seed = cfg.Seed, cfg.Seed
	sp, err := makeSplit(s, nil, cfg.splitOptions())
	if err != nil {
		return nil, err
	}
	res := &Result{Protocol: cfg.Protocol, Events: s.Len(), Duplicates: s.Duplicates, Users: s.Users.Len(), Items: s.Items.Len(),
		TrainItems: sp.TrainItems, TestCases: len(sp.Cases), SkippedUsers: sp.SkippedUsers, ShortCandidates: sp.ShortCandidates, IALS: cfg.IALS}
	for _, ok := range sp.Train {
		if ok {
			res.TrainEvents++
		}
	}
	if len(sp.Cases) == 0 {
		return nil, ErrNoCases
	}
	log.Info("eval offline: split", "protocol", cfg.Protocol, "events", res.Events, "train_events", res.TrainEvents,
		"test_cases", res.TestCases, "skipped_users", res.SkippedUsers, "users", res.Users, "items", res.Items)
	for _, name := range ModelNames {
		if !cfg.runs(name) {
			continue
		}
		start := time.Now()
		var sc Scorer
		switch name {
		case Popularity:
			sc = trainPopularity(s, sp.Train)
		case OnlineMF:
			o, err := trainOnlineMF(ctx, s, sp.Train, cfg.MF)
			if err != nil {
				return nil, err
			}
			sc = o
		case IALS:
			if cfg.ValidateEpochs {
				curve, err := ValidationCurve(ctx, s, sp.Train, cfg, log)
				if err != nil {
					return nil, err
				}
				res.ValidationCurve = curve
				start = time.Now()
			}
			f, sum, err := trainIALS(ctx, s, sp.Train, cfg.IALS, nil, log)
			if err != nil {
				return nil, err
			}
			res.IALSSummary = &sum
			sc = factorScorer{f}
		}
		trained := time.Since(start)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t0 := time.Now()
		m := evaluate(sp, sc, cfg.K, cfg.RecallK, sp.TrainItems)
		mr := ModelResult{Name: name, Metrics: m, TrainSeconds: trained.Seconds(), EvalSeconds: time.Since(t0).Seconds()}
		res.Models = append(res.Models, mr)
		log.Info("eval offline: model", "model", name, "hr_at_10", round(m.HR, 4), "ndcg_at_10", round(m.NDCG, 4),
			"recall_at_20", round(m.Recall, 4), "coverage", round(m.Coverage, 4), "train_seconds", round(mr.TrainSeconds, 3))
	}
	return res, nil
}

// ValidationCurve carves a validation split from the events train allows
// (all when nil) with cfg's protocol, trains iALS on its training part and
// returns HR@K on it after every epoch: the convergence curve, measured
// on events the model did not learn from. It costs one extra training run.
func ValidationCurve(ctx context.Context, s *trainset.Set, train []bool, cfg Config, log *slog.Logger) ([]float64, error) {
	vs, err := makeSplit(s, train, cfg.splitOptions())
	if err != nil {
		return nil, err
	}
	if len(vs.Cases) == 0 {
		return nil, ErrNoCases
	}
	var curve []float64
	_, _, err = trainIALS(ctx, s, vs.Train, cfg.IALS, func(f *ials.Factors) float64 {
		hr := evaluate(vs, factorScorer{f}, cfg.K, cfg.RecallK, vs.TrainItems).HR
		curve = append(curve, hr)
		return hr
	}, log.With("run", "validation"))
	return curve, err
}
