package modelrec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
)

// RankerSchemaVersion is the version of the Ranker JSON layout.
const RankerSchemaVersion = 1

// MaxRankerFeatures bounds a Ranker record.
const MaxRankerFeatures = 256

// Dense ranker features the scorer knows how to compute for a (user, item)
// candidate. A Ranker record names the features its weights apply to; a
// scorer gives a feature it does not know the value 0 (and counts it), so a
// learner may add features before every scorer understands them.
const (
	// FeatureMFScore is the retrieval score: item bias + user·item.
	FeatureMFScore = "mf_score"
	// FeatureItemLogPopularity is ln(1 + the item's decayed popularity now).
	FeatureItemLogPopularity = "item_log_popularity"
	// FeatureItemCTR is the item's smoothed click-through rate,
	// (popularity + 1) / (impressions + 10), clipped to [0, 1].
	FeatureItemCTR = "item_ctr"
	// FeatureItemRecency is ln(1 + hours since the item's newest update).
	FeatureItemRecency = "item_recency"
	// FeatureUserLogActivity is ln(1 + the user's update counter).
	FeatureUserLogActivity = "user_log_activity"
)

// Ranker is the record value of <prefix>model.ranker: a logistic model
// P(positive) = σ(Bias + Σ Weights[i]·feature(Features[i])).
//
//	{"schema":1,"model_version":7,"ts":1763900000000,
//	 "features":["mf_score","item_ctr"],"weights":[0.8,2.1],"bias":-1.5}
type Ranker struct {
	Schema       int       `json:"schema"`
	ModelVersion uint64    `json:"model_version"`
	TsMillis     int64     `json:"ts"`
	Features     []string  `json:"features"`
	Weights      []float64 `json:"weights"`
	Bias         float64   `json:"bias"`
}

// Check reports the first inconsistency in r.
func (r *Ranker) Check() error {
	if r.Schema != RankerSchemaVersion {
		return fmt.Errorf("%w: ranker schema %d, want %d", ErrBadRecord, r.Schema, RankerSchemaVersion)
	}
	if len(r.Features) != len(r.Weights) {
		return fmt.Errorf("%w: ranker has %d features and %d weights", ErrBadRecord, len(r.Features), len(r.Weights))
	}
	if len(r.Features) > MaxRankerFeatures {
		return fmt.Errorf("%w: ranker has %d features, want ≤ %d", ErrBadRecord, len(r.Features), MaxRankerFeatures)
	}
	if math.IsNaN(r.Bias) || math.IsInf(r.Bias, 0) {
		return fmt.Errorf("%w: ranker bias %v", ErrBadRecord, r.Bias)
	}
	seen := make(map[string]bool, len(r.Features))
	for i, f := range r.Features {
		if f == "" || len(f) > 64 {
			return fmt.Errorf("%w: ranker feature %d: name length %d, want 1–64", ErrBadRecord, i, len(f))
		}
		if seen[f] {
			return fmt.Errorf("%w: ranker feature %q twice", ErrBadRecord, f)
		}
		seen[f] = true
		if w := r.Weights[i]; math.IsNaN(w) || math.IsInf(w, 0) {
			return fmt.Errorf("%w: ranker weight of %q is %v", ErrBadRecord, f, w)
		}
	}
	return nil
}

// EncodeRanker returns r's JSON after checking it.
func EncodeRanker(r *Ranker) ([]byte, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("modelrec: encode ranker: %w", err)
	}
	return b, nil
}

// DecodeRanker parses and checks a Ranker record. Unknown fields are
// rejected: a writer that needs more must bump the schema version.
func DecodeRanker(b []byte) (*Ranker, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r Ranker
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: ranker: %w", ErrBadRecord, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: ranker: trailing data", ErrBadRecord)
	}
	if err := r.Check(); err != nil {
		return nil, err
	}
	return &r, nil
}
