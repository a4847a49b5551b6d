package abtest

import "math"

// Z95 is the standard normal quantile of 0.975: the half-width, in
// standard errors, of a two-sided 95% normal interval.
const Z95 = 1.959963984540054

// Wilson returns the Wilson score interval of a proportion of k successes
// in n trials, at the two-sided level whose normal quantile is z (Z95 for
// 95%). It requires 0 ≤ k ≤ n and n > 0, and panics otherwise: the
// interval of no trials is undefined, and callers decide what to show.
func Wilson(k, n int64, z float64) (lo, hi float64) {
	if n <= 0 || k < 0 || k > n {
		panic("abtest: Wilson needs 0 ≤ k ≤ n, n > 0")
	}
	fn := float64(n)
	p := float64(k) / fn
	z2 := z * z
	den := 1 + z2/fn
	center := (p + z2/(2*fn)) / den
	half := z / den * math.Sqrt(p*(1-p)/fn+z2/(4*fn*fn))
	return max(0, center-half), min(1, center+half)
}

// TwoProportionZ returns the pooled two-proportion z-test of k1/n1 against
// k0/n0: z = (p1 − p0) / √(p(1−p)(1/n1 + 1/n0)) with p the pooled
// proportion, and its two-sided p-value. When the pooled proportion is 0
// or 1 the two proportions are equal and it returns z = 0, p = 1. It
// requires n0, n1 > 0 and 0 ≤ k ≤ n, and panics otherwise.
func TwoProportionZ(k1, n1, k0, n0 int64) (z, p float64) {
	if n1 <= 0 || n0 <= 0 || k1 < 0 || k1 > n1 || k0 < 0 || k0 > n0 {
		panic("abtest: TwoProportionZ needs 0 ≤ k ≤ n, n > 0")
	}
	p1, p0 := float64(k1)/float64(n1), float64(k0)/float64(n0)
	pool := float64(k1+k0) / float64(n1+n0)
	se := math.Sqrt(pool * (1 - pool) * (1/float64(n1) + 1/float64(n0)))
	if se == 0 {
		return 0, 1
	}
	z = (p1 - p0) / se
	return z, math.Erfc(math.Abs(z) / math.Sqrt2)
}

// DiffCI returns the unpooled (Wald) interval of p1 − p0 for k1/n1 and
// k0/n0 at normal quantile z. It requires n0, n1 > 0 and 0 ≤ k ≤ n, and
// panics otherwise.
func DiffCI(k1, n1, k0, n0 int64, z float64) (lo, hi float64) {
	if n1 <= 0 || n0 <= 0 || k1 < 0 || k1 > n1 || k0 < 0 || k0 > n0 {
		panic("abtest: DiffCI needs 0 ≤ k ≤ n, n > 0")
	}
	p1, p0 := float64(k1)/float64(n1), float64(k0)/float64(n0)
	half := z * math.Sqrt(p1*(1-p1)/float64(n1)+p0*(1-p0)/float64(n0))
	d := p1 - p0
	return d - half, d + half
}

// Ratio estimates Σnum / Σden over clusters (lists: num = the list's watch
// seconds, den = its impressions) with a cluster-robust standard error.
// The zero value is empty; Add one cluster at a time.
type Ratio struct {
	clusters             int64
	num, den, nn, dd, nd float64 // Σnum, Σden, Σnum², Σden², Σnum·den
}

// Add adds one cluster. A cluster with den = 0 (a list with no items)
// adds nothing and is not counted.
func (r *Ratio) Add(num, den float64) {
	if den == 0 {
		return
	}
	r.clusters++
	r.num += num
	r.den += den
	r.nn += num * num
	r.dd += den * den
	r.nd += num * den
}

// Clusters returns the number of clusters added (with den > 0).
func (r *Ratio) Clusters() int64 { return r.clusters }

// Mean returns Σnum / Σden, 0 when nothing was added.
func (r *Ratio) Mean() float64 {
	if r.den == 0 {
		return 0
	}
	return r.num / r.den
}

// StdErr returns the clustered standard error of Mean:
// √(G/(G−1) · Σ(num − R·den)² / (Σden)²) over G clusters, the
// delta-method variance of a ratio of means (statsmodels' CR1 cluster
// covariance of a mean). It is NaN with fewer than two clusters.
func (r *Ratio) StdErr() float64 {
	if r.clusters < 2 {
		return math.NaN()
	}
	m := r.Mean()
	ss := max(0, r.nn-2*m*r.nd+m*m*r.dd) // Σ(num − m·den)², rounding can dip below 0
	g := float64(r.clusters)
	return math.Sqrt(g / (g - 1) * ss / (r.den * r.den))
}

// CI returns Mean ± z·StdErr; NaN bounds with fewer than two clusters.
func (r *Ratio) CI(z float64) (lo, hi float64) {
	m, se := r.Mean(), r.StdErr()
	return m - z*se, m + z*se
}
