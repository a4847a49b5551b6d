package synth

import (
	"math"
	"testing"
)

// Critical values of the chi-square distribution at p = 0.999, from
// scipy.stats.chi2.ppf(0.999, df) (scipy 1.17.1).
const (
	chi2Crit999df9  = 27.877164871256568
	chi2Crit999df99 = 148.23035916510173
)

func TestAliasMatchesWeights(t *testing.T) {
	ranks := identityRanks(100)
	w := zipfWeights(nil, ranks, 1.1)
	a := newAlias(w)
	r := newRNG(3, streamTraffic)
	const n = 1_000_000
	counts := make([]int, len(w))
	for range n {
		counts[a.sample(r)]++
	}
	var chi2 float64
	for i, c := range counts {
		exp := w[i] * n
		chi2 += (float64(c) - exp) * (float64(c) - exp) / exp
	}
	if chi2 > chi2Crit999df99 {
		t.Errorf("alias sampler: chi-square %.1f over 99 df exceeds %.1f", chi2, chi2Crit999df99)
	}
}

func TestIntNUniform(t *testing.T) {
	r := newRNG(5, streamTraffic)
	const n, k = 500_000, 10
	var counts [k]int
	for range n {
		counts[r.intN(k)]++
	}
	var chi2 float64
	for _, c := range counts {
		exp := float64(n) / k
		chi2 += (float64(c) - exp) * (float64(c) - exp) / exp
	}
	if chi2 > chi2Crit999df9 {
		t.Errorf("intN(10): chi-square %.1f over 9 df exceeds %.1f", chi2, chi2Crit999df9)
	}
}

func TestNormalAndExpMoments(t *testing.T) {
	r := newRNG(9, streamModel)
	const n = 400_000
	var s1, s2, e1 float64
	for range n {
		x := r.normal()
		s1 += x
		s2 += x * x
		e1 += r.exp()
	}
	m, v, em := s1/n, s2/n-(s1/n)*(s1/n), e1/n
	// Standard errors: 1/sqrt(n) = 0.0016 for the means, sqrt(2/n) = 0.0022
	// for the variance; the bounds are about 5 standard errors.
	if math.Abs(m) > 0.008 || math.Abs(v-1) > 0.011 || math.Abs(em-1) > 0.008 {
		t.Errorf("normal mean %.4f var %.4f, exp mean %.4f; want 0, 1, 1", m, v, em)
	}
}

func TestZipfWeightsGolden(t *testing.T) {
	// numpy: w = arange(1, 5001)**-1.1; w /= w.sum(); w[:50].sum(), w[0]
	const top50, top1 = 0.6060373785698449, 0.15828584972162313
	w := zipfWeights(nil, identityRanks(5000), 1.1)
	var s float64
	for _, x := range w[:50] {
		s += x
	}
	if math.Abs(s-top50) > 1e-12 || math.Abs(w[0]-top1) > 1e-12 {
		t.Errorf("top-50 share %.16g, top-1 %.16g; want %.16g, %.16g", s, w[0], top50, top1)
	}
}

func TestShuffleIsPermutation(t *testing.T) {
	x := identityRanks(1000)
	shuffle(newRNG(1, streamModel), x)
	seen := make([]bool, 1001)
	moved := 0
	for i, v := range x {
		if v < 1 || v > 1000 || seen[v] {
			t.Fatalf("not a permutation: x[%d] = %d", i, v)
		}
		seen[v] = true
		if int(v) != i+1 {
			moved++
		}
	}
	if moved < 900 {
		t.Errorf("shuffle moved only %d of 1000 elements", moved)
	}
}
