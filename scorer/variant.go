package scorer

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Serving policies of an experiment's variants (the part after ':' in
// --variants name:policy=weight).
const (
	// PolicyOnline is MF retrieval then ranker re-scoring (when the ranker
	// has a record): what a scorer without --variants serves.
	PolicyOnline = "online"
	// PolicyRetrieval serves the MF retrieval's top k, ranker off.
	PolicyRetrieval = "retrieval"
	// PolicyPopularity serves the decayed-popularity list the fallback
	// serves, to known and unknown users alike, marked "fallback": false:
	// it is a deliberate arm, not a failure (see doc.go).
	PolicyPopularity = "popularity"
	// PolicyFrozen is PolicyOnline over a copy of the model (user and item
	// vectors, ranker weights) taken when the scorer first caught up with
	// the model topics and re-taken every Config.FrozenRefresh: what a
	// model retrained in batches would serve. Item features and the
	// already-consumed exclusion stay live, as they would with a batch
	// model over a feature store; users who appeared after the copy get
	// the popularity fallback (reason "unknown_user").
	PolicyFrozen = "frozen"
)

// Limits of --variants.
const (
	MaxVariants      = 16
	maxVariantName   = 64
	unassignedMetric = "none" // variant label of requests rejected before assignment
)

// Variant is one arm of an experiment.
type Variant struct {
	// Name is reported in responses, served lists and metric labels.
	Name string
	// Policy is PolicyOnline, PolicyRetrieval, PolicyPopularity or
	// PolicyFrozen.
	Policy string
	// Weight is the variant's share of users; ParseVariants normalises
	// the weights of a list to sum to 1.
	Weight float64
}

// ParseVariants parses the --variants syntax: a comma-separated list of
// name[:policy]=weight. A name without a policy uses the policy of that
// name if it is one (online, retrieval, popularity, frozen) and online
// otherwise.
// Names are 1–64 bytes of letters, digits, '_', '-' and '.', unique, and
// not "none" (the metric label of requests rejected before a variant is
// assigned); weights are positive finite numbers, returned normalised.
// An empty s is no experiment: nil, nil.
func ParseVariants(s string) ([]Variant, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var (
		out   []Variant
		total float64
	)
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return nil, errors.New("empty entry (want name[:policy]=weight,...)")
		}
		lhs, w, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want name[:policy]=weight", entry)
		}
		name, policy, hasPolicy := strings.Cut(strings.TrimSpace(lhs), ":")
		name = strings.TrimSpace(name)
		if err := checkVariantName(name); err != nil {
			return nil, fmt.Errorf("%q: name %w", entry, err)
		}
		if hasPolicy {
			policy = strings.TrimSpace(policy)
			if !isPolicy(policy) {
				return nil, fmt.Errorf("%q: unknown policy %q (want %s, %s, %s or %s)", entry, policy, PolicyOnline, PolicyRetrieval, PolicyPopularity, PolicyFrozen)
			}
		} else if isPolicy(name) {
			policy = name
		} else {
			policy = PolicyOnline
		}
		weight, err := strconv.ParseFloat(strings.TrimSpace(w), 64)
		if err != nil || math.IsNaN(weight) || math.IsInf(weight, 0) || weight <= 0 {
			return nil, fmt.Errorf("%q: weight %q: want a positive number", entry, strings.TrimSpace(w))
		}
		for _, v := range out {
			if v.Name == name {
				return nil, fmt.Errorf("variant %q named twice", name)
			}
		}
		if len(out) == MaxVariants {
			return nil, fmt.Errorf("more than %d variants", MaxVariants)
		}
		out = append(out, Variant{Name: name, Policy: policy, Weight: weight})
		total += weight
	}
	if math.IsInf(total, 0) {
		return nil, errors.New("weights sum to infinity")
	}
	for i := range out {
		out[i].Weight /= total
	}
	return out, nil
}

func isPolicy(s string) bool {
	return s == PolicyOnline || s == PolicyRetrieval || s == PolicyPopularity || s == PolicyFrozen
}

func checkVariantName(name string) error {
	if name == "" || len(name) > maxVariantName {
		return fmt.Errorf("%q: want 1–%d bytes", name, maxVariantName)
	}
	if name == unassignedMetric {
		return fmt.Errorf("%q is reserved (metric label of requests rejected before assignment)", name)
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("%q: want letters, digits, '_', '-' or '.'", name)
		}
	}
	return nil
}

// UserPoint is where userID falls in [0, 1) for variant assignment: the
// 64-bit FNV-1a hash of the id's bytes, passed through MurmurHash3's
// fmix64 finaliser (FNV-1a alone barely moves its high bits when only the
// last byte changes, so "u1", "u2", ... would share a variant), whose top
// 53 bits are read as a fraction. It depends on nothing but the id: every
// scorer process, restart and version assigns a user alike, and anyone
// can recompute it (testdata/variants_reference.py does, for the tests).
func UserPoint(userID string) float64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(userID); i++ {
		h ^= uint64(userID[i])
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return float64(h>>11) / (1 << 53)
}

// Assign returns the index in vs (normalised weights, as ParseVariants
// returns them) of userID's variant: the variants' weights laid end to end
// over [0, 1) in list order, the one UserPoint(userID) falls in. A user
// keeps their variant as long as the list (names' order and weights) does;
// changing a weight moves only the users between the old and new bounds.
func Assign(vs []Variant, userID string) int {
	if len(vs) <= 1 {
		return 0
	}
	p := UserPoint(userID)
	upper := 0.0
	for i, v := range vs[:len(vs)-1] {
		upper += v.Weight
		if p < upper {
			return i
		}
	}
	return len(vs) - 1 // also where rounding leaves the sum just under 1
}
