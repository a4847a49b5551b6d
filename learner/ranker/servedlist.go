package ranker

import (
	"errors"
	"fmt"

	"github.com/eddyrec/eddy/internal/recs"
)

// A <prefix>recs record (scorer.ServedList, drift.ServedList: the same
// JSON, recs/v1) is read with internal/recs: the learner imports neither
// the scorer nor drift (DESIGN.md §2). Its checks cover what the joiner
// relies on: ids of 1–256 bytes of UTF-8, a ts, at most recs.MaxItems
// items with finite scores, at most 255 finite features per item with
// names of at most maxFeatureName bytes, sorted by name.

// servedListDecoder decodes served lists; one per reader (it interns
// feature names and is not safe for concurrent use).
type servedListDecoder = recs.Decoder

// policyPopularity is the policy of an experiment's popularity arm
// (scorer.PolicyPopularity): lists ranked by popularity, not by the
// ranker, and not marked as fallbacks.
const policyPopularity = "popularity"

var errBadList = errors.New("ranker: invalid served list")

// The joiner's limits are the record's (an Example encodes its feature
// count in a byte and names of at most maxFeatureName bytes).
var _ = [1]struct{}{}[recs.MaxFeatures-255+recs.MaxFeatureName-maxFeatureName]

// decodeServedList reads and checks one recs record value.
func decodeServedList(d *servedListDecoder, b []byte) (recs.List, error) {
	l, err := d.Decode(b)
	if err != nil {
		return l, fmt.Errorf("%w: %v", errBadList, err)
	}
	return l, nil
}
