package offline

import (
	"math"
	"slices"
	"sort"

	"github.com/eddyrec/eddy/learner"
)

// Scorer scores every item for a user: dst[i] is item i's score (reusing
// dst's storage). Items it cannot score get -Inf.
type Scorer interface {
	Scores(u int32, dst []float32) []float32
}

// Metrics are a model's quality on a split.
type Metrics struct {
	HR       float64 `json:"hr_at_10"`
	NDCG     float64 `json:"ndcg_at_10"`
	Recall   float64 `json:"recall_at_20"`
	Coverage float64 `json:"coverage"`
	// PopularityBias is the average recommendation popularity (ARP,
	// Abdollahpouri et al. 2019) as a share of the most popular item's:
	// the mean, over the top-K lists, of their items' positive training
	// events divided by the largest such count. 1 means every list is the
	// single most popular item; popularity itself scores near the top.
	PopularityBias float64 `json:"popularity_bias"`
	Cases          int     `json:"cases"`
}

// Evaluate measures sc on sp's cases: HR and NDCG at k, recall at
// recallK, coverage and popularity bias of the top-k lists.
func Evaluate(sp *Split, sc Scorer, k, recallK int) Metrics {
	return evaluate(sp, sc, k, recallK, sp.TrainItems)
}

// evaluate ranks every case with sc: for the full-ranking protocols the
// whole catalogue minus the user's training items, for the sampled one the
// case's candidates. A target's position is the number of other eligible
// items scoring at least as high (ties count against it, so a model that
// scores everything alike earns nothing) plus the targets scoring higher;
// a target scored -Inf or NaN is a miss. Coverage is the share of the
// items (the number with training data) that some top-K list holds.
func evaluate(sp *Split, sc Scorer, k, recallK, items int) Metrics {
	var m Metrics
	var scores []float32
	list := make([]learner.Scored, 0, k)
	recommended := map[int32]bool{}
	ninf := float32(math.Inf(-1))
	var cand []float32
	var maxPop float32
	for _, p := range sp.popularity {
		maxPop = max(maxPop, p)
	}
	for _, c := range sp.Cases {
		scores = sc.Scores(c.User, scores)
		var pos []int
		if c.Candidates != nil {
			cand = cand[:0]
			for _, i := range c.Candidates[1:] {
				cand = append(cand, scores[i])
			}
			pos = positions([]float32{scores[c.Targets[0]]}, cand)
			list = list[:0]
			for _, i := range c.Candidates {
				list = append(list, learner.Scored{Item: i, Score: scores[i]})
			}
			slices.SortStableFunc(list, func(a, b learner.Scored) int {
				if a.Score > b.Score {
					return -1
				} else if a.Score < b.Score {
					return 1
				}
				return 0
			})
			list = list[:min(k, len(list))]
		} else {
			for _, i := range sp.Seen[c.User] {
				scores[i] = ninf
			}
			tscores := make([]float32, len(c.Targets))
			for j, i := range c.Targets {
				tscores[j] = scores[i]
				scores[i] = ninf // the others are the targets' competitors
			}
			pos = positions(tscores, scores)
			for j, i := range c.Targets {
				scores[i] = tscores[j]
			}
			list = learner.TopK(scores, k, nil, list)
		}
		var listPop float64
		for _, s := range list {
			recommended[s.Item] = true
			if maxPop > 0 {
				listPop += float64(sp.popularity[s.Item] / maxPop)
			}
		}
		if len(list) > 0 {
			m.PopularityBias += listPop / float64(len(list))
		}
		var dcg, hits10, hits20 float64
		for _, p := range pos {
			if p < k {
				hits10++
				dcg += 1 / math.Log2(float64(p)+2)
			}
			if p < recallK {
				hits20++
			}
		}
		var idcg float64
		for p := range min(len(c.Targets), k) {
			idcg += 1 / math.Log2(float64(p)+2)
		}
		if hits10 > 0 {
			m.HR++
		}
		m.NDCG += dcg / idcg
		m.Recall += hits20 / float64(len(c.Targets))
		m.Cases++
	}
	if m.Cases > 0 {
		n := float64(m.Cases)
		m.HR, m.NDCG, m.Recall, m.PopularityBias = m.HR/n, m.NDCG/n, m.Recall/n, m.PopularityBias/n
	}
	if items > 0 {
		m.Coverage = float64(len(recommended)) / float64(items)
	}
	return m
}

// positions returns the 0-based position of each target score among the
// competitors (the scores of the other eligible items; -Inf ones are not
// eligible). The cost is one pass over the competitors with a binary
// search among the targets.
func positions(targets []float32, competitors []float32) []int {
	m := len(targets)
	type ts struct {
		s float32
		j int
	}
	asc := make([]ts, m)
	for j, s := range targets {
		asc[j] = ts{s, j}
	}
	sort.SliceStable(asc, func(a, b int) bool { return asc[a].s < asc[b].s })
	add := make([]int, m+1)
	for _, v := range competitors {
		if v < -3.4e38 || v != v {
			continue
		}
		// Targets with a score ≤ v are beaten (or tied) by this item: they
		// are asc[0:n].
		n := sort.Search(m, func(j int) bool { return asc[j].s > v })
		if n > 0 {
			add[n-1]++
		}
	}
	pos := make([]int, m)
	above := 0
	for j := m - 1; j >= 0; j-- {
		above += add[j]
		s := asc[j].s
		if s < -3.4e38 || s != s {
			pos[asc[j].j] = math.MaxInt32
			continue
		}
		// Targets above this one in asc order outrank it (ties among
		// targets are broken by order: they cannot both be first).
		pos[asc[j].j] = above + (m - 1 - j)
	}
	return pos
}
