package drift

import (
	"cmp"
	"fmt"
	"slices"
)

const (
	// DefaultFreqCapacity is how many distinct categories a FreqTable
	// counts exactly when no capacity is given.
	DefaultFreqCapacity = 1000
	// MaxFreqCapacity bounds the capacity (and what a decoder accepts).
	MaxFreqCapacity = 1 << 20
)

// FreqTable counts categorical values in bounded memory. While at most
// Capacity distinct keys have been seen, every count is exact. Beyond that
// it is a Misra–Gries summary: a new key finding the table full lowers
// every counter (and itself) by the smallest of them, and the mass removed
// goes to an "other" bucket, so that Σ counts + Other = Total always. A
// tracked count underestimates the true count by at most Other/(Capacity+1),
// and any key whose true share exceeds 1/(Capacity+1) is tracked. Merging
// keeps the same bound (Agarwal et al., "Mergeable Summaries", 2012).
//
// The table keeps the key strings it is given; clone a key (strings.Clone)
// that aliases a large buffer. A FreqTable is not safe for concurrent use. The zero value is an empty
// table with DefaultFreqCapacity.
type FreqTable struct {
	capacity int
	counts   map[string]int64
	other    int64
	total    int64
}

// Category is one tracked key and its count.
type Category struct {
	Key   string `json:"key"`
	Count int64  `json:"count"`
}

// NewFreqTable returns an empty table that counts up to capacity distinct
// keys exactly (DefaultFreqCapacity when capacity is 0).
func NewFreqTable(capacity int) (*FreqTable, error) {
	if capacity == 0 {
		capacity = DefaultFreqCapacity
	}
	if capacity < 1 || capacity > MaxFreqCapacity {
		return nil, fmt.Errorf("drift: freq table capacity %d outside [1, %d]", capacity, MaxFreqCapacity)
	}
	t := &FreqTable{}
	t.init(capacity)
	return t, nil
}

func (t *FreqTable) init(capacity int) {
	t.capacity = capacity
	// Start small and let the map grow: a drift window holds one table per
	// categorical signal, most with a handful of keys, and preallocating
	// thousands of slots for each cost ~200 KB per table per window.
	t.counts = make(map[string]int64, min(capacity, 16)+1)
}

// Insert counts one occurrence of key.
func (t *FreqTable) Insert(key string) { t.Add(key, 1) }

// Add counts n occurrences of key; n ≤ 0 is ignored.
func (t *FreqTable) Add(key string, n int64) {
	if n <= 0 {
		return
	}
	if t.counts == nil {
		t.init(DefaultFreqCapacity)
	}
	t.total += n
	if c, ok := t.counts[key]; ok {
		t.counts[key] = c + n
		return
	}
	t.counts[key] = n
	if len(t.counts) > t.capacity {
		t.reduce()
	}
}

// reduce restores len(counts) ≤ capacity by subtracting the
// (capacity+1)-th largest count from every counter and dropping those that
// reach zero; the subtracted mass goes to other. Each call removes at least
// capacity+1 units, so its O(capacity) cost is amortised O(1) per unit added.
func (t *FreqTable) reduce() {
	var cut int64
	if len(t.counts) == t.capacity+1 {
		first := true
		for _, c := range t.counts {
			if first || c < cut {
				cut, first = c, false
			}
		}
	} else {
		all := make([]int64, 0, len(t.counts))
		for _, c := range t.counts {
			all = append(all, c)
		}
		slices.SortFunc(all, func(a, b int64) int { return cmp.Compare(b, a) })
		cut = all[t.capacity]
	}
	for k, c := range t.counts {
		if c <= cut {
			t.other += c
			delete(t.counts, k)
		} else {
			t.other += cut
			t.counts[k] = c - cut
		}
	}
}

// Merge adds every count of o into t; t keeps its capacity. o is not
// modified.
func (t *FreqTable) Merge(o *FreqTable) {
	if o == nil || o.total == 0 {
		return
	}
	if t.counts == nil {
		t.init(o.Capacity())
	}
	if o == t {
		for k, c := range t.counts {
			t.counts[k] = 2 * c
		}
		t.other *= 2
		t.total *= 2
		return
	}
	for k, c := range o.counts {
		t.counts[k] += c
	}
	t.other += o.other
	t.total += o.total
	if len(t.counts) > t.capacity {
		t.reduce()
	}
}

// Clone returns a deep copy of t.
func (t *FreqTable) Clone() *FreqTable {
	c := &FreqTable{}
	c.init(t.Capacity())
	for k, n := range t.counts {
		c.counts[k] = n
	}
	c.other, c.total = t.other, t.total
	return c
}

// Reset empties t, keeping its capacity.
func (t *FreqTable) Reset() {
	clear(t.counts)
	t.other, t.total = 0, 0
}

// Capacity returns how many keys t tracks.
func (t *FreqTable) Capacity() int {
	if t.capacity == 0 {
		return DefaultFreqCapacity
	}
	return t.capacity
}

// Total returns the number of occurrences counted.
func (t *FreqTable) Total() int64 { return t.total }

// Other returns the occurrences not attributed to a tracked key.
func (t *FreqTable) Other() int64 { return t.other }

// Exact reports whether every count is exact (no key was ever evicted).
func (t *FreqTable) Exact() bool { return t.other == 0 }

// Len returns the number of tracked keys.
func (t *FreqTable) Len() int { return len(t.counts) }

// Count returns the (lower-bound) count of key and whether it is tracked.
func (t *FreqTable) Count(key string) (n int64, tracked bool) {
	n, tracked = t.counts[key]
	return n, tracked
}

// Categories returns the tracked keys by descending count, ties by key.
func (t *FreqTable) Categories() []Category {
	out := make([]Category, 0, len(t.counts))
	for k, c := range t.counts {
		out = append(out, Category{Key: k, Count: c})
	}
	slices.SortFunc(out, func(a, b Category) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	return out
}

// alignTables returns count vectors over the sorted union of both tables'
// keys, with a final "other" column when either table has evicted mass. A
// key tracked by one table only counts 0 in the other, which is exact when
// the other table is exact and a lower bound otherwise.
func alignTables(ref, cur *FreqTable) (r, c []float64) {
	keys := make([]string, 0, len(ref.counts)+len(cur.counts))
	for k := range ref.counts {
		keys = append(keys, k)
	}
	for k := range cur.counts {
		if _, ok := ref.counts[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	n := len(keys)
	if ref.other > 0 || cur.other > 0 {
		n++
	}
	r, c = make([]float64, n), make([]float64, n)
	for i, k := range keys {
		r[i], c[i] = float64(ref.counts[k]), float64(cur.counts[k])
	}
	if n > len(keys) {
		r[n-1], c[n-1] = float64(ref.other), float64(cur.other)
	}
	return r, c
}

// PSIFreq returns the PSI between two categorical tables (see PSICounts).
func PSIFreq(ref, cur *FreqTable) (float64, error) {
	r, c := alignTables(ref, cur)
	return PSICounts(r, c)
}

// JSFreq returns the Jensen–Shannon distance (base e) between two
// categorical tables.
func JSFreq(ref, cur *FreqTable) (float64, error) {
	r, c := alignTables(ref, cur)
	return JS(r, c)
}

// ChiSquareFreq runs the chi-square homogeneity test on two categorical
// tables (see ChiSquare).
func ChiSquareFreq(ref, cur *FreqTable) (stat, p float64, dof int, err error) {
	r, c := alignTables(ref, cur)
	return ChiSquare(r, c)
}

// ZTestFreq runs the two-proportion Z-test on two tables of a binary
// signal: the union of their keys must be at most two exact categories. The
// "success" is the first key in sort order; the two-sided p-value does not
// depend on that choice.
func ZTestFreq(ref, cur *FreqTable) (z, p float64, err error) {
	if ref.other > 0 || cur.other > 0 {
		return 0, 0, fmt.Errorf("drift: z-test: table overflowed: %w", ErrNotApplicable)
	}
	r, c := alignTables(ref, cur)
	if len(r) > 2 {
		return 0, 0, fmt.Errorf("drift: z-test: %d categories, want at most 2: %w", len(r), ErrNotApplicable)
	}
	var rp, cp int64
	if len(r) > 0 {
		rp, cp = int64(r[0]), int64(c[0])
	}
	return ZTest(rp, ref.total, cp, cur.total)
}
