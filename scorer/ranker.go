package scorer

import (
	"math"

	"github.com/eddyrec/eddy/learner/modelrec"
)

// Ranker re-scores retrieval candidates from dense features. Features
// names the inputs in the order Score expects them; the scorer computes
// the features it knows (modelrec.Feature*) and passes 0 for others.
// Implementations must be safe for concurrent use and must not allocate in
// Score or Contributions.
type Ranker interface {
	Features() []string
	// Score returns the ranking score of one candidate (higher is better).
	Score(features []float32) float64
	// Contributions writes each feature's additive part of the score's
	// margin into dst (len(Features())) and returns the intercept.
	Contributions(features []float32, dst []float64) (intercept float64)
}

// LogisticRanker is σ(Bias + Σ wᵢ·xᵢ) over the named features of a
// modelrec.Ranker record (the FTRL learner's dense weights).
type LogisticRanker struct {
	names   []string
	weights []float64
	bias    float64
}

// NewLogisticRanker wraps a checked ranker record.
func NewLogisticRanker(r *modelrec.Ranker) *LogisticRanker {
	return &LogisticRanker{names: r.Features, weights: r.Weights, bias: r.Bias}
}

// Features returns the feature names.
func (l *LogisticRanker) Features() []string { return l.names }

// Score returns the predicted probability of a positive.
func (l *LogisticRanker) Score(x []float32) float64 {
	m := l.bias
	for i, w := range l.weights {
		m += w * float64(x[i])
	}
	return 1 / (1 + math.Exp(-m))
}

// Contributions returns wᵢ·xᵢ per feature and the bias.
func (l *LogisticRanker) Contributions(x []float32, dst []float64) float64 {
	for i, w := range l.weights {
		dst[i] = w * float64(x[i])
	}
	return l.bias
}
