package scorer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/eddyrec/eddy/learner/modelrec"
)

// SyntheticSpec describes a synthetic model for benchmarks and tests.
type SyntheticSpec struct {
	Items, Users, Dim int
	Seen              int // seen items per user
	Seed              uint64
	Ranker            bool
}

// LoadSynthetic fills st with random item and user vectors (and a ranker),
// going through the same record encoding and Apply path as Kafka records.
// Item ids are "i<n>", user ids "u<n>".
func LoadSynthetic(st *State, spec SyntheticSpec) error {
	if spec.Items < 1 || spec.Users < 1 || spec.Dim < 1 || spec.Dim > modelrec.MaxDim {
		return fmt.Errorf("scorer: synthetic spec %+v: want items, users ≥ 1 and dim 1–%d", spec, modelrec.MaxDim)
	}
	rng := rand.New(rand.NewPCG(spec.Seed, 0x5eed))
	now := time.Now().UnixMilli()
	scale := 1 / math.Sqrt(float64(spec.Dim))
	vec := func(v []float32) {
		for d := range v {
			v[d] = float32(rng.NormFloat64() * scale)
		}
	}
	const batch = 4096
	recs := make([]Record, 0, batch)
	v := modelrec.Vector{Kind: modelrec.KindItem, ModelVersion: 1, Vec: make([]float32, spec.Dim)}
	flush := func(apply func([]Record) (int, error)) error {
		if _, err := apply(recs); err != nil {
			return err
		}
		recs = recs[:0]
		return nil
	}
	for i := range spec.Items {
		vec(v.Vec)
		v.Updates, v.TsMillis = uint64(i%100), now
		v.Bias = float32(rng.NormFloat64() * 0.1)
		v.Popularity = float32(1000 / float64(i+1)) // Zipf-like
		v.Impressions = v.Popularity * 10
		b, err := modelrec.AppendVector(nil, &v)
		if err != nil {
			return err
		}
		recs = append(recs, Record{Key: []byte("i" + strconv.Itoa(i)), Value: b})
		if len(recs) == batch {
			if err := flush(st.ApplyItems); err != nil {
				return err
			}
		}
	}
	if err := flush(st.ApplyItems); err != nil {
		return err
	}
	v.Kind, v.Bias, v.Popularity, v.Impressions = modelrec.KindUser, 0, 0, 0
	for u := range spec.Users {
		vec(v.Vec)
		v.Seen = v.Seen[:0]
		for range spec.Seen {
			v.Seen = append(v.Seen, "i"+strconv.Itoa(rng.IntN(spec.Items)))
		}
		v.Updates, v.TsMillis = uint64(u%50), now
		b, err := modelrec.AppendVector(nil, &v)
		if err != nil {
			return err
		}
		recs = append(recs, Record{Key: []byte("u" + strconv.Itoa(u)), Value: b})
		if len(recs) == batch {
			if err := flush(st.ApplyUsers); err != nil {
				return err
			}
		}
	}
	if err := flush(st.ApplyUsers); err != nil {
		return err
	}
	if spec.Ranker {
		b, err := modelrec.EncodeRanker(&modelrec.Ranker{Schema: modelrec.RankerSchemaVersion, ModelVersion: 1, TsMillis: now,
			Features: []string{modelrec.FeatureMFScore, modelrec.FeatureItemLogPopularity, modelrec.FeatureItemCTR, modelrec.FeatureItemRecency, modelrec.FeatureUserLogActivity},
			Weights:  []float64{2, 0.3, 1.5, -0.1, 0.05}, Bias: -1})
		if err != nil {
			return err
		}
		return st.ApplyRanker(b)
	}
	return nil
}
