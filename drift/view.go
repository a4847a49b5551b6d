package drift

import (
	"math"
	"math/bits"
	"slices"
)

// weightedView is a step CDF: distinct values in ascending order with the
// cumulative weight of all values ≤ each. Exact samples (weight 1 each) and
// sketches (weight 2^level) both become views, so one implementation of
// every distance serves the exact path and the sketch path.
type weightedView struct {
	vals  []float64
	cum   []uint64
	total uint64
}

// sampleView builds the exact view of a sample; non-finite values are
// dropped as a Sketch would drop them.
func sampleView(x []float64) weightedView {
	s := make([]float64, 0, len(x))
	for _, v := range x {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			s = append(s, v)
		}
	}
	slices.Sort(s)
	v := weightedView{vals: s[:0], cum: make([]uint64, 0, len(s))}
	for i, x := range s {
		if n := len(v.vals); n > 0 && v.vals[n-1] == x {
			v.cum[n-1] = uint64(i + 1)
			continue
		}
		v.vals = append(v.vals, x)
		v.cum = append(v.cum, uint64(i+1))
	}
	v.total = uint64(len(s))
	return v
}

// rank returns the weight of values ≤ x.
func (v *weightedView) rank(x float64) uint64 {
	lo, hi := 0, len(v.vals)
	for lo < hi { // first index with vals[i] > x
		m := int(uint(lo+hi) >> 1)
		if v.vals[m] <= x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return 0
	}
	return v.cum[lo-1]
}

// itemAtRank returns the smallest value whose cumulative weight is ≥ r
// (1 ≤ r ≤ total).
func (v *weightedView) itemAtRank(r uint64) float64 {
	lo, hi := 0, len(v.vals)-1
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if v.cum[m] >= r {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return v.vals[lo]
}

// ksStatistic returns sup_x |F_a(x) − F_b(x)|, evaluated at every step of
// either CDF, with each CDF computed as count/total exactly as
// scipy.stats.ks_2samp does.
func ksStatistic(a, b *weightedView) float64 {
	na, nb := float64(a.total), float64(b.total)
	var d float64
	i, j := 0, 0
	for i < len(a.vals) || j < len(b.vals) {
		x := nextStep(a, b, i, j)
		if i < len(a.vals) && a.vals[i] == x {
			i++
		}
		if j < len(b.vals) && b.vals[j] == x {
			j++
		}
		diff := math.Abs(float64(cumAt(a, i))/na - float64(cumAt(b, j))/nb)
		d = max(d, diff)
	}
	return d
}

// wasserstein1 returns ∫|F_a − F_b| dx, the first Wasserstein distance, as
// scipy.stats.wasserstein_distance computes it: the sum over consecutive
// steps x_t < x_{t+1} of the union of |F_a(x_t) − F_b(x_t)|·(x_{t+1} − x_t).
func wasserstein1(a, b *weightedView) float64 {
	na, nb := float64(a.total), float64(b.total)
	var w, prevX, prevDiff float64
	first := true
	i, j := 0, 0
	for i < len(a.vals) || j < len(b.vals) {
		x := nextStep(a, b, i, j)
		if i < len(a.vals) && a.vals[i] == x {
			i++
		}
		if j < len(b.vals) && b.vals[j] == x {
			j++
		}
		if !first {
			w += prevDiff * (x - prevX)
		}
		first = false
		prevX = x
		prevDiff = math.Abs(float64(cumAt(a, i))/na - float64(cumAt(b, j))/nb)
	}
	return w
}

// nextStep returns the smaller of the next unconsumed values of a and b.
func nextStep(a, b *weightedView, i, j int) float64 {
	switch {
	case i >= len(a.vals):
		return b.vals[j]
	case j >= len(b.vals):
		return a.vals[i]
	}
	return min(a.vals[i], b.vals[j])
}

func cumAt(v *weightedView, i int) uint64 {
	if i == 0 {
		return 0
	}
	return v.cum[i-1]
}

// binShares fills refShare and curShare (length = bins) with the fraction of
// each side in the bins (−∞, e₁], (e₁, e₂], …, (e_{B−1}, +∞), where
// e_i is the reference value at rank ceil(i·n_ref/B) (the inverted-CDF
// quantile at i/B, computed in integers so no rounding moves an edge).
// Tied reference values can make a bin empty on both sides.
func binShares(ref, cur *weightedView, refShare, curShare []float64) {
	bins := uint64(len(refShare))
	nr, nc := float64(ref.total), float64(cur.total)
	var prevR, prevC uint64
	for i := uint64(1); i <= bins; i++ {
		rr, rc := ref.total, cur.total
		if i < bins {
			hi, lo := bits.Mul64(i, ref.total)
			q, rem := bits.Div64(hi, lo, bins) // hi < bins since i < bins
			if rem != 0 {
				q++
			}
			e := ref.itemAtRank(max(q, 1))
			rr, rc = ref.rank(e), cur.rank(e)
		}
		refShare[i-1] = float64(rr-prevR) / nr
		curShare[i-1] = float64(rc-prevC) / nc
		prevR, prevC = rr, rc
	}
}
