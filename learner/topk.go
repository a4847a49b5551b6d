package learner

// ItemSet is a set of dense item indices, one bit per item; the zero value
// is empty. It is how callers exclude items a user has already consumed.
type ItemSet []uint64

// Add inserts item into the set, growing it as needed.
func (s *ItemSet) Add(item int32) {
	w := int(item >> 6)
	if w >= len(*s) {
		*s = append(*s, make([]uint64, w+1-len(*s))...)
	}
	(*s)[w] |= 1 << (uint(item) & 63)
}

// Has reports whether item is in the set.
func (s ItemSet) Has(item int32) bool {
	w := int(item >> 6)
	return w < len(s) && s[w]&(1<<(uint(item)&63)) != 0
}

// Scored is an item with its score.
type Scored struct {
	Item  int32
	Score float32
}

// better orders results: higher score first, then lower index, so that top-K
// lists are deterministic under ties.
func better(a, b Scored) bool {
	return a.Score > b.Score || (a.Score == b.Score && a.Item < b.Item)
}

// TopK returns the k best items of scores (item i scores scores[i]), best
// first, skipping items in skip and items scored -Inf. It reuses dst's
// storage: with cap(dst) ≥ k it does not allocate. It keeps a bounded
// min-heap, so a query costs O(n log k).
func TopK(scores []float32, k int, skip ItemSet, dst []Scored) []Scored {
	h := dst[:0]
	if k <= 0 {
		return h
	}
	for i, s := range scores {
		it := int32(i)
		if s < -3.4e38 || skip.Has(it) {
			continue
		}
		c := Scored{Item: it, Score: s}
		if len(h) < k {
			h = append(h, c)
			siftUp(h, len(h)-1)
			continue
		}
		if better(c, h[0]) {
			h[0] = c
			siftDown(h, 0)
		}
	}
	// Heap-sort in place: repeatedly move the worst to the end.
	for n := len(h) - 1; n > 0; n-- {
		h[0], h[n] = h[n], h[0]
		siftDown(h[:n], 0)
	}
	return h
}

// The heap keeps the worst result at the root.
func siftUp(h []Scored, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !better(h[p], h[i]) {
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func siftDown(h []Scored, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		w := l
		if r := l + 1; r < len(h) && better(h[l], h[r]) {
			w = r
		}
		if !better(h[i], h[w]) {
			return
		}
		h[i], h[w] = h[w], h[i]
		i = w
	}
}
