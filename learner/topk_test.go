package learner

import (
	"math"
	"slices"
	"testing"
)

func TestTopK(t *testing.T) {
	var st uint64 = 11
	rnd := func() float32 {
		st += 0x9E3779B97F4A7C15
		return float32(splitmix(st)%50) / 10 // coarse: many ties
	}
	for _, tc := range []struct{ n, k int }{{0, 5}, {3, 10}, {100, 10}, {1000, 1}, {1000, 50}, {257, 0}} {
		scores := make([]float32, tc.n)
		var skip ItemSet
		for i := range scores {
			scores[i] = rnd()
			if i%7 == 0 {
				skip.Add(int32(i))
			}
			if i%11 == 0 {
				scores[i] = float32(math.Inf(-1))
			}
		}
		var want []Scored
		for i, s := range scores {
			if !skip.Has(int32(i)) && !math.IsInf(float64(s), -1) {
				want = append(want, Scored{int32(i), s})
			}
		}
		slices.SortFunc(want, func(a, b Scored) int {
			if better(a, b) {
				return -1
			}
			if better(b, a) {
				return 1
			}
			return 0
		})
		want = want[:min(tc.k, len(want))]
		got := TopK(scores, tc.k, skip, nil)
		if !slices.Equal(got, want) {
			t.Errorf("n=%d k=%d:\n got %v\nwant %v", tc.n, tc.k, got, want)
		}
	}
}

func TestItemSet(t *testing.T) {
	var s ItemSet
	for _, i := range []int32{0, 63, 64, 1000} {
		s.Add(i)
	}
	for i := range int32(1100) {
		want := i == 0 || i == 63 || i == 64 || i == 1000
		if s.Has(i) != want {
			t.Fatalf("Has(%d) = %v", i, !want)
		}
	}
}

func TestTopKDoesNotAllocate(t *testing.T) {
	scores := make([]float32, 5000)
	for i := range scores {
		scores[i] = float32(i % 97)
	}
	dst := make([]Scored, 0, 10)
	if a := testing.AllocsPerRun(20, func() { dst = TopK(scores, 10, nil, dst) }); a != 0 {
		t.Errorf("TopK allocates %v times", a)
	}
}
