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

// collector keeps the best k results offered to it. Instead of a heap
// (a sift of log k swaps per kept result, which at k = 200 cost as much as
// a fifth of a search) it appends to a buffer of room for about 2k and,
// when the buffer is full, keeps the best k by quickselect: O(1)
// amortised per offered result. threshold rises at each compaction, and
// the kernels compare whole blocks against it. Results are held as keys
// (see resultKey) so that the selection compares integers.
type collector struct {
	buf []uint64
	k   int
	// floor is the key of the worst result kept by the last compaction;
	// only better results are taken, and thr is its score. full says there
	// was a compaction.
	floor uint64
	thr   float32
	full  bool
}

// resultKey maps a result to an integer that orders like worse: a larger
// key is a better result (higher score, then lower index).
func resultKey(r Result) uint64 {
	b := math.Float32bits(r.Score + 0) // -0 + 0 = +0: worse calls them equal

	if b>>31 != 0 {
		b = ^b // negative: larger magnitude sorts lower
	} else {
		b |= 1 << 31
	}
	return uint64(b)<<32 | uint64(^uint32(r.Index))
}

func keyResult(k uint64) Result {
	b := uint32(k >> 32)
	if b>>31 != 0 {
		b &^= 1 << 31
	} else {
		b = ^b
	}
	return Result{Index: int32(^uint32(k)), Score: math.Float32frombits(b)}
}

// collectorSlack is the least room beyond k, so that small k do not
// compact every few results.
const collectorSlack = 64

func (c *collector) reset(k int) {
	c.k, c.full, c.thr = k, false, -math.MaxFloat32
	if n := k + max(k, collectorSlack); cap(c.buf) < n {
		c.buf = make([]uint64, 0, n)
	}
	c.buf = c.buf[:0]
}

// threshold is the score a new result must beat to be kept.
func (c *collector) threshold() float32 { return c.thr }

// push offers r.
func (c *collector) push(r Result) {
	k := resultKey(r)
	if c.full && k <= c.floor {
		return
	}
	c.buf = append(c.buf, k)
	if len(c.buf) == cap(c.buf) {
		c.compact()
	}
}

// compact keeps the best k results (in no order) and raises the floor.
func (c *collector) compact() {
	if len(c.buf) <= c.k {
		return
	}
	selectLargest(c.buf, c.k)
	c.buf = c.buf[:c.k]
	c.floor, c.full = slices.Min(c.buf), true
	c.thr = keyResult(c.floor).Score
}

// sorted appends the kept results, best first, to out[:0] and returns it.
func (c *collector) sorted(out []Result) []Result {
	c.compact()
	slices.Sort(c.buf)
	out = out[:0]
	for i := len(c.buf) - 1; i >= 0; i-- {
		out = append(out, keyResult(c.buf[i]))
	}
	return out
}

// kept appends the kept results, in no order, to out[:0] and returns it.
func (c *collector) kept(out []Result) []Result {
	c.compact()
	out = out[:0]
	for _, k := range c.buf {
		out = append(out, keyResult(k))
	}
	return out
}

// selectLargest rearranges a so that a[:k] holds its k largest values (in
// no particular order): quickselect with a median-of-three pivot.
func selectLargest(a []uint64, k int) {
	lo, hi := 0, len(a)-1
	for hi > lo {
		if hi-lo < 16 {
			slices.Sort(a[lo : hi+1])
			slices.Reverse(a[lo : hi+1])
			return
		}
		mid := lo + (hi-lo)/2
		// Order a[lo] ≥ a[mid] ≥ a[hi]; the median is the pivot.
		if a[lo] < a[mid] {
			a[lo], a[mid] = a[mid], a[lo]
		}
		if a[mid] < a[hi] {
			a[mid], a[hi] = a[hi], a[mid]
			if a[lo] < a[mid] {
				a[lo], a[mid] = a[mid], a[lo]
			}
		}
		p := a[mid]
		i, j := lo, hi
		for i <= j {
			for a[i] > p {
				i++
			}
			for a[j] < p {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		// Now a[lo..j] ≥ p and a[i..hi] ≤ p.
		switch {
		case k-1 <= j:
			hi = j
		case k-1 >= i:
			lo = i
		default:
			return
		}
	}
}
