package topk

import (
	"math"
	"math/bits"
	"sync"
)

// MatrixIndex is an Index over a Matrix that its owner keeps up to date:
// Exact and Quantized.
type MatrixIndex interface {
	Index
	// Update runs f with exclusive access to the matrix.
	Update(f func(m *Matrix) error) error
	// View runs f with shared access to the matrix.
	View(f func(m *Matrix))
}

var (
	_ MatrixIndex = (*Exact)(nil)
	_ MatrixIndex = (*Quantized)(nil)
)

// DefaultRescoreMargin is how many candidates beyond K the Quantized index
// retrieves by int8 score before re-scoring them exactly.
const DefaultRescoreMargin = 32

// Quantized is approximate maximum-inner-product search in two steps: a
// scan of an int8 copy of the matrix (a quarter of the bytes of the float32
// matrix, and a quarter of the instructions per multiply-add) keeps the
// best K + margin items by approximate score, and those are then re-scored
// exactly in float32 from the matrix, so Out holds exact scores and the
// order is exact among the candidates. It misses a true top-K item only
// when int8 rounding pushes it below K + margin others; recall@K against
// Exact is measured by the tests and benchmarks (RecallAtK).
//
// Items are quantised with one scale per item (63 levels each side of
// zero), queries with one scale per query (127 levels).
type Quantized struct {
	mu      sync.RWMutex
	m       *Matrix
	margin  int
	scratch sync.Pool
}

// NewQuantized returns an int8 index over m, which from now on keeps an
// int8 copy of its vectors (a quarter more memory) and its float32 vectors
// row by row, and is touched only through the index. margin < 0 means DefaultRescoreMargin.
func NewQuantized(m *Matrix, margin int) *Quantized {
	if margin < 0 {
		margin = DefaultRescoreMargin
	}
	m.setLayout(true)
	m.enableInt8()
	return &Quantized{m: m, margin: margin}
}

// Q8KernelName names the int8 kernel in use: "avx512", "avx2" or "go".
func Q8KernelName() string { return q8KernelName }

// Dim returns the vector dimension.
func (x *Quantized) Dim() int { return x.m.dim }

// Len returns the number of item slots.
func (x *Quantized) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.m.n
}

// Update runs f with exclusive access to the matrix (Set and Clear keep the
// int8 copy current).
func (x *Quantized) Update(f func(m *Matrix) error) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return f(x.m)
}

// View runs f with shared access to the matrix.
func (x *Quantized) View(f func(m *Matrix)) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	f(x.m)
}

type q8Scratch struct {
	qs      []int8
	corr    []int32
	qscale  []float32
	thr     []float32
	out     []float32
	mask    []uint16
	coll    []collector
	filters []excludeFilter
	live    []*Query
	cand    []Result
	acc     []int32
}

func (x *Quantized) getScratch() *q8Scratch {
	s, _ := x.scratch.Get().(*q8Scratch)
	if s == nil {
		n := q8Groups(x.m.dim) * 4
		s = &q8Scratch{
			qs:      make([]int8, maxBatch*n),
			corr:    make([]int32, maxBatch),
			qscale:  make([]float32, maxBatch),
			thr:     make([]float32, maxBatch),
			out:     make([]float32, maxBatch*BlockWidth),
			mask:    make([]uint16, maxBatch),
			coll:    make([]collector, maxBatch),
			filters: make([]excludeFilter, maxBatch),
			live:    make([]*Query, 0, maxBatch),
			acc:     make([]int32, q8Rows*BlockWidth),
		}
	}
	return s
}

// Search fills every query's Out with its approximate top K (exact scores,
// best first), scoring up to 64 queries per pass over the int8 matrix.
func (x *Quantized) Search(qs []*Query) {
	dim := x.m.dim
	s := x.getScratch()
	defer x.scratch.Put(s)
	x.mu.RLock()
	defer x.mu.RUnlock()
	for len(qs) > 0 {
		s.live = s.live[:0]
		n := 0
		for n < len(qs) && len(s.live) < maxBatch {
			q := qs[n]
			n++
			q.Out = q.Out[:0]
			if q.Err = q.check(dim); q.Err != nil {
				continue
			}
			s.live = append(s.live, q)
		}
		qs = qs[n:]
		x.pass(s)
	}
}

// quantizeQuery writes round(v/scale) (127 levels) into dst, zero-padded,
// and returns the kernel's offset correction 64·Σdst and the scale.
func quantizeQuery(v []float32, dst []int8) (corr int32, scale float32) {
	var amax float32
	for _, x := range v {
		amax = max(amax, float32(math.Abs(float64(x))))
	}
	scale = amax / q8QueryLevels
	inv := float32(0)
	if scale > 0 {
		inv = 1 / scale
	}
	var sum int32
	for d := range dst {
		q := int32(0)
		if d < len(v) {
			q = int32(math.Round(float64(v[d] * inv)))
			q = max(-q8QueryLevels, min(q8QueryLevels, q))
		}
		dst[d] = int8(q)
		sum += q
	}
	return q8Zero * sum, scale
}

// pass scans the int8 copy for s.live, then re-scores each query's
// candidates exactly.
func (x *Quantized) pass(s *q8Scratch) {
	nq := len(s.live)
	if nq == 0 {
		return
	}
	m := x.m
	groups := q8Groups(m.dim)
	n := groups * 4
	for i, q := range s.live {
		s.corr[i], s.qscale[i] = quantizeQuery(q.Vec, s.qs[i*n:(i+1)*n])
		s.coll[i].reset(min(q.K+x.margin, max(m.n, 1)))
		s.filters[i] = newExcludeFilter(q.Exclude)
	}
	qs, corr, qscale, thr := s.qs[:nq*n], s.corr[:nq], s.qscale[:nq], s.thr[:nq]
	kernel := q8KernelImpl
	blocks := m.blocks()
	for b := 0; b < blocks; {
		for i := range thr {
			thr[i] = s.coll[i].threshold()
		}
		start, end := kernel(m.q8, m.q8scale, m.bias, groups, b, blocks, qs, corr, qscale, thr, s.out, s.mask, s.acc)
		for blk := start; blk < end; blk++ {
			row := (blk - start) * nq
			w := blk * BlockWidth
			for i, mask16 := range s.mask[row : row+nq] {
				for mask16 != 0 {
					j := bits.TrailingZeros16(mask16)
					mask16 &= mask16 - 1
					idx := int32(w + j)
					if s.filters[i].excludes(s.live[i].Exclude, idx) {
						continue
					}
					s.coll[i].push(Result{Index: idx, Score: s.out[(row+i)*BlockWidth+j]})
				}
			}
		}
		b = end
	}
	for i, q := range s.live {
		s.cand = s.coll[i].kept(s.cand)
		m.scoreRows(q.Vec, s.cand)
		c := &s.coll[i]
		c.reset(q.K)
		for _, r := range s.cand {
			c.push(r)
		}
		q.Out = c.sorted(q.Out)
	}
	clear(s.live)
}

// RecallAtK compares an approximate result list with the exact one: the
// fraction of the exact list's items that the approximate list holds.
func RecallAtK(approx, exact []Result) float64 {
	if len(exact) == 0 {
		return 1
	}
	hit := 0
	for _, e := range exact {
		for _, a := range approx {
			if a.Index == e.Index {
				hit++
				break
			}
		}
	}
	return float64(hit) / float64(len(exact))
}
