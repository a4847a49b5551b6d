package topk

import (
	"math"
	"slices"
)

// Result is one retrieved item: its index in the Matrix and its score.
type Result struct {
	Index int32
	Score float32
}

// worse orders results by score, then by higher index, so that the kept set
// and the order are deterministic under ties.
func worse(a, b Result) bool {
	if a.Score != b.Score {
		return a.Score < b.Score
	}
	return a.Index > b.Index
}

// heap is a bounded min-heap holding the best k results seen so far; h[0]
// is the worst kept result.
type heap struct {
	h []Result
	k int
}

func (t *heap) reset(k int, buf []Result) {
	t.h = buf[:0]
	t.k = k
}

// threshold is the score a new result must beat to be kept.
func (t *heap) threshold() float32 {
	if len(t.h) < t.k {
		return -math.MaxFloat32
	}
	return t.h[0].Score
}

// push offers r; it is kept if it is better than the worst kept result.
func (t *heap) push(r Result) {
	if len(t.h) < t.k {
		t.h = append(t.h, r)
		i := len(t.h) - 1
		for i > 0 {
			p := (i - 1) / 2
			if !worse(t.h[i], t.h[p]) {
				break
			}
			t.h[i], t.h[p] = t.h[p], t.h[i]
			i = p
		}
		return
	}
	if !worse(t.h[0], r) {
		return
	}
	t.h[0] = r
	i := 0
	n := len(t.h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && worse(t.h[r], t.h[l]) {
			c = r
		}
		if !worse(t.h[c], t.h[i]) {
			break
		}
		t.h[i], t.h[c] = t.h[c], t.h[i]
		i = c
	}
}

// sorted returns the kept results best first.
func (t *heap) sorted() []Result {
	slices.SortFunc(t.h, func(a, b Result) int {
		if worse(b, a) {
			return -1
		}
		if worse(a, b) {
			return 1
		}
		return 0
	})
	return t.h
}
