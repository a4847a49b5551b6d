package drift

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// Golden values come from testdata/golden.py (numpy/scipy); see doc.go.

type numericCase struct {
	Name string    `json:"name"`
	Ref  []float64 `json:"ref"`
	Cur  []float64 `json:"cur"`
}

type categoricalCase struct {
	Name string   `json:"name"`
	Ref  []string `json:"ref"`
	Cur  []string `json:"cur"`
}

type numericGolden struct {
	Name            string  `json:"name"`
	KSD             float64 `json:"ks_d"`
	KSPScipyAsymp   float64 `json:"ks_p_scipy_asymp"`
	KSPStephens     float64 `json:"ks_p_stephens"`
	Wasserstein     float64 `json:"wasserstein"`
	WassersteinNorm float64 `json:"wasserstein_norm"`
	PSI10           float64 `json:"psi_10"`
	JS10            float64 `json:"js_10"`
	PSI20           float64 `json:"psi_20"`
	JS20            float64 `json:"js_20"`
	RefMean         float64 `json:"ref_mean"`
	RefStd          float64 `json:"ref_std"`
	CurMean         float64 `json:"cur_mean"`
	CurStd          float64 `json:"cur_std"`
}

type categoricalGolden struct {
	Name     string   `json:"name"`
	Keys     []string `json:"keys"`
	Chi2Stat float64  `json:"chi2_stat"`
	Chi2P    float64  `json:"chi2_p"`
	Chi2Dof  int      `json:"chi2_dof"`
	JS       float64  `json:"js"`
	JSBase2  float64  `json:"js_base2"`
	PSI      float64  `json:"psi"`
	Z        *float64 `json:"z"`
	ZP       *float64 `json:"z_p"`
}

type golden struct {
	Numeric     []numericGolden     `json:"numeric"`
	Categorical []categoricalGolden `json:"categorical"`
	Functions   struct {
		KSTwoBignSF [][2]float64 `json:"kstwobign_sf"`
		Chi2SF      [][3]float64 `json:"chi2_sf"`
	} `json:"functions"`
}

func readJSON(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
}

func loadGolden(t testing.TB) (golden, map[string]numericCase, map[string]categoricalCase) {
	var g golden
	var nc []numericCase
	var cc []categoricalCase
	readJSON(t, "golden.json", &g)
	readJSON(t, "numeric.json", &nc)
	readJSON(t, "categorical.json", &cc)
	num := make(map[string]numericCase, len(nc))
	for _, c := range nc {
		num[c.Name] = c
	}
	cat := make(map[string]categoricalCase, len(cc))
	for _, c := range cc {
		cat[c.Name] = c
	}
	if len(g.Numeric) != len(nc) || len(g.Categorical) != len(cc) || len(nc) == 0 || len(cc) == 0 {
		t.Fatalf("golden has %d/%d cases, inputs %d/%d", len(g.Numeric), len(g.Categorical), len(nc), len(cc))
	}
	return g, num, cat
}

// near reports |got − want| ≤ abs + rel·|want|.
func near(got, want, abs, rel float64) bool {
	return math.Abs(got-want) <= abs+rel*math.Abs(want)
}

func check(t *testing.T, what string, got, want, abs, rel float64) {
	t.Helper()
	if !near(got, want, abs, rel) {
		t.Errorf("%s = %.17g, want %.17g (±%g abs, ±%g rel)", what, got, want, abs, rel)
	}
}

// Exact paths agree with scipy up to summation order and libm differences.
const (
	exactAbs = 1e-12
	exactRel = 1e-9
)

func TestGoldenNumericExact(t *testing.T) {
	g, inputs, _ := loadGolden(t)
	for _, want := range g.Numeric {
		t.Run(want.Name, func(t *testing.T) {
			in, ok := inputs[want.Name]
			if !ok {
				t.Fatalf("no input for %s", want.Name)
			}
			d, p, err := KS(in.Ref, in.Cur)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "ks d", d, want.KSD, 1e-15, 0)
			check(t, "ks p (kstwobign+Stephens)", p, want.KSPStephens, 1e-15, exactRel)
			// Our asymptotic p-value versus scipy's exact-at-round(nₑ) one:
			// the documented agreement.
			check(t, "ks p vs ks_2samp asymp", p, want.KSPScipyAsymp, 1e-4, 0.05)

			w, err := Wasserstein(in.Ref, in.Cur)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "wasserstein", w, want.Wasserstein, exactAbs, exactRel)
			wn, err := NormalizedWasserstein(in.Ref, in.Cur)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "wasserstein norm", wn, want.WassersteinNorm, exactAbs, exactRel)

			for _, b := range []struct {
				bins    int
				psi, js float64
			}{{10, want.PSI10, want.JS10}, {20, want.PSI20, want.JS20}} {
				psi, err := PSI(in.Ref, in.Cur, b.bins)
				if err != nil {
					t.Fatal(err)
				}
				check(t, "psi", psi, b.psi, exactAbs, exactRel)
				js, err := JSBinned(in.Ref, in.Cur, b.bins)
				if err != nil {
					t.Fatal(err)
				}
				check(t, "js", js, b.js, exactAbs, exactRel)
			}
		})
	}
}

// Sketch-path tolerances at k = DefaultK, from the KLL bound (doc.go):
// each CDF is within ε ≈ 1.65% in rank, so D moves by at most 2ε and W by
// at most 2ε·range. PSI and binned JS have no clean bound (an edge moves by
// up to ε in rank and PSI's logarithm amplifies small shares); the
// tolerances below are what the sketch must achieve on these cases.
const (
	sketchEps    = 0.0165
	sketchPSIAbs = 0.02
	sketchPSIRel = 0.15
	sketchJSAbs  = 0.03
)

func sketchOf(t testing.TB, xs []float64) *Sketch {
	t.Helper()
	s, err := NewSketch(DefaultK)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range xs {
		s.Insert(x)
	}
	return s
}

func TestGoldenNumericSketch(t *testing.T) {
	g, inputs, _ := loadGolden(t)
	for _, want := range g.Numeric {
		t.Run(want.Name, func(t *testing.T) {
			in := inputs[want.Name]
			ref, cur := sketchOf(t, in.Ref), sketchOf(t, in.Cur)
			check(t, "ref mean", ref.Mean(), want.RefMean, exactAbs, exactRel)
			check(t, "ref std", ref.Std(), want.RefStd, exactAbs, exactRel)
			check(t, "cur mean", cur.Mean(), want.CurMean, exactAbs, exactRel)
			check(t, "cur std", cur.Std(), want.CurStd, exactAbs, exactRel)

			// Below k values a sketch is exact, so both paths must agree.
			exact := len(in.Ref) < DefaultK && len(in.Cur) < DefaultK
			dAbs, wAbs, psiAbs, psiRel, jsAbs := 2*sketchEps, 2*sketchEps*(max(ref.Max(), cur.Max())-min(ref.Min(), cur.Min())), sketchPSIAbs, sketchPSIRel, sketchJSAbs
			if exact {
				dAbs, wAbs, psiAbs, psiRel, jsAbs = 1e-15, exactAbs, exactAbs, exactRel, exactAbs
			}
			d, p, err := KSSketch(ref, cur)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "sketch ks d", d, want.KSD, dAbs, 0)
			if exact {
				check(t, "sketch ks p", p, want.KSPStephens, 1e-15, exactRel)
			}
			w, err := WassersteinSketch(ref, cur)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "sketch wasserstein", w, want.Wasserstein, wAbs, 0)
			wn, err := NormalizedWassersteinSketch(ref, cur)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "sketch wasserstein norm", wn, want.WassersteinNorm, wAbs/max(want.RefStd, 1e-3), exactRel)
			for _, b := range []struct {
				bins    int
				psi, js float64
			}{{10, want.PSI10, want.JS10}, {20, want.PSI20, want.JS20}} {
				psi, err := PSISketch(ref, cur, b.bins)
				if err != nil {
					t.Fatal(err)
				}
				check(t, "sketch psi", psi, b.psi, psiAbs, psiRel)
				js, err := JSSketch(ref, cur, b.bins)
				if err != nil {
					t.Fatal(err)
				}
				check(t, "sketch js", js, b.js, jsAbs, 0)
			}
		})
	}
}

func tableOf(t testing.TB, keys []string) *FreqTable {
	t.Helper()
	ft, err := NewFreqTable(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		ft.Insert(k)
	}
	return ft
}

func TestGoldenCategorical(t *testing.T) {
	g, _, inputs := loadGolden(t)
	for _, want := range g.Categorical {
		t.Run(want.Name, func(t *testing.T) {
			in := inputs[want.Name]
			ref, cur := tableOf(t, in.Ref), tableOf(t, in.Cur)
			stat, p, dof, err := ChiSquareFreq(ref, cur)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "chi2 stat", stat, want.Chi2Stat, exactAbs, exactRel)
			check(t, "chi2 p", p, want.Chi2P, 1e-15, exactRel)
			if dof != want.Chi2Dof {
				t.Errorf("chi2 dof = %d, want %d", dof, want.Chi2Dof)
			}
			js, err := JSFreq(ref, cur)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "js", js, want.JS, exactAbs, exactRel)
			check(t, "js base 2", js/math.Sqrt(math.Ln2), want.JSBase2, exactAbs, exactRel)
			psi, err := PSIFreq(ref, cur)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "psi", psi, want.PSI, exactAbs, exactRel)

			z, zp, err := ZTestFreq(ref, cur)
			if want.Z == nil {
				if err == nil {
					t.Errorf("z-test on %d categories: want ErrNotApplicable", len(want.Keys))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			check(t, "z", z, *want.Z, exactAbs, exactRel)
			check(t, "z p", zp, *want.ZP, 1e-15, exactRel)
		})
	}
}

func TestGoldenFunctions(t *testing.T) {
	g, _, _ := loadGolden(t)
	for _, c := range g.Functions.KSTwoBignSF {
		check(t, "kolmogorovSF", kolmogorovSF(c[0]), c[1], 1e-15, 1e-10)
	}
	for _, c := range g.Functions.Chi2SF {
		got := distuv.ChiSquared{K: c[1]}.Survival(c[0])
		check(t, "chi2 sf", got, c[2], 1e-15, 1e-10)
	}
}
