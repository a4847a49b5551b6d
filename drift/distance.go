package drift

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Errors callers may branch on.
var (
	// ErrEmpty reports a distance asked of a side with no values.
	ErrEmpty = errors.New("drift: empty sample")
	// ErrIncompatible reports sketches or tables that cannot be combined.
	ErrIncompatible = errors.New("drift: incompatible summaries")
	// ErrNotApplicable reports a method that does not apply to the data
	// (for example chi-square on a numeric signal with many values).
	ErrNotApplicable = errors.New("drift: method not applicable")
	// ErrCorrupt reports an encoded sketch or table that fails validation.
	ErrCorrupt = errors.New("drift: corrupt encoding")
)

const (
	// DefaultBins is the number of reference-quantile bins for PSI and
	// binned Jensen–Shannon.
	DefaultBins = 10
	// MaxBins bounds the bin count (more bins than this only measures
	// sketch noise).
	MaxBins = 1000
	// PSIEpsilon replaces an empty bin's share in PSI, as Evidently does.
	PSIEpsilon = 1e-4
	// minWassersteinNorm floors the reference standard deviation used to
	// normalise the Wasserstein distance (Evidently's 0.001), so that a
	// constant reference does not divide by zero.
	minWassersteinNorm = 1e-3
	// stackBins is how many bins get stack-allocated share buffers.
	stackBins = 64
)

// KS returns the two-sample Kolmogorov–Smirnov statistic D of samples a and
// b, identical to scipy.stats.ks_2samp's, and an asymptotic two-sided p-value
// (see doc.go for the formula). NaN and ±Inf are dropped.
func KS(a, b []float64) (d, p float64, err error) {
	va, vb := sampleView(a), sampleView(b)
	if va.total == 0 || vb.total == 0 {
		return 0, 0, fmt.Errorf("drift: ks: %w", ErrEmpty)
	}
	d = ksStatistic(&va, &vb)
	return d, ksPValue(d, va.total, vb.total), nil
}

// KSSketch returns the KS statistic and p-value between two sketches. The
// statistic is exact for the retained weighted values; against the exact
// samples it is off by at most the sum of the two sketches' rank errors.
func KSSketch(ref, cur *Sketch) (d, p float64, err error) {
	if ref.Count() == 0 || cur.Count() == 0 {
		return 0, 0, fmt.Errorf("drift: ks: %w", ErrEmpty)
	}
	d = ksStatistic(ref.sortedView(), cur.sortedView())
	return d, ksPValue(d, uint64(ref.n), uint64(cur.n)), nil
}

// ksPValue is the Kolmogorov limiting distribution with Stephens' small
// sample correction: Q_KS((√nₑ + 0.12 + 0.11/√nₑ)·D), nₑ = n₁n₂/(n₁+n₂).
func ksPValue(d float64, n1, n2 uint64) float64 {
	a, b := float64(n1), float64(n2)
	en := math.Sqrt(a * b / (a + b))
	return kolmogorovSF((en + 0.12 + 0.11/en) * d)
}

// kolmogorovSF returns Q_KS(x) = P(K > x) for the Kolmogorov distribution
// (scipy.stats.kstwobign.sf), using the theta-function form of the CDF for
// small x, where the alternating series converges slowly.
func kolmogorovSF(x float64) float64 {
	if math.IsNaN(x) || x <= 0 {
		return 1
	}
	if x < 1.18 {
		// P(K ≤ x) = √(2π)/x · Σ_{j odd} exp(−j²π²/(8x²)).
		t := -math.Pi * math.Pi / (8 * x * x)
		var s float64
		for j := 1.0; j < 40; j += 2 {
			term := math.Exp(j * j * t)
			s += term
			if term < 1e-17*s {
				break
			}
		}
		return min(max(1-math.Sqrt(2*math.Pi)/x*s, 0), 1)
	}
	// P(K > x) = 2 Σ_{j≥1} (−1)^{j−1} exp(−2j²x²).
	var s float64
	sign := 1.0
	for j := 1.0; j < 100; j++ {
		term := math.Exp(-2 * j * j * x * x)
		s += sign * term
		if term < 1e-17*s {
			break
		}
		sign = -sign
	}
	return min(max(2*s, 0), 1)
}

// Wasserstein returns the first Wasserstein (earth mover's) distance
// between the samples, as scipy.stats.wasserstein_distance.
func Wasserstein(a, b []float64) (float64, error) {
	va, vb := sampleView(a), sampleView(b)
	if va.total == 0 || vb.total == 0 {
		return 0, fmt.Errorf("drift: wasserstein: %w", ErrEmpty)
	}
	return wasserstein1(&va, &vb), nil
}

// NormalizedWasserstein returns Wasserstein(ref, cur) divided by the
// population standard deviation of ref floored at 0.001 (Evidently's
// "wasserstein" test).
func NormalizedWasserstein(ref, cur []float64) (float64, error) {
	w, err := Wasserstein(ref, cur)
	if err != nil {
		return 0, err
	}
	var mean, m2 float64
	var n int
	for _, x := range ref {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		n++
		d := x - mean
		mean += d / float64(n)
		m2 += d * (x - mean)
	}
	return w / max(math.Sqrt(m2/float64(n)), minWassersteinNorm), nil
}

// WassersteinSketch returns the first Wasserstein distance between the
// retained weighted values of two sketches. The error against the exact
// samples is at most (rank error of ref + rank error of cur)·(range).
func WassersteinSketch(ref, cur *Sketch) (float64, error) {
	if ref.Count() == 0 || cur.Count() == 0 {
		return 0, fmt.Errorf("drift: wasserstein: %w", ErrEmpty)
	}
	return wasserstein1(ref.sortedView(), cur.sortedView()), nil
}

// NormalizedWassersteinSketch returns WassersteinSketch(ref, cur) divided by
// ref's exact population standard deviation floored at 0.001.
func NormalizedWassersteinSketch(ref, cur *Sketch) (float64, error) {
	w, err := WassersteinSketch(ref, cur)
	if err != nil {
		return 0, err
	}
	return w / max(ref.Std(), minWassersteinNorm), nil
}

// PSI returns the population stability index of cur against ref over
// reference-quantile bins (DefaultBins when bins is 0); see doc.go.
func PSI(ref, cur []float64, bins int) (float64, error) {
	vr, vc := sampleView(ref), sampleView(cur)
	return binnedDistance(MethodPSI, &vr, &vc, bins)
}

// PSISketch is PSI computed from sketches: bin edges from ref's quantiles,
// shares from both sketches' CDFs.
func PSISketch(ref, cur *Sketch, bins int) (float64, error) {
	if ref.Count() == 0 || cur.Count() == 0 {
		return 0, fmt.Errorf("drift: psi: %w", ErrEmpty)
	}
	return binnedDistance(MethodPSI, ref.sortedView(), cur.sortedView(), bins)
}

// JSBinned returns the Jensen–Shannon distance between the shares of ref
// and cur in reference-quantile bins (DefaultBins when bins is 0).
func JSBinned(ref, cur []float64, bins int) (float64, error) {
	vr, vc := sampleView(ref), sampleView(cur)
	return binnedDistance(MethodJS, &vr, &vc, bins)
}

// JSSketch is JSBinned computed from sketches.
func JSSketch(ref, cur *Sketch, bins int) (float64, error) {
	if ref.Count() == 0 || cur.Count() == 0 {
		return 0, fmt.Errorf("drift: js: %w", ErrEmpty)
	}
	return binnedDistance(MethodJS, ref.sortedView(), cur.sortedView(), bins)
}

// binnedDistance computes PSI or JS over reference-quantile bins. It takes
// a Method rather than a function value so that the share buffers stay on
// the stack.
func binnedDistance(m Method, ref, cur *weightedView, bins int) (float64, error) {
	name := m.String()
	if bins == 0 {
		bins = DefaultBins
	}
	if bins < 2 || bins > MaxBins {
		return 0, fmt.Errorf("drift: %s: bins=%d outside [2, %d]", name, bins, MaxBins)
	}
	if ref.total == 0 || cur.total == 0 {
		return 0, fmt.Errorf("drift: %s: %w", name, ErrEmpty)
	}
	var buf [2 * stackBins]float64
	var p, q []float64
	if bins <= stackBins {
		p, q = buf[:bins], buf[stackBins:stackBins+bins]
	} else {
		p, q = make([]float64, bins), make([]float64, bins)
	}
	binShares(ref, cur, p, q)
	if m == MethodJS {
		return jsDistance(p, q), nil
	}
	return psiShares(p, q), nil
}

// psiShares returns Σ (qᵢ − pᵢ)·ln(qᵢ/pᵢ) over shares p (reference) and q
// (current), with a zero share replaced by PSIEpsilon and no renormalising.
func psiShares(p, q []float64) float64 {
	var s float64
	for i := range p {
		pi, qi := p[i], q[i]
		if pi == 0 {
			pi = PSIEpsilon
		}
		if qi == 0 {
			qi = PSIEpsilon
		}
		s += (qi - pi) * math.Log(qi/pi)
	}
	return s
}

// PSICounts returns the PSI between two aligned count (or weight) vectors,
// each turned into shares of its own total.
func PSICounts(ref, cur []float64) (float64, error) {
	p, q, err := shares("psi", ref, cur)
	if err != nil {
		return 0, err
	}
	return psiShares(p, q), nil
}

// JS returns the Jensen–Shannon distance between two aligned weight
// vectors: each is normalised to sum 1, then √((KL(p‖m) + KL(q‖m))/2) with
// m = (p+q)/2 and natural logarithms — scipy.spatial.distance.jensenshannon
// with its default base e. The distance lies in [0, √ln 2 ≈ 0.8326]; divide
// by √ln 2 for the base-2 distance in [0, 1].
func JS(p, q []float64) (float64, error) {
	if len(p) != len(q) {
		return 0, fmt.Errorf("drift: js: lengths %d and %d differ", len(p), len(q))
	}
	sp, err := weightSum("js", p)
	if err != nil {
		return 0, err
	}
	sq, err := weightSum("js", q)
	if err != nil {
		return 0, err
	}
	return jsNormalised(p, q, sp, sq), nil
}

// jsDistance is JS on shares already known to be valid.
func jsDistance(p, q []float64) float64 {
	var sp, sq float64
	for i := range p {
		sp += p[i]
		sq += q[i]
	}
	return jsNormalised(p, q, sp, sq)
}

func jsNormalised(p, q []float64, sp, sq float64) float64 {
	var left, right float64
	for i := range p {
		pi, qi := p[i]/sp, q[i]/sq
		m := (pi + qi) / 2
		left += relEntr(pi, m)
		right += relEntr(qi, m)
	}
	return math.Sqrt(max(left+right, 0) / 2)
}

// relEntr is scipy.special.rel_entr for x ≥ 0, y ≥ x/2 > 0 or x = 0.
func relEntr(x, y float64) float64 {
	if x == 0 {
		return 0
	}
	return x * math.Log(x/y)
}

func weightSum(name string, w []float64) (float64, error) {
	var s float64
	for i, x := range w {
		if !(x >= 0) || math.IsInf(x, 0) {
			return 0, fmt.Errorf("drift: %s: weight %d is %v, want finite and ≥ 0", name, i, x)
		}
		s += x
	}
	if s == 0 {
		return 0, fmt.Errorf("drift: %s: %w", name, ErrEmpty)
	}
	return s, nil
}

func shares(name string, ref, cur []float64) (p, q []float64, err error) {
	if len(ref) != len(cur) {
		return nil, nil, fmt.Errorf("drift: %s: lengths %d and %d differ", name, len(ref), len(cur))
	}
	sr, err := weightSum(name, ref)
	if err != nil {
		return nil, nil, err
	}
	sc, err := weightSum(name, cur)
	if err != nil {
		return nil, nil, err
	}
	p, q = make([]float64, len(ref)), make([]float64, len(cur))
	for i := range ref {
		p[i], q[i] = ref[i]/sr, cur[i]/sc
	}
	return p, q, nil
}

// ChiSquare runs Pearson's chi-square test of homogeneity on the 2×K table
// whose rows are the aligned category counts ref and cur — what
// scipy.stats.chi2_contingency(table, correction=False) computes. Columns
// that are zero in both rows are dropped; dof = K' − 1 for the K' columns
// left, and with fewer than two columns the result is (0, 1, 0).
func ChiSquare(ref, cur []float64) (stat, p float64, dof int, err error) {
	if len(ref) != len(cur) {
		return 0, 0, 0, fmt.Errorf("drift: chi-square: lengths %d and %d differ", len(ref), len(cur))
	}
	nr, err := weightSum("chi-square", ref)
	if err != nil {
		return 0, 0, 0, err
	}
	nc, err := weightSum("chi-square", cur)
	if err != nil {
		return 0, 0, 0, err
	}
	total := nr + nc
	cols := 0
	for i := range ref {
		col := ref[i] + cur[i]
		if col == 0 {
			continue
		}
		cols++
		er, ec := nr*col/total, nc*col/total
		dr, dc := ref[i]-er, cur[i]-ec
		stat += dr*dr/er + dc*dc/ec
	}
	if cols < 2 {
		return 0, 1, 0, nil
	}
	dof = cols - 1
	return stat, distuv.ChiSquared{K: float64(dof)}.Survival(stat), dof, nil
}

// ZTest runs the two-sided two-proportion Z-test with pooled variance
// (Evidently's "z" test): z = (p₁ − p₂)/√(P(1−P)(1/n₁ + 1/n₂)), P the pooled
// proportion, p = 2·(1 − Φ(|z|)). When both samples are all one value
// (P ∈ {0, 1}) there is no evidence of difference and it returns (0, 1).
func ZTest(refPos, refN, curPos, curN int64) (z, p float64, err error) {
	if refN <= 0 || curN <= 0 {
		return 0, 0, fmt.Errorf("drift: z-test: %w", ErrEmpty)
	}
	if refPos < 0 || refPos > refN || curPos < 0 || curPos > curN {
		return 0, 0, fmt.Errorf("drift: z-test: successes %d/%d and %d/%d out of range", refPos, refN, curPos, curN)
	}
	n1, n2 := float64(refN), float64(curN)
	p1, p2 := float64(refPos)/n1, float64(curPos)/n2
	pooled := (float64(refPos) + float64(curPos)) / (n1 + n2)
	v := pooled * (1 - pooled) * (1/n1 + 1/n2)
	if v <= 0 {
		return 0, 1, nil
	}
	z = (p1 - p2) / math.Sqrt(v)
	return z, math.Erfc(math.Abs(z) / math.Sqrt2), nil
}
