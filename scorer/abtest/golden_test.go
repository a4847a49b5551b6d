package abtest

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// golden is testdata/golden.json, written by testdata/golden.py with
// statsmodels.
type golden struct {
	Z95    float64 `json:"z95"`
	Wilson []struct {
		K, N int64
		CI   [2]float64
	} `json:"wilson"`
	ZTest []struct {
		K1     int64      `json:"k1"`
		N1     int64      `json:"n1"`
		K0     int64      `json:"k0"`
		N0     int64      `json:"n0"`
		Z      float64    `json:"z"`
		P      float64    `json:"p"`
		DiffCI [2]float64 `json:"diff_ci"`
	} `json:"ztest"`
	Ratio []struct {
		Name  string       `json:"name"`
		Lists [][2]float64 `json:"lists"` // [impressions, watch seconds]
		Mean  float64      `json:"mean"`
		SE    float64      `json:"se"`
		CI    [2]float64   `json:"ci"`
	} `json:"ratio"`
}

func loadGolden(t *testing.T) golden {
	t.Helper()
	b, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Wilson) == 0 || len(g.ZTest) == 0 || len(g.Ratio) == 0 {
		t.Fatal("golden.json has empty sections")
	}
	return g
}

// near reports whether got is within a relative 1e-9 (absolute near 0)
// of want: the references sum in another order.
func near(got, want float64) bool {
	return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want))
}

func TestGoldenZ95(t *testing.T) {
	if g := loadGolden(t); g.Z95 != Z95 {
		t.Fatalf("Z95 %v, scipy norm.ppf(0.975) %v", Z95, g.Z95)
	}
}

func TestGoldenWilson(t *testing.T) {
	for _, c := range loadGolden(t).Wilson {
		lo, hi := Wilson(c.K, c.N, Z95)
		if !near(lo, c.CI[0]) || !near(hi, c.CI[1]) {
			t.Errorf("Wilson(%d, %d) = [%v, %v], statsmodels [%v, %v]", c.K, c.N, lo, hi, c.CI[0], c.CI[1])
		}
	}
}

func TestGoldenTwoProportion(t *testing.T) {
	for _, c := range loadGolden(t).ZTest {
		z, p := TwoProportionZ(c.K1, c.N1, c.K0, c.N0)
		if !near(z, c.Z) || !near(p, c.P) {
			t.Errorf("TwoProportionZ(%d/%d vs %d/%d) = z %v p %v, statsmodels z %v p %v", c.K1, c.N1, c.K0, c.N0, z, p, c.Z, c.P)
		}
		lo, hi := DiffCI(c.K1, c.N1, c.K0, c.N0, Z95)
		if !near(lo, c.DiffCI[0]) || !near(hi, c.DiffCI[1]) {
			t.Errorf("DiffCI(%d/%d vs %d/%d) = [%v, %v], statsmodels [%v, %v]", c.K1, c.N1, c.K0, c.N0, lo, hi, c.DiffCI[0], c.DiffCI[1])
		}
	}
}

func TestGoldenRatio(t *testing.T) {
	for _, c := range loadGolden(t).Ratio {
		var r Ratio
		r.Add(5, 0) // an empty list counts for nothing
		for _, l := range c.Lists {
			r.Add(l[1], l[0])
		}
		lo, hi := r.CI(Z95)
		if r.Clusters() != int64(len(c.Lists)) || !near(r.Mean(), c.Mean) || !near(r.StdErr(), c.SE) || !near(lo, c.CI[0]) || !near(hi, c.CI[1]) {
			t.Errorf("%s: mean %v se %v ci [%v, %v]; statsmodels OLS clustered by list: mean %v se %v ci %v",
				c.Name, r.Mean(), r.StdErr(), lo, hi, c.Mean, c.SE, c.CI)
		}
	}
}

func TestEdgeCases(t *testing.T) {
	if z, p := TwoProportionZ(0, 10, 0, 12); z != 0 || p != 1 {
		t.Errorf("no clicks anywhere: z %v p %v, want 0 and 1", z, p)
	}
	if z, p := TwoProportionZ(10, 10, 12, 12); z != 0 || p != 1 {
		t.Errorf("all clicked: z %v p %v, want 0 and 1", z, p)
	}
	var r Ratio
	if r.Mean() != 0 || !math.IsNaN(r.StdErr()) {
		t.Error("empty ratio")
	}
	r.Add(3, 2)
	if r.Mean() != 1.5 || !math.IsNaN(r.StdErr()) {
		t.Error("one cluster: want a mean and no standard error")
	}
	for _, f := range []func(){
		func() { Wilson(0, 0, Z95) },
		func() { Wilson(3, 2, Z95) },
		func() { TwoProportionZ(1, 0, 1, 1) },
		func() { DiffCI(-1, 2, 1, 1, Z95) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic on a precondition violated")
				}
			}()
			f()
		}()
	}
}
