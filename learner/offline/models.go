package offline

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/ials"
	"github.com/eddyrec/eddy/learner/trainset"
)

// The models Run compares.
const (
	IALS       = "ials"
	OnlineMF   = "online_mf"
	Popularity = "popularity"
)

// ModelNames lists them in report order.
var ModelNames = []string{IALS, OnlineMF, Popularity}

// popularity scores every item by its number of positive training events.
type popularity struct{ counts []float32 }

func trainPopularity(s *trainset.Set, train []bool) *popularity {
	p := &popularity{counts: make([]float32, s.Items.Len())}
	for t, ok := range train {
		if ok && s.Positive[t] {
			p.counts[s.Item[t]]++
		}
	}
	return p
}

func (p *popularity) Scores(_ int32, dst []float32) []float32 {
	return append(dst[:0], p.counts...)
}

// onlineMF is the streaming learner replayed once over the training events
// in time order, exactly as `eddy eval prequential` and the stages run it.
type onlineMF struct {
	m *learner.Model
	n int
}

func trainOnlineMF(ctx context.Context, s *trainset.Set, train []bool, cfg learner.MFConfig) (*onlineMF, error) {
	m, err := learner.NewModel(cfg, s.Users, s.Items)
	if err != nil {
		return nil, err
	}
	for t, ok := range train {
		if t%65536 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if ok {
			m.Learn(s.User[t], s.Item[t], s.Label[t], s.Weight[t])
		}
	}
	return &onlineMF{m: m, n: s.Items.Len()}, nil
}

func (o *onlineMF) Scores(u int32, dst []float32) []float32 { return o.m.Scores(u, o.n, dst) }

// factorScorer scores with trained iALS factors.
type factorScorer struct{ f *ials.Factors }

func (f factorScorer) Scores(u int32, dst []float32) []float32 { return f.f.Scores(int(u), dst) }

// trainIALS trains on the split's training events, logging every epoch;
// validate, when set, measures each epoch's factors.
func trainIALS(ctx context.Context, s *trainset.Set, train []bool, cfg ials.Config, validate func(*ials.Factors) float64, log *slog.Logger) (*ials.Factors, ials.Summary, error) {
	mat, err := s.Matrix(func(t int) bool { return train[t] })
	if err != nil {
		return nil, ials.Summary{}, err
	}
	opt := ials.Options{Validate: validate, Progress: func(e ials.EpochStats) {
		attrs := []any{"epoch", e.Epoch, "of", e.Epochs, "loss", round(e.Loss, 6), "seconds", round(e.Seconds, 3)}
		if !math.IsNaN(e.Validation) {
			attrs = append(attrs, "validation_hr_at_10", round(e.Validation, 4))
		}
		log.Info("ials: epoch", attrs...)
	}}
	start := time.Now()
	f, sum, err := ials.Train(ctx, mat, cfg, opt)
	if err != nil {
		return nil, sum, fmt.Errorf("ials: %w", err)
	}
	log.Info("ials: trained", "users", sum.Users, "items", sum.Items, "pairs", sum.Pairs, "epochs", sum.Epochs,
		"seconds", round(time.Since(start).Seconds(), 3), "kernel", sum.Kernel, "threads", sum.Threads,
		"matrix_mib", round(float64(sum.MatrixBytes)/(1<<20), 1), "factors_mib", round(float64(sum.FactorBytes)/(1<<20), 1))
	return f, sum, nil
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
