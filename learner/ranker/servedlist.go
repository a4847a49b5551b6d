package ranker

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// servedList is the part of a <prefix>recs record (scorer.ServedList,
// drift.ServedList: the same JSON) the joiner needs. The learner imports
// neither package (DESIGN.md §2), so it reads the documented JSON itself.
type servedList struct {
	RequestID string       `json:"request_id"`
	UserID    string       `json:"user_id"`
	Policy    string       `json:"policy,omitempty"` // an experiment's serving policy
	Fallback  bool         `json:"fallback"`
	TsMillis  int64        `json:"ts"`
	Items     []servedItem `json:"items"`
}

type servedItem struct {
	ItemID   string             `json:"item_id"`
	Position int                `json:"position"`
	Score    float64            `json:"score"`
	Features map[string]float64 `json:"features,omitempty"`
}

// policyPopularity is the policy of an experiment's popularity arm
// (scorer.PolicyPopularity): lists ranked by popularity, not by the
// ranker, and not marked as fallbacks.
const policyPopularity = "popularity"

// Limits of a served list the joiner accepts (the scorer's k is at most a
// few hundred).
const (
	maxListItems = 1000
	maxIDBytes   = 256
)

var errBadList = errors.New("ranker: invalid served list")

// decodeServedList reads and checks one recs record value.
func decodeServedList(b []byte) (servedList, error) {
	var l servedList
	if err := json.Unmarshal(b, &l); err != nil {
		return l, fmt.Errorf("%w: %v", errBadList, err)
	}
	switch {
	case !validID(l.RequestID):
		return l, fmt.Errorf("%w: request_id", errBadList)
	case !validID(l.UserID):
		return l, fmt.Errorf("%w: user_id", errBadList)
	case l.TsMillis <= 0:
		return l, fmt.Errorf("%w: ts", errBadList)
	case len(l.Items) > maxListItems:
		return l, fmt.Errorf("%w: %d items", errBadList, len(l.Items))
	}
	for i := range l.Items {
		it := &l.Items[i]
		if !validID(it.ItemID) || math.IsNaN(it.Score) || math.IsInf(it.Score, 0) {
			return l, fmt.Errorf("%w: items[%d]", errBadList, i)
		}
		if len(it.Features) > 255 {
			return l, fmt.Errorf("%w: items[%d]: %d features", errBadList, i, len(it.Features))
		}
		for k, v := range it.Features {
			if k == "" || len(k) > maxFeatureName || math.IsNaN(v) || math.IsInf(v, 0) {
				return l, fmt.Errorf("%w: items[%d].features[%q]", errBadList, i, k)
			}
		}
	}
	return l, nil
}

func validID(s string) bool { return s != "" && len(s) <= maxIDBytes && utf8.ValidString(s) }
