package drift

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestMethodNames(t *testing.T) {
	for m := MethodAuto; m <= MethodZTest; m++ {
		got, err := ParseMethod(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMethod(%q) = %v, %v", m.String(), got, err)
		}
		b, err := m.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Method
		if err := back.UnmarshalText(b); err != nil || back != m {
			t.Errorf("text round trip of %v: %v, %v", m, back, err)
		}
	}
	if _, err := ParseMethod("PSI"); err == nil {
		t.Error("ParseMethod is case-sensitive: PSI should fail")
	}
	if _, err := Method(99).MarshalText(); err == nil || Method(99).String() != "method(99)" {
		t.Error("invalid method marshalled")
	}
	for _, k := range []Kind{KindNumeric, KindCategorical} {
		if got, err := ParseKind(k.String()); err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v", k, got, err)
		}
	}
	if _, err := ParseKind("ordinal"); err == nil {
		t.Error("ParseKind accepted ordinal")
	}
}

func TestDefaultMethod(t *testing.T) {
	tests := []struct {
		kind    Kind
		refN    int64
		nUnique int
		want    Method
	}{
		{KindNumeric, 1000, 6, MethodKS},
		{KindNumeric, 1000, 5, MethodChiSquare},
		{KindNumeric, 10, 2, MethodZTest},
		{KindNumeric, 1001, 6, MethodWasserstein},
		{KindNumeric, 1001, 3, MethodJS},
		{KindCategorical, 1000, 100, MethodChiSquare},
		{KindCategorical, 500, 2, MethodZTest},
		{KindCategorical, 1, 1, MethodZTest},
		{KindCategorical, 5000, 2, MethodJS},
		{KindCategorical, 5000, 100, MethodJS},
	}
	for _, tt := range tests {
		if got := DefaultMethod(tt.kind, tt.refN, tt.nUnique); got != tt.want {
			t.Errorf("DefaultMethod(%v, %d, %d) = %v, want %v", tt.kind, tt.refN, tt.nUnique, got, tt.want)
		}
	}
	for m, want := range map[Method]float64{MethodKS: 0.05, MethodChiSquare: 0.05, MethodZTest: 0.05, MethodPSI: 0.1, MethodJS: 0.1, MethodWasserstein: 0.1} {
		if got := m.DefaultThreshold(); got != want {
			t.Errorf("%v threshold %v, want %v", m, got, want)
		}
	}
}

func normalSketch(t *testing.T, seed uint64, n int, mean float64) *Sketch {
	r := rand.New(rand.NewPCG(seed, 99))
	s := &Sketch{}
	for range n {
		s.Insert(mean + r.NormFloat64())
	}
	return s
}

func TestCompareSketches(t *testing.T) {
	smallRef, bigRef := normalSketch(t, 1, 800, 0), normalSketch(t, 2, 5000, 0)
	same, shifted := normalSketch(t, 3, 2000, 0), normalSketch(t, 4, 2000, 0.5)
	bits := func(seed uint64, n int, p float64) *Sketch {
		r := rand.New(rand.NewPCG(seed, 7))
		s := &Sketch{}
		for range n {
			if r.Float64() < p {
				s.Insert(1)
			} else {
				s.Insert(0)
			}
		}
		return s
	}
	tests := []struct {
		name     string
		ref, cur *Sketch
		opt      Options
		method   Method
		drifted  bool
	}{
		{"small ref same → KS", smallRef, same, Options{}, MethodKS, false},
		{"small ref shifted → KS", smallRef, shifted, Options{}, MethodKS, true},
		{"big ref same → Wasserstein", bigRef, same, Options{}, MethodWasserstein, false},
		{"big ref shifted → Wasserstein", bigRef, shifted, Options{}, MethodWasserstein, true},
		{"explicit PSI", bigRef, shifted, Options{Method: MethodPSI}, MethodPSI, true},
		{"explicit PSI high threshold", bigRef, shifted, Options{Method: MethodPSI, Threshold: 0.5}, MethodPSI, false},
		{"explicit JS", bigRef, same, Options{Method: MethodJS, Bins: 20}, MethodJS, false},
		{"binary small → Z", bits(1, 500, 0.3), bits(2, 500, 0.45), Options{}, MethodZTest, true},
		{"binary big → JS", bits(1, 5000, 0.3), bits(2, 5000, 0.31), Options{}, MethodJS, false},
		{"binary chi-square", bits(1, 500, 0.3), bits(2, 500, 0.3), Options{Method: MethodChiSquare}, MethodChiSquare, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := CompareSketches(tt.ref, tt.cur, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			if res.Method != tt.method || res.Drifted != tt.drifted {
				t.Errorf("got %+v, want method %v drifted %v", res, tt.method, tt.drifted)
			}
			if res.N != tt.cur.Count() || res.RefN != tt.ref.Count() || res.Threshold == 0 {
				t.Errorf("sizes/threshold not filled: %+v", res)
			}
		})
	}
	if _, err := CompareSketches(bigRef, same, Options{Method: MethodChiSquare}); !errors.Is(err, ErrNotApplicable) {
		t.Errorf("chi-square on continuous: %v", err)
	}
	if _, err := CompareSketches(bigRef, &Sketch{}, Options{}); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty window: %v", err)
	}
	if _, err := CompareSketches(bigRef, same, Options{Threshold: -1}); err == nil {
		t.Error("negative threshold accepted")
	}
}

func TestCompareTables(t *testing.T) {
	ref := tableOf(t, strings.Split("a b c a b a d a b c", " "))
	cur := tableOf(t, strings.Split("a b c a b a d a b c", " "))
	res, err := CompareTables(ref, cur, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Method != MethodChiSquare || res.Drifted || res.PValue != 1 || res.Score != 0 {
		t.Errorf("identical tables: %+v", res)
	}
	for _, m := range []Method{MethodKS, MethodWasserstein} {
		if _, err := CompareTables(ref, cur, Options{Method: m}); !errors.Is(err, ErrNotApplicable) {
			t.Errorf("%v on categories: %v", m, err)
		}
	}
	res, err = CompareTables(ref, tableOf(t, []string{"z", "z", "z"}), Options{Method: MethodJS})
	if err != nil || !res.Drifted {
		t.Errorf("disjoint JS: %+v %v", res, err)
	}
	if _, err := CompareTables(ref, &FreqTable{}, Options{}); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty window: %v", err)
	}
}

func TestResultJSON(t *testing.T) {
	tests := []struct {
		r    Result
		want string
	}{
		{Result{Method: MethodKS, Score: 0.2, PValue: 0.01, Threshold: 0.05, Drifted: true, N: 10, RefN: 20},
			`{"method":"ks","score":0.2,"p_value":0.01,"threshold":0.05,"drifted":true,"n":10,"ref_n":20}`},
		{Result{Method: MethodPSI, Score: 0.3, Threshold: 0.1, Drifted: true, N: 10, RefN: 20},
			`{"method":"psi","score":0.3,"threshold":0.1,"drifted":true,"n":10,"ref_n":20}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.r)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.want {
			t.Errorf("got %s\nwant %s", b, tt.want)
		}
		var back Result
		if err := json.Unmarshal(b, &back); err != nil || back != tt.r {
			t.Errorf("round trip: %+v, %v", back, err)
		}
	}
}
