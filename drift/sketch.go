package drift

import (
	"fmt"
	"math"
	"slices"
	"sync"
)

// Sketch parameters. See doc.go for the error bound of each k.
const (
	// DefaultK is the KLL accuracy parameter used when none is given:
	// about 1.65% normalised rank error (99% confidence) in about 600
	// retained values (≈5 KB).
	DefaultK = 200
	// MinK and MaxK bound the accuracy parameter. Below 8 the sketch
	// degenerates; above 65,535 it no longer fits the encoding (and a
	// sketch that large should be exact data instead).
	MinK = 8
	MaxK = 1<<16 - 1

	// minLevelCap is the smallest capacity of a level (KLL's m).
	minLevelCap = 8
	// maxFewDistinct is how many distinct values a Sketch counts exactly.
	// Evidently treats a numeric column with at most 5 distinct values as
	// categorical; counting them lets chi-square and the Z-test run on
	// numeric signals such as 0/1 flags.
	maxFewDistinct = 5
	// maxLevels bounds the number of levels so that every weight 2^h and
	// every weight sum fits in a uint64 (a sketch of 2^62 values).
	maxLevels = 62
)

// Sketch summarises a stream of float64 values in bounded memory: a KLL
// quantile sketch (Karnin, Lang, Liberty 2016) for ranks, quantiles and CDFs,
// plus exact count, missing count, min, max, mean and variance, and exact
// counts of the first few distinct values.
//
// Insert does not allocate in steady state. Sketches with the same k merge
// losslessly with respect to the KLL error guarantee. A Sketch is not safe
// for concurrent mutation; queries (Quantile, CDF, Rank and the distance
// functions) may run concurrently with each other but not with Insert or
// Merge. The zero value is an empty sketch with k = DefaultK.
type Sketch struct {
	k        int
	levels   [][]float64 // levels[h] holds values of weight 2^h; level 0 unsorted
	caps     []int       // capacity of each level for the current height
	totalCap int         // sum of caps; compaction keeps size below it
	size     int         // retained values across levels

	n       int64 // finite values inserted (= sum of weights)
	missing int64 // NaN and ±Inf values seen and not inserted
	min     float64
	max     float64
	mean    float64 // Welford running mean
	m2      float64 // Welford sum of squared deviations
	rng     uint64  // xorshift64 state for the compaction coin

	few     [maxFewDistinct]float64 // first distinct values, in first-seen order
	fewN    [maxFewDistinct]int64   // their exact counts
	nFew    int
	manyVal bool // more than maxFewDistinct distinct values seen

	mu     sync.Mutex // guards building the cached view
	view   weightedView
	viewOK bool
	pairs  []weighted // scratch for building the view
}

// rngSeed seeds the compaction coin. A fixed seed makes sketches (and so
// reports and golden tests) reproducible for a given input order.
const rngSeed = 0x9E3779B97F4A7C15

// NewSketch returns an empty sketch with accuracy parameter k (DefaultK when
// k is 0). It returns an error when k is outside [MinK, MaxK].
func NewSketch(k int) (*Sketch, error) {
	if k == 0 {
		k = DefaultK
	}
	if k < MinK || k > MaxK {
		return nil, fmt.Errorf("drift: sketch k=%d outside [%d, %d]", k, MinK, MaxK)
	}
	s := &Sketch{}
	s.init(k)
	return s, nil
}

func (s *Sketch) init(k int) {
	s.k = k
	s.rng = rngSeed
	s.levels = [][]float64{make([]float64, 0, k)}
	s.recomputeCaps()
}

// levelCap returns KLL's capacity for a level at the given depth below the
// top: max(m, ceil(k·(2/3)^depth)), computed in integers so that every
// platform agrees.
func levelCap(k, depth int) int {
	if depth >= 30 { // k·(2/3)^30 < 1 for every k ≤ MaxK
		return minLevelCap
	}
	num := uint64(k) << depth
	den := uint64(1)
	for range depth {
		den *= 3
	}
	c := int((num + den - 1) / den)
	return max(c, minLevelCap)
}

func (s *Sketch) recomputeCaps() {
	h := len(s.levels)
	s.caps = s.caps[:0]
	s.totalCap = 0
	for i := range h {
		c := levelCap(s.k, h-1-i)
		s.caps = append(s.caps, c)
		s.totalCap += c
	}
}

// Insert adds x. NaN and ±Inf carry no position and are counted by Missing
// instead.
func (s *Sketch) Insert(x float64) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		s.missing++
		return
	}
	if s.k == 0 {
		s.init(DefaultK)
	}
	s.viewOK = false
	s.n++
	if s.n == 1 {
		s.min, s.max = x, x
	} else if x < s.min {
		s.min = x
	} else if x > s.max {
		s.max = x
	}
	d := x - s.mean
	s.mean += d / float64(s.n)
	s.m2 += d * (x - s.mean)
	if !s.manyVal {
		s.noteFew(x, 1)
	}
	s.levels[0] = append(s.levels[0], x)
	s.size++
	if s.size >= s.totalCap {
		s.compress()
	}
}

func (s *Sketch) noteFew(x float64, c int64) {
	for i := range s.nFew {
		if s.few[i] == x {
			s.fewN[i] += c
			return
		}
	}
	if s.nFew < maxFewDistinct {
		s.few[s.nFew] = x
		s.fewN[s.nFew] = c
		s.nFew++
		return
	}
	s.manyVal = true
}

// compress compacts levels until the retained values fit the total
// capacity. Each compaction halves the lowest level that is at or over its
// own capacity, which exists whenever the total is over.
func (s *Sketch) compress() {
	for s.size >= s.totalCap {
		h := 0
		for h < len(s.levels)-1 && len(s.levels[h]) < s.caps[h] {
			h++
		}
		if h == len(s.levels)-1 {
			if len(s.levels) >= maxLevels {
				return // unreachable below 2^62 values; keep the data rather than overflow weights
			}
			s.levels = append(s.levels, nil)
			s.recomputeCaps()
		}
		s.compactLevel(h)
	}
}

// compactLevel sorts level h, promotes every other value (odd or even
// positions, by a fair coin) to level h+1 with double weight, and keeps one
// value behind when the level has an odd length. Total weight is conserved.
func (s *Sketch) compactLevel(h int) {
	lvl := s.levels[h]
	var leftover float64
	odd := len(lvl)%2 == 1
	if odd {
		leftover = lvl[len(lvl)-1]
		lvl = lvl[:len(lvl)-1]
	}
	sortFinite(lvl)
	up := s.levels[h+1]
	for i := s.coin(); i < len(lvl); i += 2 {
		up = append(up, lvl[i])
	}
	s.levels[h+1] = up
	s.size -= len(lvl) / 2
	s.levels[h] = lvl[:0]
	if odd {
		s.levels[h] = append(s.levels[h], leftover)
	}
}

// sortFinite sorts values known not to be NaN. Most compactions are of a
// few dozen values, where an insertion sort with a plain < beats
// slices.Sort (whose comparisons also order NaNs).
func sortFinite(x []float64) {
	if len(x) > 32 {
		slices.Sort(x)
		return
	}
	for i := 1; i < len(x); i++ {
		v := x[i]
		j := i
		for j > 0 && x[j-1] > v {
			x[j] = x[j-1]
			j--
		}
		x[j] = v
	}
}

// coin returns 0 or 1 from a xorshift64 generator.
func (s *Sketch) coin() int {
	x := s.rng
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	s.rng = x
	return int(x >> 63)
}

// Merge adds every value summarised by o into s. Both sketches must have
// the same k (an empty zero-value s adopts o's k). o is not modified.
func (s *Sketch) Merge(o *Sketch) error {
	if o == nil {
		return nil
	}
	if o.n == 0 {
		s.missing += o.missing
		return nil
	}
	if s.k == 0 {
		s.init(o.k)
	}
	if s.k != o.k {
		return fmt.Errorf("drift: merge sketch k=%d into k=%d: %w", o.k, s.k, ErrIncompatible)
	}
	if o == s {
		o = s.Clone()
	}
	s.viewOK = false
	s.missing += o.missing
	if s.n == 0 {
		s.min, s.max, s.mean, s.m2 = o.min, o.max, o.mean, o.m2
	} else {
		s.min = min(s.min, o.min)
		s.max = max(s.max, o.max)
		// Chan et al. parallel update of mean and sum of squares.
		na, nb := float64(s.n), float64(o.n)
		nt := na + nb
		d := o.mean - s.mean
		s.mean += d * nb / nt
		s.m2 += o.m2 + d*d*na*nb/nt
	}
	s.n += o.n
	if !s.manyVal {
		if o.manyVal {
			s.manyVal = true
		} else {
			for i := range o.nFew {
				s.noteFew(o.few[i], o.fewN[i])
			}
		}
	}
	for len(s.levels) < len(o.levels) {
		s.levels = append(s.levels, nil)
	}
	s.recomputeCaps()
	for h, lvl := range o.levels {
		s.levels[h] = append(s.levels[h], lvl...)
		s.size += len(lvl)
	}
	s.compress()
	return nil
}

// Clone returns a deep copy of s.
func (s *Sketch) Clone() *Sketch {
	c := &Sketch{
		k: s.k, totalCap: s.totalCap, size: s.size, n: s.n, missing: s.missing,
		min: s.min, max: s.max, mean: s.mean, m2: s.m2, rng: s.rng,
		few: s.few, fewN: s.fewN, nFew: s.nFew, manyVal: s.manyVal,
		caps: slices.Clone(s.caps),
	}
	c.levels = make([][]float64, len(s.levels))
	for h, lvl := range s.levels {
		c.levels[h] = slices.Clone(lvl)
	}
	return c
}

// Reset empties s, keeping k and its buffers.
func (s *Sketch) Reset() {
	if s.k == 0 {
		return
	}
	k := s.k
	lvl0 := s.levels[0][:0]
	pairs := s.pairs
	view := s.view
	*s = Sketch{}
	s.view = view
	s.k = k
	s.rng = rngSeed
	s.levels = [][]float64{lvl0}
	s.pairs = pairs
	s.recomputeCaps()
}

// K returns the accuracy parameter.
func (s *Sketch) K() int {
	if s.k == 0 {
		return DefaultK
	}
	return s.k
}

// Count returns the number of finite values inserted.
func (s *Sketch) Count() int64 { return s.n }

// Missing returns the number of NaN and ±Inf values offered to Insert.
func (s *Sketch) Missing() int64 { return s.missing }

// Min returns the smallest value inserted, or NaN when empty.
func (s *Sketch) Min() float64 {
	if s.n == 0 {
		return math.NaN()
	}
	return s.min
}

// Max returns the largest value inserted, or NaN when empty.
func (s *Sketch) Max() float64 {
	if s.n == 0 {
		return math.NaN()
	}
	return s.max
}

// Mean returns the exact mean, or NaN when empty.
func (s *Sketch) Mean() float64 {
	if s.n == 0 {
		return math.NaN()
	}
	return s.mean
}

// Variance returns the population variance (divides by n, as numpy.var and
// Evidently's normalisation do), or NaN when empty.
func (s *Sketch) Variance() float64 {
	if s.n == 0 {
		return math.NaN()
	}
	return s.m2 / float64(s.n)
}

// Std returns the population standard deviation, or NaN when empty.
func (s *Sketch) Std() float64 { return math.Sqrt(s.Variance()) }

// Retained returns how many values the sketch holds (its memory is about
// 8 bytes per retained value).
func (s *Sketch) Retained() int { return s.size }

// Distinct reports the distinct values seen and their exact counts when
// there are at most 5 of them (ok is false otherwise). The slices are
// sorted by value and freshly allocated.
func (s *Sketch) Distinct() (values []float64, counts []int64, ok bool) {
	if s.manyVal {
		return nil, nil, false
	}
	idx := make([]int, s.nFew)
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case s.few[a] < s.few[b]:
			return -1
		case s.few[a] > s.few[b]:
			return 1
		}
		return 0
	})
	values = make([]float64, s.nFew)
	counts = make([]int64, s.nFew)
	for i, j := range idx {
		values[i], counts[i] = s.few[j], s.fewN[j]
	}
	return values, counts, true
}

// Quantile returns an approximate q-quantile: the smallest retained value
// whose estimated rank reaches ceil(q·n) (the "inverted CDF" definition,
// numpy method "inverted_cdf"). q ≤ 0 gives the exact minimum and q ≥ 1 the
// exact maximum. It returns NaN when the sketch is empty or q is NaN.
func (s *Sketch) Quantile(q float64) float64 {
	if s.n == 0 || math.IsNaN(q) {
		return math.NaN()
	}
	if q <= 0 {
		return s.min
	}
	if q >= 1 {
		return s.max
	}
	r := uint64(math.Ceil(q * float64(s.n)))
	r = min(max(r, 1), uint64(s.n))
	return s.sortedView().itemAtRank(r)
}

// Rank returns the estimated number of inserted values ≤ x.
func (s *Sketch) Rank(x float64) int64 {
	if s.n == 0 || math.IsNaN(x) {
		return 0
	}
	return int64(s.sortedView().rank(x))
}

// CDF returns the estimated fraction of inserted values ≤ x, or NaN when
// the sketch is empty.
func (s *Sketch) CDF(x float64) float64 {
	if s.n == 0 {
		return math.NaN()
	}
	return float64(s.Rank(x)) / float64(s.n)
}

// sortedView returns the retained values sorted with cumulative weights,
// building it once per state. Callers must not mutate s meanwhile.
func (s *Sketch) sortedView() *weightedView {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.viewOK {
		return &s.view
	}
	s.pairs = s.pairs[:0]
	for h, lvl := range s.levels {
		w := uint64(1) << h
		for _, v := range lvl {
			s.pairs = append(s.pairs, weighted{v: v, w: w})
		}
	}
	slices.SortFunc(s.pairs, func(a, b weighted) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	s.view.vals = s.view.vals[:0]
	s.view.cum = s.view.cum[:0]
	var c uint64
	for _, p := range s.pairs {
		c += p.w
		// Equal values collapse into one step of the CDF.
		if n := len(s.view.vals); n > 0 && s.view.vals[n-1] == p.v {
			s.view.cum[n-1] = c
			continue
		}
		s.view.vals = append(s.view.vals, p.v)
		s.view.cum = append(s.view.cum, c)
	}
	s.view.total = c
	s.viewOK = true
	return &s.view
}

type weighted struct {
	v float64
	w uint64
}
