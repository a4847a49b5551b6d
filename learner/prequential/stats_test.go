package prequential

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// TestStatsGolden compares Wilcoxon and PairedT with SciPy's values,
// produced by testdata/stats_reference.py.
func TestStatsGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/stats_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden struct {
		Cases map[string]struct {
			A, B      []float64
			WilcoxonZ float64 `json:"wilcoxon_z"`
			WilcoxonP float64 `json:"wilcoxon_p"`
			T         float64 `json:"t"`
			TP        float64 `json:"t_p"`
		}
	}
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatal(err)
	}
	if len(golden.Cases) == 0 {
		t.Fatal("no golden cases")
	}
	near := func(got, want float64) bool { return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want)) }
	for name, c := range golden.Cases {
		t.Run(name, func(t *testing.T) {
			z, p := Wilcoxon(c.A, c.B)
			// SciPy reports z of the smaller rank sum for two-sided tests,
			// so compare magnitudes; the p-value is symmetric.
			if !near(math.Abs(z), math.Abs(c.WilcoxonZ)) || !near(p, c.WilcoxonP) {
				t.Errorf("Wilcoxon = z %v p %v, want |z| %v p %v", z, p, math.Abs(c.WilcoxonZ), c.WilcoxonP)
			}
			ts, tp := PairedT(c.A, c.B)
			if !near(ts, c.T) || !near(tp, c.TP) {
				t.Errorf("PairedT = t %v p %v, want %v %v", ts, tp, c.T, c.TP)
			}
		})
	}
}

func TestStatsDegenerate(t *testing.T) {
	tests := []struct {
		name      string
		a, b      []float64
		wantWP    float64
		wantTP    float64
		wantTSign float64
	}{
		{"empty", nil, nil, 1, 1, 0},
		{"all equal", []float64{1, 2, 3}, []float64{1, 2, 3}, 1, 1, 0},
		{"constant shift", []float64{2, 3, 4}, []float64{1, 2, 3}, -1, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, wp := Wilcoxon(tt.a, tt.b)
			if tt.wantWP >= 0 && wp != tt.wantWP {
				t.Errorf("Wilcoxon p = %v, want %v", wp, tt.wantWP)
			}
			if wp < 0 || wp > 1 || math.IsNaN(wp) {
				t.Errorf("Wilcoxon p = %v out of [0,1]", wp)
			}
			ts, tp := PairedT(tt.a, tt.b)
			if tp != tt.wantTP || (tt.wantTSign != 0 && math.Signbit(ts) != math.Signbit(tt.wantTSign)) {
				t.Errorf("PairedT = %v, %v, want p %v sign %v", ts, tp, tt.wantTP, tt.wantTSign)
			}
		})
	}
}
