package drift

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// trueRank is the number of values ≤ x in sorted.
func trueRank(sorted []float64, x float64) int {
	lo, hi := 0, len(sorted)
	for lo < hi {
		m := (lo + hi) / 2
		if sorted[m] <= x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// maxRankError returns max |Rank(x) − true rank|/n over every 97th value of
// the data and a few points outside it.
func maxRankError(s *Sketch, sorted []float64) float64 {
	n := float64(len(sorted))
	worst := 0.0
	probe := func(x float64) {
		worst = max(worst, math.Abs(float64(s.Rank(x))-float64(trueRank(sorted, x)))/n)
	}
	for i := 0; i < len(sorted); i += 97 {
		probe(sorted[i])
	}
	probe(sorted[0] - 1)
	probe(sorted[len(sorted)-1])
	return worst
}

type streamOrder struct {
	name string
	gen  func(r *rand.Rand, n int) []float64
}

var streamOrders = []streamOrder{
	{"normal", func(r *rand.Rand, n int) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = r.NormFloat64()
		}
		return x
	}},
	{"sorted", func(_ *rand.Rand, n int) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = float64(i)
		}
		return x
	}},
	{"reversed", func(_ *rand.Rand, n int) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = float64(n - i)
		}
		return x
	}},
	{"heavy_ties", func(r *rand.Rand, n int) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = float64(r.IntN(40))
		}
		return x
	}},
	{"lognormal", func(r *rand.Rand, n int) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = math.Exp(2 * r.NormFloat64())
		}
		return x
	}},
}

func TestSketchRankErrorBound(t *testing.T) {
	n := 300_000
	if testing.Short() {
		n = 50_000
	}
	for _, o := range streamOrders {
		t.Run(o.name, func(t *testing.T) {
			data := o.gen(rand.New(rand.NewPCG(1, 2)), n)
			s := sketchOf(t, data)
			sorted := slices.Sorted(slices.Values(data))
			if e := maxRankError(s, sorted); e > sketchEps {
				t.Errorf("max normalised rank error %.4f > %.4f", e, sketchEps)
			}
			// Memory bound: below 3k plus the minimum width of each level.
			if limit := 3*DefaultK + minLevelCap*len(s.levels); s.Retained() >= limit {
				t.Errorf("retained %d values, want < %d", s.Retained(), limit)
			}
			if s.Count() != int64(n) || s.Min() != sorted[0] || s.Max() != sorted[n-1] {
				t.Errorf("count/min/max = %d/%v/%v, want %d/%v/%v", s.Count(), s.Min(), s.Max(), n, sorted[0], sorted[n-1])
			}
		})
	}
}

func TestSketchMergeRankErrorAndMoments(t *testing.T) {
	n, parts := 200_000, 16
	if testing.Short() {
		n = 40_000
	}
	r := rand.New(rand.NewPCG(3, 4))
	data := make([]float64, n)
	for i := range data {
		data[i] = 10 + 3*r.NormFloat64()
	}
	merged := &Sketch{}
	for p := range parts {
		part := sketchOf(t, data[p*n/parts:(p+1)*n/parts])
		if err := merged.Merge(part); err != nil {
			t.Fatal(err)
		}
	}
	sorted := slices.Sorted(slices.Values(data))
	if e := maxRankError(merged, sorted); e > sketchEps {
		t.Errorf("merged max rank error %.4f > %.4f", e, sketchEps)
	}
	var mean, m2 float64
	for _, x := range data {
		mean += x
	}
	mean /= float64(n)
	for _, x := range data {
		m2 += (x - mean) * (x - mean)
	}
	check(t, "merged mean", merged.Mean(), mean, 1e-12, 1e-12)
	check(t, "merged variance", merged.Variance(), m2/float64(n), 1e-12, 1e-10)
	if merged.Count() != int64(n) || merged.Min() != sorted[0] || merged.Max() != sorted[n-1] {
		t.Errorf("merged count/min/max wrong")
	}
}

func TestSketchExactBelowK(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	data := make([]float64, DefaultK-1)
	for i := range data {
		data[i] = math.Round(r.NormFloat64()*10) / 10 // ties on purpose
	}
	s := sketchOf(t, data)
	sorted := slices.Sorted(slices.Values(data))
	n := len(sorted)
	for _, q := range []float64{0.001, 0.1, 0.25, 0.5, 0.77, 0.9, 0.999} {
		want := sorted[int(math.Ceil(q*float64(n)))-1] // inverted CDF
		if got := s.Quantile(q); got != want {
			t.Errorf("Quantile(%v) = %v, want %v", q, got, want)
		}
	}
	for _, x := range sorted {
		if got, want := s.CDF(x), float64(trueRank(sorted, x))/float64(n); got != want {
			t.Fatalf("CDF(%v) = %v, want %v", x, got, want)
		}
	}
}

func TestSketchEdgeCases(t *testing.T) {
	var s Sketch // zero value is usable
	if !math.IsNaN(s.Quantile(0.5)) || !math.IsNaN(s.CDF(0)) || !math.IsNaN(s.Mean()) || !math.IsNaN(s.Min()) {
		t.Error("empty sketch queries should be NaN")
	}
	for _, x := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		s.Insert(x)
	}
	if s.Count() != 0 || s.Missing() != 3 {
		t.Errorf("count/missing = %d/%d, want 0/3", s.Count(), s.Missing())
	}
	for _, x := range []float64{3, 1, 2} {
		s.Insert(x)
	}
	tests := []struct {
		q, want float64
	}{{-1, 1}, {0, 1}, {0.34, 2}, {0.5, 2}, {0.67, 3}, {1, 3}, {2, 3}}
	for _, tt := range tests {
		if got := s.Quantile(tt.q); got != tt.want {
			t.Errorf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if !math.IsNaN(s.Quantile(math.NaN())) {
		t.Error("Quantile(NaN) should be NaN")
	}
	if s.K() != DefaultK || s.Variance() != 2.0/3 {
		t.Errorf("k=%d variance=%v", s.K(), s.Variance())
	}
	for _, k := range []int{-1, 1, MinK - 1, MaxK + 1} {
		if _, err := NewSketch(k); err == nil {
			t.Errorf("NewSketch(%d) accepted", k)
		}
	}
}

func TestSketchDistinct(t *testing.T) {
	a := sketchOf(t, []float64{1, 0, 1, 1, 0})
	v, c, ok := a.Distinct()
	if !ok || !slices.Equal(v, []float64{0, 1}) || !slices.Equal(c, []int64{2, 3}) {
		t.Fatalf("Distinct = %v %v %v", v, c, ok)
	}
	b := sketchOf(t, []float64{2, 3, 4})
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	v, c, ok = a.Distinct()
	if !ok || !slices.Equal(v, []float64{0, 1, 2, 3, 4}) || !slices.Equal(c, []int64{2, 3, 1, 1, 1}) {
		t.Fatalf("merged Distinct = %v %v %v", v, c, ok)
	}
	a.Insert(5)
	if _, _, ok := a.Distinct(); ok {
		t.Error("6 distinct values reported as few")
	}
}

func TestSketchMergeRules(t *testing.T) {
	a, _ := NewSketch(100)
	b, _ := NewSketch(200)
	b.Insert(1)
	if err := a.Merge(b); !errors.Is(err, ErrIncompatible) {
		t.Errorf("merge k=200 into k=100: err = %v, want ErrIncompatible", err)
	}
	var z Sketch
	if err := z.Merge(b); err != nil || z.K() != 200 || z.Count() != 1 {
		t.Errorf("zero value merge: err=%v k=%d n=%d", err, z.K(), z.Count())
	}
	s := sketchOf(t, []float64{1, 2, 3, 4})
	if err := s.Merge(s); err != nil || s.Count() != 8 || s.Rank(2) != 4 {
		t.Errorf("self merge: err=%v n=%d rank(2)=%d", err, s.Count(), s.Rank(2))
	}
	if err := s.Merge(nil); err != nil {
		t.Error(err)
	}
	c := s.Clone()
	c.Insert(100)
	if s.Count() != 8 || c.Count() != 9 {
		t.Error("Clone shares state")
	}
	c.Reset()
	if c.Count() != 0 || c.Retained() != 0 || c.K() != DefaultK {
		t.Error("Reset left state")
	}
	c.Insert(7)
	if c.Quantile(0.5) != 7 {
		t.Error("sketch unusable after Reset")
	}
}

func TestSketchDeterministicEncoding(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	data := make([]float64, 10_000)
	for i := range data {
		data[i] = r.ExpFloat64()
	}
	b1, _ := sketchOf(t, data).MarshalBinary()
	b2, _ := sketchOf(t, data).MarshalBinary()
	if !bytes.Equal(b1, b2) {
		t.Fatal("same input gave different sketches")
	}
	var s Sketch
	if err := s.UnmarshalBinary(b1); err != nil {
		t.Fatal(err)
	}
	b3, _ := s.MarshalBinary()
	if !bytes.Equal(b1, b3) {
		t.Fatal("round trip changed the encoding")
	}
	// The decoded sketch keeps working like the original.
	orig := sketchOf(t, data)
	for _, x := range data[:500] {
		s.Insert(x)
		orig.Insert(x)
	}
	b4, _ := s.MarshalBinary()
	b5, _ := orig.MarshalBinary()
	if !bytes.Equal(b4, b5) {
		t.Fatal("decoded sketch diverged from the original after inserts")
	}
	if len(b1) > 8*3*DefaultK+200 {
		t.Errorf("encoding %d bytes, want < %d", len(b1), 8*3*DefaultK+200)
	}
}

func TestSketchDecodeRejects(t *testing.T) {
	good, _ := sketchOf(t, []float64{1, 2, 3, 4, 5, 6, 7}).MarshalBinary()
	mutate := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
	const lvl0 = 4 + 1 + 2 + 1 + 8 + 8 + 32 + 8 + 1 // offset of the level-0 length (few = many)
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"bad magic", mutate(func(b []byte) []byte { b[0] = 'X'; return b })},
		{"bad version", mutate(func(b []byte) []byte { b[4] = 9; return b })},
		{"k too small", mutate(func(b []byte) []byte { b[5], b[6] = 1, 0; return b })},
		{"zero levels", mutate(func(b []byte) []byte { b[7] = 0; return b })},
		{"truncated", good[:len(good)-3]},
		{"trailing", append(slices.Clone(good), 0)},
		{"count mismatch", mutate(func(b []byte) []byte { b[8]++; return b })},
		{"value NaN", mutate(func(b []byte) []byte {
			copy(b[lvl0+4:], []byte{0, 0, 0, 0, 0, 0, 0xf8, 0x7f})
			return b
		})},
		{"value above max", mutate(func(b []byte) []byte {
			copy(b[lvl0+4:], []byte{0, 0, 0, 0, 0, 0, 0x59, 0x40}) // 100
			return b
		})},
		{"huge level", mutate(func(b []byte) []byte {
			copy(b[lvl0:], []byte{0xff, 0xff, 0xff, 0x0f})
			return b
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Sketch
			if err := s.UnmarshalBinary(tt.data); !errors.Is(err, ErrCorrupt) {
				t.Errorf("err = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestSketchInsertDoesNotAllocate(t *testing.T) {
	s := &Sketch{}
	r := rand.New(rand.NewPCG(9, 10))
	for range 1_000_000 { // warm up: levels reach their steady sizes
		s.Insert(r.Float64())
	}
	allocs := testing.AllocsPerRun(10_000, func() { s.Insert(r.Float64()) })
	if allocs != 0 {
		t.Errorf("Insert allocates %v times per call", allocs)
	}
}

// Queries build a cached view; concurrent queries must be safe (run with
// -race).
func TestSketchConcurrentQueries(t *testing.T) {
	ref := sketchOf(t, benchValues(1, 20_000, 0))
	cur := sketchOf(t, benchValues(2, 20_000, 0.3))
	want, _, _ := KSSketch(ref, cur)
	cur.Insert(0) // invalidate the view so the goroutines race to build it
	want2, _, _ := KSSketch(ref, cur.Clone())
	done := make(chan float64, 8)
	for range cap(done) {
		go func() {
			_ = cur.Quantile(0.5)
			d, _, _ := KSSketch(ref, cur)
			done <- d
		}()
	}
	for range cap(done) {
		if d := <-done; d != want2 {
			t.Errorf("concurrent KS %v, want %v", d, want2)
		}
	}
	if want == 0 {
		t.Error("degenerate test: KS of shifted samples is 0")
	}
}
