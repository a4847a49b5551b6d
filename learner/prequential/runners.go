package prequential

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/learner"
)

// decayedCounts is an exponentially decayed counter per item, decaying per
// observation rather than per second so that replays do not depend on the
// dataset's clock. Instead of decaying every count at every step it grows
// the increment and rescales rarely, so an observation costs O(1).
type decayedCounts struct {
	score  []float32
	inc    float32
	growth float32
}

func newDecayedCounts(halfLife float64) *decayedCounts {
	return &decayedCounts{inc: 1, growth: float32(math.Exp2(1 / halfLife))}
}

func (d *decayedCounts) add(i int32, w float32) {
	for int(i) >= len(d.score) {
		d.score = append(d.score, 0)
	}
	d.score[i] += w * d.inc
	d.inc *= d.growth
	if d.inc > 1e30 {
		for j := range d.score {
			d.score[j] /= d.inc
		}
		d.inc = 1
	}
}

// value returns item i's decayed count in units of one recent observation.
func (d *decayedCounts) value(i int32) float32 {
	if int(i) >= len(d.score) {
		return 0
	}
	return d.score[i] / d.inc
}

// scores writes the counts of items [0, n) into dst.
func (d *decayedCounts) scores(n int, dst []float32) []float32 {
	dst = slices.Grow(dst[:0], n)[:n]
	k := copy(dst, d.score)
	clear(dst[k:])
	return dst
}

// popRunner is the decayed-popularity baseline: recommend the items with
// the most recent positives the user has not consumed.
type popRunner struct{}

func (popRunner) run(ctx context.Context, s *stream, cfg *Config, log *slog.Logger) ([]*tally, error) {
	ta := newTally(Popularity)
	pop := newDecayedCounts(cfg.PopHalfLife)
	seen := make([]learner.ItemSet, s.users.Len())
	var scores []float32
	list := make([]learner.Scored, 0, cfg.K)
	start := time.Now()
	for t := range s.events {
		if err := progress(ctx, log, cfg, Popularity, t, len(s.events)); err != nil {
			return nil, err
		}
		u, i := s.user[t], s.item[t]
		if s.evaluate[t] {
			scores = pop.scores(int(s.seen[t]), scores)
			list = learner.TopK(scores, cfg.K, seen[u], list)
			ta.record(list, i, cfg.Window)
		}
		if s.positive[t] {
			pop.add(i, 1)
		}
		if s.consumes[t] {
			seen[u].Add(i)
		}
	}
	ta.duration = time.Since(start)
	return []*tally{ta}, nil
}

// mfRunner replays the online MF; with ranked it also re-ranks the MF's
// candidates with an FTRL ranker, and with frozen it stops learning after
// Config.FrozenFrac of the stream.
type mfRunner struct {
	ranked bool
	frozen bool
}

func (r *mfRunner) run(ctx context.Context, s *stream, cfg *Config, log *slog.Logger) ([]*tally, error) {
	name := OnlineMF
	if r.frozen {
		name = FrozenMF
	}
	m, err := learner.NewModel(cfg.MF, s.users, s.items)
	if err != nil {
		return nil, err
	}
	ta := newTally(name)
	out := []*tally{ta}
	var rk *ranker
	var rta *tally
	if r.ranked {
		if rk, err = newRanker(cfg, s); err != nil {
			return nil, err
		}
		rta = newTally(OnlineMFRanker)
		out = append(out, rta)
	}
	seen := make([]learner.ItemSet, s.users.Len())
	split := frozenSplit(cfg, len(s.events))
	n := cfg.K
	if r.ranked {
		n = cfg.Candidates
	}
	var scores []float32
	list := make([]learner.Scored, 0, n)
	var rankTime time.Duration
	start := time.Now()
	for t := range s.events {
		if err := progress(ctx, log, cfg, name, t, len(s.events)); err != nil {
			return nil, err
		}
		if r.frozen && t == split && !m.Frozen() {
			for range cfg.FrozenEpochs {
				for e := range split {
					m.LearnEvent(s.user[e], s.item[e], &s.events[e])
				}
			}
			m.Freeze()
			log.Info("prequential: frozen", "model", name, "after_events", split, "extra_epochs", cfg.FrozenEpochs)
		}
		u, i := s.user[t], s.item[t]
		ev := &s.events[t]
		if s.evaluate[t] {
			scores = m.Scores(u, int(s.seen[t]), scores)
			list = learner.TopK(scores, n, seen[u], list)
			ta.record(list[:min(cfg.K, len(list))], i, cfg.Window)
			if r.ranked {
				t0 := time.Now()
				rta.record(rk.rerank(t, u, list, cfg.K), i, cfg.Window)
				rk.learn(t, u, i, list)
				rankTime += time.Since(t0)
			}
		}
		m.LearnEvent(u, i, ev)
		if r.ranked {
			t0 := time.Now()
			rk.observe(t, u, i, ev, s.positive[t])
			rankTime += time.Since(t0)
		}
		if s.consumes[t] {
			seen[u].Add(i)
		}
	}
	total := time.Since(start)
	ta.duration = total - rankTime
	if rta != nil {
		rta.duration = total
	}
	log.Info("prequential: done", "model", name, "seconds", total.Seconds(), "state", m.String())
	return out, nil
}

// Dense features of the ranker, in FTRL index order.
const (
	fBias = iota
	fMF
	fMFHistory
	fPop
	fPopCold
	fItemRate
	fTypeMix
	fRecency
	fAge
	fRank
	fWatch
	numDense
)

// ranker is the online FTRL re-ranker together with the streaming features
// it reads: decayed popularity, smoothed positive rate ("CTR"), user type
// mix, recency and age of items, mean watch ratio, and the MF score and
// rank of each candidate.
type ranker struct {
	ftrl      *learner.FTRL
	negatives int
	pop       *decayedCounts
	itemPos   []float32
	itemN     []float32
	itemWatch []float32
	itemWN    []float32
	firstSeen []int32
	lastSeen  []int32
	userPos   []float32
	userN     []float32
	feats     []learner.Feature
	ranked    []learner.Scored
	rng       uint64
}

func newRanker(cfg *Config, s *stream) (*ranker, error) {
	fc := cfg.Ranker
	fc.Dense = numDense
	f, err := learner.NewFTRL(fc)
	if err != nil {
		return nil, fmt.Errorf("prequential: ranker: %w", err)
	}
	ni, nu := s.items.Len(), s.users.Len()
	rk := &ranker{
		ftrl: f, negatives: cfg.RankerNegatives, pop: newDecayedCounts(cfg.PopHalfLife),
		itemPos: make([]float32, ni), itemN: make([]float32, ni),
		itemWatch: make([]float32, ni), itemWN: make([]float32, ni),
		firstSeen: make([]int32, ni), lastSeen: make([]int32, ni),
		userPos: make([]float32, nu), userN: make([]float32, nu),
		feats:  make([]learner.Feature, 0, numDense+8),
		ranked: make([]learner.Scored, 0, cfg.Candidates),
		rng:    cfg.MF.Seed ^ 0x72616e6b,
	}
	for i := range rk.firstSeen {
		rk.firstSeen[i] = -1
	}
	return rk, nil
}

// features fills rk.feats for user u and candidate it at MF rank pos with
// MF score mf, as of event t (before it is learnt).
func (rk *ranker) features(t int, u, it int32, pos int, mf float32) []learner.Feature {
	hist := float32(math.Log1p(float64(rk.userN[u]))) / 5
	lp := float32(math.Log1p(float64(rk.pop.value(it))))
	rate := (rk.itemPos[it] + 1) / (rk.itemN[it] + 2)
	mix := (rk.userPos[u] + 1) / (rk.userN[u] + 2)
	var rec, age float32 = 1, 0
	if rk.firstSeen[it] >= 0 {
		rec = float32(math.Log1p(float64(t-int(rk.lastSeen[it])))) / 12
		age = float32(math.Log1p(float64(t-int(rk.firstSeen[it])))) / 12
	}
	var watch float32
	if rk.itemWN[it] > 0 {
		watch = rk.itemWatch[it] / rk.itemWN[it]
	}
	x := append(rk.feats[:0],
		learner.Feature{Index: fBias, Value: 1},
		learner.Feature{Index: fMF, Value: float64(mf)},
		learner.Feature{Index: fMFHistory, Value: float64(mf * hist)},
		learner.Feature{Index: fPop, Value: float64(lp)},
		learner.Feature{Index: fPopCold, Value: float64(lp / (1 + hist))},
		learner.Feature{Index: fItemRate, Value: float64(rate)},
		learner.Feature{Index: fTypeMix, Value: float64(mix * rate)},
		learner.Feature{Index: fRecency, Value: float64(rec)},
		learner.Feature{Index: fAge, Value: float64(age)},
		learner.Feature{Index: fRank, Value: math.Log1p(float64(pos))},
		learner.Feature{Index: fWatch, Value: float64(watch)},
	)
	rk.feats = x
	return x
}

// rerank orders the MF candidates by the ranker's probability and returns
// the best k.
func (rk *ranker) rerank(t int, u int32, cands []learner.Scored, k int) []learner.Scored {
	out := rk.ranked[:0]
	for pos, c := range cands {
		p := rk.ftrl.Margin(rk.features(t, u, c.Item, pos, c.Score))
		out = append(out, learner.Scored{Item: c.Item, Score: float32(p)})
	}
	slices.SortStableFunc(out, func(a, b learner.Scored) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return 0
	})
	rk.ranked = out
	return out[:min(k, len(out))]
}

// learn trains the ranker on positive event t when the consumed item is
// among the candidates: it is the positive, and RankerNegatives candidates
// drawn uniformly from the others are negatives. Drawing negatives from the
// whole candidate list, not just its head, keeps the rank feature honest:
// negatives taken only from the top would teach the ranker that a high MF
// rank predicts a miss. A target outside the candidates is left to the MF,
// because the ranker only ever orders candidates.
func (rk *ranker) learn(t int, u, target int32, cands []learner.Scored) {
	pos := -1
	for p, c := range cands {
		if c.Item == target {
			pos = p
			break
		}
	}
	if pos < 0 || len(cands) < 2 {
		return
	}
	rk.ftrl.Update(rk.features(t, u, target, pos, cands[pos].Score), 1)
	for range rk.negatives {
		rk.rng += 0x9E3779B97F4A7C15
		p := int((splitmix(rk.rng) >> 32) * uint64(len(cands)-1) >> 32)
		if p >= pos {
			p++ // skip the target
		}
		rk.ftrl.Update(rk.features(t, u, cands[p].Item, p, cands[p].Score), 0)
	}
}

// splitmix is the SplitMix64 finaliser (a deterministic, allocation-free
// draw for negative sampling).
func splitmix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// observe updates the streaming features with event t.
func (rk *ranker) observe(t int, u, i int32, ev *event.Event, positive bool) {
	if r := ev.WatchRatio(); r >= 0 {
		rk.itemWatch[i] += float32(r)
		rk.itemWN[i]++
	}
	rk.itemN[i]++
	rk.userN[u]++
	if positive {
		rk.itemPos[i]++
		rk.userPos[u]++
		rk.pop.add(i, 1)
	}
	if rk.firstSeen[i] < 0 {
		rk.firstSeen[i] = int32(t)
	}
	rk.lastSeen[i] = int32(t)
}
