package topk

import (
	"fmt"
	"math/bits"
	"slices"
	"sync"
)

// MaxK bounds a query's K.
const MaxK = 100000

// Query is one top-K request.
type Query struct {
	// Vec is the query vector (a user's factors); len must equal Dim.
	Vec []float32
	// K is the number of results wanted, 1–MaxK.
	K int
	// Exclude lists item indices never to return, sorted ascending. It is
	// consulted only for items that would enter the top K, so a long list
	// costs a binary search per such item, not per scanned item.
	Exclude []int32
	// Out receives the results, best first, reusing its storage; after
	// the search it holds min(K, live items not excluded) results.
	Out []Result
	// Err is set when the query could not run (bad dim or K).
	Err error
}

func (q *Query) check(dim int) error {
	switch {
	case len(q.Vec) != dim:
		return fmt.Errorf("topk: query has dim %d, index has %d", len(q.Vec), dim)
	case q.K < 1 || q.K > MaxK:
		return fmt.Errorf("topk: k %d: want 1–%d", q.K, MaxK)
	}
	return nil
}

// Index answers top-K queries. Search may score all the queries it is given
// in one pass; it fills each query's Out (or Err). Exact is the reference
// implementation; an approximate index must report its recall@K against it.
type Index interface {
	Dim() int
	Len() int
	Search(qs []*Query)
}

// maxBatch is the most queries scored together per pass; it bounds the
// scratch memory and keeps a batch's per-query state in cache.
const maxBatch = 64

// Exact is exhaustive maximum-inner-product search over a Matrix guarded by
// a read–write lock: searches share the read lock, and Update takes the
// write lock, so a writer waits at most one pass and readers wait at most
// one (short) batch of writes.
type Exact struct {
	mu      sync.RWMutex
	m       *Matrix
	scratch sync.Pool
}

// NewExact returns an index over m; from now on m is touched only through
// the index.
func NewExact(m *Matrix) *Exact {
	m.setLayout(false)
	return &Exact{m: m}
}

// Dim returns the vector dimension.
func (e *Exact) Dim() int { return e.m.dim }

// Len returns the number of item slots.
func (e *Exact) Len() int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.m.n
}

// Update runs f with exclusive access to the matrix. Keep f short (apply a
// batch of decoded records): searches wait for it.
func (e *Exact) Update(f func(m *Matrix) error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return f(e.m)
}

// View runs f with shared access to the matrix (for re-scoring).
func (e *Exact) View(f func(m *Matrix)) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	f(e.m)
}

// scratch is one pass's working memory, pooled so a search does not
// allocate.
type scratch struct {
	qs      []float32
	thr     []float32
	out     []float32
	mask    []uint16
	coll    []collector
	filters []excludeFilter
	live    []*Query
}

func (e *Exact) getScratch(dim int) *scratch {
	s, _ := e.scratch.Get().(*scratch)
	if s == nil {
		s = &scratch{
			qs:      make([]float32, maxBatch*dim),
			thr:     make([]float32, maxBatch),
			out:     make([]float32, maxBatch*BlockWidth),
			mask:    make([]uint16, maxBatch),
			coll:    make([]collector, maxBatch),
			filters: make([]excludeFilter, maxBatch),
			live:    make([]*Query, 0, maxBatch),
		}
	}
	return s
}

// Search fills every query's Out with its exact top K, scoring up to 64
// queries per pass over the matrix.
func (e *Exact) Search(qs []*Query) {
	dim := e.m.dim
	s := e.getScratch(dim)
	defer e.scratch.Put(s)
	e.mu.RLock()
	defer e.mu.RUnlock()
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
		e.pass(s)
	}
}

// pass scores s.live against every block of the matrix.
func (e *Exact) pass(s *scratch) {
	nq := len(s.live)
	if nq == 0 {
		return
	}
	m := e.m
	dim := m.dim
	for i, q := range s.live {
		copy(s.qs[i*dim:], q.Vec)
		s.coll[i].reset(min(q.K, max(m.n, 1)))
		s.filters[i] = newExcludeFilter(q.Exclude)
	}
	qs, thr, out, mask := s.qs[:nq*dim], s.thr[:nq], s.out[:nq*BlockWidth], s.mask[:nq]
	kernel := kernelImpl
	blocks := m.blocks()
	stride := BlockWidth * dim
	for b := range blocks {
		for i := range thr {
			thr[i] = s.coll[i].threshold()
		}
		kernel(m.data[b*stride:(b+1)*stride], m.bias[b*BlockWidth:(b+1)*BlockWidth], dim, qs, thr, out, mask)
		for i, mask16 := range mask {
			for mask16 != 0 {
				j := bits.TrailingZeros16(mask16)
				mask16 &= mask16 - 1
				idx := int32(b*BlockWidth + j)
				if s.filters[i].excludes(s.live[i].Exclude, idx) {
					continue
				}
				s.coll[i].push(Result{Index: idx, Score: out[i*BlockWidth+j]})
			}
		}
	}
	for i, q := range s.live {
		q.Out = s.coll[i].sorted(q.Out)
	}
	clear(s.live)
}

func excluded(ex []int32, idx int32) bool {
	if len(ex) == 0 {
		return false
	}
	_, ok := slices.BinarySearch(ex, idx)
	return ok
}

// excludeFilter is a 256-bit Bloom filter of a query's excluded items: a
// candidate whose bit is clear is not excluded, which spares the binary
// search for most of the thousands of candidates a k = 200 search offers
// (with 20 excluded items, 1 in 13 candidates still searches).
type excludeFilter [4]uint64

func newExcludeFilter(ex []int32) excludeFilter {
	var f excludeFilter
	for _, i := range ex {
		f[uint32(i)/64%4] |= 1 << (uint32(i) % 64)
	}
	return f
}

// excludes reports whether idx is in ex, which f was built from.
func (f *excludeFilter) excludes(ex []int32, idx int32) bool {
	return f[uint32(idx)/64%4]&(1<<(uint32(idx)%64)) != 0 && excluded(ex, idx)
}
