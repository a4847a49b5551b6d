package drift

import (
	"errors"
	"math"
	"testing"
)

func TestDistancesOnKnownCases(t *testing.T) {
	tests := []struct {
		name           string
		ref, cur       []float64
		d, w, psi, js  float64
		pAbove, pBelow float64 // bounds on the KS p-value
	}{
		{
			name: "identical", ref: []float64{1, 2, 3, 4}, cur: []float64{4, 3, 2, 1},
			d: 0, w: 0, psi: 0, js: 0, pAbove: 1, pBelow: 1,
		},
		{
			// Disjoint supports: D = 1, W = shift, every bin empty on one side.
			name: "disjoint shift", ref: []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, cur: []float64{100, 101, 102, 103, 104, 105, 106, 107, 108, 109},
			// Ten reference bins hold 0.1 each; cur is all in the last bin.
			d: 1, w: 100,
			psi:    9*(PSIEpsilon-0.1)*math.Log(PSIEpsilon/0.1) + 0.9*math.Log(10),
			js:     math.Sqrt((0.9*math.Ln2 + 0.1*math.Log(0.1/0.55) + math.Log(1/0.55)) / 2),
			pAbove: 0, pBelow: 0.001,
		},
		{
			// One value moved by 1 among four: D = 1/4, W = 1/4.
			name: "one moved", ref: []float64{0, 1, 2, 3}, cur: []float64{0, 1, 2, 4},
			d: 0.25, w: 0.25, pAbove: 0.99, pBelow: 1,
			psi: math.NaN(), js: math.NaN(), // not pinned here; covered by golden tests
		},
		{
			name: "nan dropped", ref: []float64{1, math.NaN(), 2}, cur: []float64{math.Inf(1), 2, 1},
			d: 0, w: 0, psi: 0, js: 0, pAbove: 1, pBelow: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, p, err := KS(tt.ref, tt.cur)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "D", d, tt.d, 1e-15, 0)
			if p < tt.pAbove || p > tt.pBelow {
				t.Errorf("p = %v, want in [%v, %v]", p, tt.pAbove, tt.pBelow)
			}
			w, _ := Wasserstein(tt.ref, tt.cur)
			check(t, "W", w, tt.w, 1e-12, 1e-12)
			if !math.IsNaN(tt.psi) {
				psi, _ := PSI(tt.ref, tt.cur, 10)
				js, _ := JSBinned(tt.ref, tt.cur, 10)
				check(t, "PSI", psi, tt.psi, 1e-12, 1e-12)
				check(t, "JS", js, tt.js, 1e-12, 1e-12)
			}
		})
	}
}

func TestDistanceErrors(t *testing.T) {
	empty := []float64{math.NaN()}
	one := []float64{1}
	if _, _, err := KS(empty, one); !errors.Is(err, ErrEmpty) {
		t.Errorf("KS on empty: %v", err)
	}
	if _, err := Wasserstein(one, nil); !errors.Is(err, ErrEmpty) {
		t.Errorf("Wasserstein on empty: %v", err)
	}
	if _, err := PSI(one, nil, 10); !errors.Is(err, ErrEmpty) {
		t.Errorf("PSI on empty: %v", err)
	}
	for _, bins := range []int{1, -3, MaxBins + 1} {
		if _, err := PSI(one, one, bins); err == nil {
			t.Errorf("PSI with %d bins accepted", bins)
		}
	}
	if _, err := PSI(one, one, 200); err != nil { // heap-allocated share buffers
		t.Errorf("PSI with 200 bins: %v", err)
	}
	var e Sketch
	s := sketchOf(t, one)
	if _, _, err := KSSketch(&e, s); !errors.Is(err, ErrEmpty) {
		t.Errorf("KSSketch on empty: %v", err)
	}
	if _, err := WassersteinSketch(s, &e); !errors.Is(err, ErrEmpty) {
		t.Errorf("WassersteinSketch on empty: %v", err)
	}
	if _, err := PSISketch(s, &e, 0); !errors.Is(err, ErrEmpty) {
		t.Errorf("PSISketch on empty: %v", err)
	}
	if _, err := JSSketch(&e, s, 0); !errors.Is(err, ErrEmpty) {
		t.Errorf("JSSketch on empty: %v", err)
	}
	if _, err := JS([]float64{1, 2}, []float64{1}); err == nil {
		t.Error("JS with different lengths accepted")
	}
	if _, err := JS([]float64{1, -1}, []float64{1, 1}); err == nil {
		t.Error("JS with a negative weight accepted")
	}
	if _, err := JS([]float64{0, 0}, []float64{1, 1}); !errors.Is(err, ErrEmpty) {
		t.Errorf("JS with zero mass: %v", err)
	}
	if _, err := PSICounts([]float64{1, math.Inf(1)}, []float64{1, 1}); err == nil {
		t.Error("PSICounts with +Inf accepted")
	}
	if _, _, _, err := ChiSquare([]float64{1}, []float64{1, 2}); err == nil {
		t.Error("ChiSquare with different lengths accepted")
	}
}

func TestChiSquareAndZTestEdges(t *testing.T) {
	// One category only: no evidence of difference.
	stat, p, dof, err := ChiSquare([]float64{5, 0}, []float64{7, 0})
	if err != nil || stat != 0 || p != 1 || dof != 0 {
		t.Errorf("single category: %v %v %v %v", stat, p, dof, err)
	}
	tests := []struct {
		name                   string
		refPos, refN, cPos, cN int64
		z, p                   float64
		err                    bool
	}{
		{"all same", 10, 10, 5, 5, 0, 1, false},
		{"none", 0, 10, 0, 5, 0, 1, false},
		{"equal proportions", 3, 10, 6, 20, 0, 1, false},
		{"empty ref", 0, 0, 1, 2, 0, 0, true},
		{"too many successes", 11, 10, 1, 2, 0, 0, true},
		{"negative", -1, 10, 1, 2, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z, p, err := ZTest(tt.refPos, tt.refN, tt.cPos, tt.cN)
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if err == nil && (z != tt.z || p != tt.p) {
				t.Errorf("z, p = %v, %v; want %v, %v", z, p, tt.z, tt.p)
			}
		})
	}
	// A table that overflowed or has 3 categories is not binary.
	three := tableOf(t, []string{"a", "b", "c"})
	if _, _, err := ZTestFreq(three, three); !errors.Is(err, ErrNotApplicable) {
		t.Errorf("ZTestFreq on 3 categories: %v", err)
	}
	over, _ := NewFreqTable(1)
	over.Insert("a")
	over.Insert("b")
	if _, _, err := ZTestFreq(over, over); !errors.Is(err, ErrNotApplicable) {
		t.Errorf("ZTestFreq on overflowed table: %v", err)
	}
}

// With overflowed tables the evicted mass becomes an "other" category.
func TestCategoricalDistancesWithOther(t *testing.T) {
	ref, _ := NewFreqTable(2)
	cur, _ := NewFreqTable(2)
	for range 10 {
		ref.Insert("a")
		cur.Insert("a")
	}
	ref.Insert("b")
	ref.Insert("c") // evicts: other > 0
	cur.Insert("x")
	r, c := alignTables(ref, cur)
	if len(r) != 3 || r[len(r)-1] != float64(ref.Other()) || c[len(c)-1] != float64(cur.Other()) {
		t.Errorf("aligned %v / %v, other %d / %d", r, c, ref.Other(), cur.Other())
	}
	var sr, sc float64
	for i := range r {
		sr += r[i]
		sc += c[i]
	}
	if sr != float64(ref.Total()) || sc != float64(cur.Total()) {
		t.Errorf("aligned mass %v/%v, totals %d/%d", sr, sc, ref.Total(), cur.Total())
	}
}

func TestKolmogorovSFContinuity(t *testing.T) {
	// The two series meet at 1.18; they must agree there.
	lo, hi := kolmogorovSF(math.Nextafter(1.18, 0)), kolmogorovSF(1.18)
	if math.Abs(lo-hi) > 1e-14 {
		t.Errorf("discontinuity at 1.18: %v vs %v", lo, hi)
	}
	for _, x := range []float64{-1, 0, math.NaN()} {
		if kolmogorovSF(x) != 1 {
			t.Errorf("kolmogorovSF(%v) = %v, want 1", x, kolmogorovSF(x))
		}
	}
	if kolmogorovSF(40) != 0 {
		t.Errorf("kolmogorovSF(40) = %v, want 0", kolmogorovSF(40))
	}
}
