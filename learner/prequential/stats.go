package prequential

import (
	"math"
	"slices"

	"gonum.org/v1/gonum/stat/distuv"
)

// PairedTest compares two models over the same windows.
type PairedTest struct {
	A, B     string  `json:"-"`
	Metric   string  `json:"metric"`
	N        int     `json:"windows"`
	MeanDiff float64 `json:"mean_diff"` // mean of A − B over windows
	// WilcoxonZ and WilcoxonP are the two-sided Wilcoxon signed-rank test
	// (normal approximation with tie correction, zero differences dropped).
	WilcoxonZ float64 `json:"wilcoxon_z"`
	WilcoxonP float64 `json:"wilcoxon_p"`
	// TStat and TP are the two-sided paired t-test.
	TStat float64 `json:"t"`
	TP    float64 `json:"t_p"`
}

// Wilcoxon returns the two-sided Wilcoxon signed-rank test of the paired
// samples a and b: differences of zero are dropped (Wilcoxon's method),
// tied absolute differences get average ranks and the variance is
// corrected for ties; the p-value is the normal approximation without
// continuity correction. This matches scipy.stats.wilcoxon(a, b,
// zero_method="wilcox", correction=False, method="approx"). With fewer
// than one non-zero difference it returns z = 0, p = 1.
func Wilcoxon(a, b []float64) (z, p float64) {
	d := make([]float64, 0, len(a))
	for i := range a {
		if x := a[i] - b[i]; x != 0 {
			d = append(d, x)
		}
	}
	n := len(d)
	if n == 0 {
		return 0, 1
	}
	slices.SortFunc(d, func(x, y float64) int {
		switch ax, ay := math.Abs(x), math.Abs(y); {
		case ax < ay:
			return -1
		case ax > ay:
			return 1
		}
		return 0
	})
	var rPlus, tieSum float64
	for i := 0; i < n; {
		j := i
		for j < n && math.Abs(d[j]) == math.Abs(d[i]) {
			j++
		}
		rank := float64(i+j+1) / 2 // average of ranks i+1 … j
		for k := i; k < j; k++ {
			if d[k] > 0 {
				rPlus += rank
			}
		}
		t := float64(j - i)
		tieSum += t*t*t - t
		i = j
	}
	fn := float64(n)
	mean := fn * (fn + 1) / 4
	v := fn*(fn+1)*(2*fn+1)/24 - tieSum/48
	if v <= 0 {
		return 0, 1
	}
	z = (rPlus - mean) / math.Sqrt(v)
	return z, 2 * distuv.UnitNormal.Survival(math.Abs(z))
}

// PairedT returns the two-sided paired t-test of a and b (t statistic and
// p-value, n−1 degrees of freedom). With fewer than two pairs, or no spread
// in the differences, it returns t = 0, p = 1 unless the differences are
// all equal and non-zero (then t = ±Inf, p = 0).
func PairedT(a, b []float64) (t, p float64) {
	n := len(a)
	if n < 2 {
		return 0, 1
	}
	var mean float64
	for i := range a {
		mean += a[i] - b[i]
	}
	mean /= float64(n)
	var ss float64
	for i := range a {
		x := a[i] - b[i] - mean
		ss += x * x
	}
	sd := math.Sqrt(ss / float64(n-1))
	if sd == 0 {
		if mean == 0 {
			return 0, 1
		}
		return math.Copysign(math.Inf(1), mean), 0
	}
	t = mean / (sd / math.Sqrt(float64(n)))
	dist := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(n - 1)}
	return t, 2 * dist.Survival(math.Abs(t))
}

// Compare runs both tests on the paired samples a (model A) and b (model B).
func Compare(nameA, nameB, metric string, a, b []float64) PairedTest {
	pt := PairedTest{A: nameA, B: nameB, Metric: metric, N: len(a)}
	for i := range a {
		pt.MeanDiff += a[i] - b[i]
	}
	if len(a) > 0 {
		pt.MeanDiff /= float64(len(a))
	}
	pt.WilcoxonZ, pt.WilcoxonP = Wilcoxon(a, b)
	pt.TStat, pt.TP = PairedT(a, b)
	return pt
}
