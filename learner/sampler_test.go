package learner

import (
	"math"
	"testing"
)

func TestPopularitySampler(t *testing.T) {
	s, err := NewPopularitySampler(100, 0.2, 7)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Sample(); ok {
		t.Fatal("empty sampler returned an item")
	}
	// Fill the window past capacity so eviction is exercised: the first
	// 50 observations (item 9) must fall out.
	for range 50 {
		s.Observe(9)
	}
	for k := range 100 {
		s.Observe(int32(k % 4)) // items 0-3, 25 each
	}
	s.SetCatalogSize(10)
	var sum float64
	for i := range int32(10) {
		sum += s.Prob(i)
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Fatalf("probabilities sum to %v", sum)
	}
	if p := s.Prob(9); math.Abs(p-0.02) > 1e-9 {
		t.Fatalf("evicted item prob = %v, want uniform share 0.2/10", p)
	}
	const draws = 200000
	counts := make([]float64, 10)
	for range draws {
		i, ok := s.Sample()
		if !ok || i < 0 || i >= 10 {
			t.Fatalf("sample %d, %v", i, ok)
		}
		counts[i]++
	}
	for i := range int32(10) {
		p := s.Prob(i)
		got := counts[i] / draws
		if se := math.Sqrt(p * (1 - p) / draws); math.Abs(got-p) > 5*se {
			t.Errorf("item %d drawn %.4f, want %.4f", i, got, p)
		}
	}
}

func TestPopularitySamplerArgs(t *testing.T) {
	if _, err := NewPopularitySampler(0, 0, 1); err == nil {
		t.Error("window 0 accepted")
	}
	if _, err := NewPopularitySampler(10, math.NaN(), 1); err == nil {
		t.Error("NaN uniform share accepted")
	}
}

func BenchmarkPopularitySampler(b *testing.B) {
	s, _ := NewPopularitySampler(2000, 0.1, 1)
	for k := range 5000 {
		s.Observe(int32(k % 977))
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		j, _ := s.Sample()
		s.Observe(j)
	}
}

func TestLogitOffset(t *testing.T) {
	s, _ := NewPopularitySampler(4, 0, 1)
	for _, i := range []int32{0, 0, 1, 2} {
		s.Observe(i)
	}
	// q(0) = 1/2 over a catalogue of 3: offset −log(3/2).
	if got, want := s.LogitOffset(0), -float32(math.Log(1.5)); math.Abs(float64(got-want)) > 1e-6 {
		t.Errorf("offset(0) = %v, want %v", got, want)
	}
	// An unseen item is floored at 1/(window + N) with N = 6 → −log(6/10).
	if got, want := s.LogitOffset(5), -float32(math.Log(0.6)); math.Abs(float64(got-want)) > 1e-6 {
		t.Errorf("offset(unseen) = %v, want %v", got, want)
	}
	u, _ := NewPopularitySampler(4, 1, 1)
	u.Observe(0)
	u.SetCatalogSize(8)
	if got := u.LogitOffset(3); math.Abs(float64(got)) > 1e-6 {
		t.Errorf("uniform sampling offset = %v, want 0", got)
	}
}
