package topk

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

func randomMatrix(t testing.TB, rng *rand.Rand, n, dim int) (*Matrix, [][]float32, []float32) {
	t.Helper()
	m, err := NewMatrix(dim, 0)
	if err != nil {
		t.Fatal(err)
	}
	vecs := make([][]float32, n)
	bias := make([]float32, n)
	for i := range n {
		v := make([]float32, dim)
		for d := range v {
			v[d] = float32(rng.NormFloat64())
		}
		vecs[i], bias[i] = v, float32(rng.NormFloat64()*0.1)
		if err := m.Set(i, v, bias[i]); err != nil {
			t.Fatal(err)
		}
	}
	return m, vecs, bias
}

// reference is the plain float64 top-K the kernels must agree with.
func reference(vecs [][]float32, bias []float32, live func(int) bool, q []float32, k int, exclude []int32) []Result {
	var all []Result
	for i, v := range vecs {
		if !live(i) {
			continue
		}
		if _, ok := slices.BinarySearch(exclude, int32(i)); ok {
			continue
		}
		s := float64(bias[i])
		for d := range v {
			s += float64(q[d]) * float64(v[d])
		}
		all = append(all, Result{Index: int32(i), Score: float32(s)})
	}
	sort.Slice(all, func(a, b int) bool { return worse(all[b], all[a]) })
	return all[:min(k, len(all))]
}

func kernels() map[string]blockKernel {
	k := simdKernels()
	if k == nil {
		k = map[string]blockKernel{}
	}
	k["go"] = scoreBlockGo
	return k
}

// withKernel runs f with kernel k selected.
func withKernel(k blockKernel, f func()) {
	old := kernelImpl
	kernelImpl = k
	defer func() { kernelImpl = old }()
	f()
}

// sameResults compares result lists allowing float32 rounding: scores
// must match within tol, and where the order differs the swapped items'
// reference scores must be within tol (a near-tie).
func sameResults(got, want []Result, tol float32) error {
	if len(got) != len(want) {
		return fmt.Errorf("got %d results, want %d", len(got), len(want))
	}
	for i := range got {
		if d := got[i].Score - want[i].Score; d > tol || d < -tol {
			return fmt.Errorf("rank %d: score %v (item %d), want %v (item %d)", i, got[i].Score, got[i].Index, want[i].Score, want[i].Index)
		}
	}
	return nil
}

func TestKernelsMatchReference(t *testing.T) {
	for name, k := range kernels() {
		for _, tc := range []struct{ n, dim, k, nq int }{
			{1, 1, 1, 1}, {15, 3, 5, 2}, {17, 16, 20, 3}, {100, 64, 10, 1}, {1000, 64, 10, 9},
			{777, 33, 50, 5}, {2000, 128, 200, 70}, {300, 7, 1000, 4},
		} {
			t.Run(fmt.Sprintf("%s/n%d_d%d_k%d_q%d", name, tc.n, tc.dim, tc.k, tc.nq), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(tc.n), uint64(tc.dim)))
				m, vecs, bias := randomMatrix(t, rng, tc.n, tc.dim)
				// Delete a few items; they must never be returned.
				for i := 0; i < tc.n; i += 13 {
					m.Clear(i)
				}
				idx := NewExact(m)
				qs := make([]*Query, tc.nq)
				for i := range qs {
					v := make([]float32, tc.dim)
					for d := range v {
						v[d] = float32(rng.NormFloat64())
					}
					var ex []int32
					for j := i % 5; j < tc.n; j += 7 {
						ex = append(ex, int32(j))
					}
					qs[i] = &Query{Vec: v, K: tc.k, Exclude: ex}
				}
				withKernel(k, func() { idx.Search(qs) })
				for i, q := range qs {
					if q.Err != nil {
						t.Fatal(q.Err)
					}
					want := reference(vecs, bias, m.Live, q.Vec, q.K, q.Exclude)
					if err := sameResults(q.Out, want, 1e-3*float32(tc.dim)); err != nil {
						t.Fatalf("query %d: %v", i, err)
					}
				}
			})
		}
	}
}

func TestSearchRejectsBadQueries(t *testing.T) {
	m, _, _ := randomMatrix(t, rand.New(rand.NewPCG(1, 2)), 10, 4)
	idx := NewExact(m)
	good := &Query{Vec: make([]float32, 4), K: 3}
	bad := []*Query{{Vec: make([]float32, 3), K: 3}, {Vec: make([]float32, 4), K: 0}, {Vec: make([]float32, 4), K: MaxK + 1}}
	idx.Search(append(bad, good))
	for i, q := range bad {
		if q.Err == nil || len(q.Out) != 0 {
			t.Errorf("bad query %d: err %v, %d results", i, q.Err, len(q.Out))
		}
	}
	if good.Err != nil || len(good.Out) != 3 {
		t.Errorf("good query: err %v, %d results", good.Err, len(good.Out))
	}
}

func TestEmptyAndUpdatedMatrix(t *testing.T) {
	m, _ := NewMatrix(2, 0)
	idx := NewExact(m)
	q := &Query{Vec: []float32{1, 0}, K: 5}
	idx.Search([]*Query{q})
	if q.Err != nil || len(q.Out) != 0 {
		t.Fatalf("empty matrix: %v %v", q.Out, q.Err)
	}
	_ = idx.Update(func(m *Matrix) error {
		if err := m.Set(40, []float32{2, 0}, 0); err != nil {
			return err
		}
		return m.Set(3, []float32{1, 0}, 0.5)
	})
	idx.Search([]*Query{q})
	want := []Result{{40, 2}, {3, 1.5}}
	if !slices.Equal(q.Out, want) {
		t.Fatalf("got %v, want %v", q.Out, want)
	}
	_ = idx.Update(func(m *Matrix) error { return m.Set(40, []float32{-1, 0}, 0) })
	idx.Search([]*Query{q})
	if want := []Result{{3, 1.5}, {40, -1}}; !slices.Equal(q.Out, want) {
		t.Fatalf("after update got %v, want %v", q.Out, want)
	}
	if err := m.Set(1, []float32{1}, 0); err == nil {
		t.Fatal("Set with wrong dim succeeded")
	}
	if err := m.Set(1, []float32{1, 1}, float32(math.NaN())); err == nil {
		t.Fatal("Set with NaN bias succeeded")
	}
	if v, b := m.Row(3, nil); !slices.Equal(v, []float32{1, 0}) || b != 0.5 {
		t.Fatalf("Row(3) = %v, %v", v, b)
	}
}

func TestSearchDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	m, _, _ := randomMatrix(t, rand.New(rand.NewPCG(3, 4)), 1000, 64)
	idx := NewExact(m)
	q := &Query{Vec: make([]float32, 64), K: 10, Out: make([]Result, 0, 10)}
	q.Vec[0] = 1
	qs := []*Query{q}
	idx.Search(qs)
	if n := testing.AllocsPerRun(50, func() { idx.Search(qs) }); n != 0 {
		t.Fatalf("Search allocates %v times", n)
	}
}

// TestCloneIsASnapshot: a clone answers like its source at the time of
// cloning, under both indexes, and later writes to either side do not reach
// the other.
func TestCloneIsASnapshot(t *testing.T) {
	for _, kind := range []string{"exact", "int8"} {
		t.Run(kind, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 8))
			m, vecs, bias := randomMatrix(t, rng, 300, 16)
			newIndex := func(m *Matrix) MatrixIndex {
				if kind == "int8" {
					return NewQuantized(m, DefaultRescoreMargin)
				}
				return NewExact(m)
			}
			src := newIndex(m)
			var c *Matrix
			src.View(func(m *Matrix) { c = m.Clone() })
			clone := newIndex(c)
			q := make([]float32, 16)
			for d := range q {
				q[d] = float32(rng.NormFloat64())
			}
			search := func(idx MatrixIndex) []Result {
				qq := &Query{Vec: q, K: 10}
				idx.Search([]*Query{qq})
				if qq.Err != nil {
					t.Fatal(qq.Err)
				}
				return slices.Clone(qq.Out)
			}
			before := search(src)
			if got := search(clone); !slices.Equal(got, before) {
				t.Fatalf("clone answers %v, source %v", got, before)
			}
			// Make the source's best item the worst and add a new best one.
			best := before[0].Index
			neg := make([]float32, 16)
			for d := range neg {
				neg[d] = -10 * q[d]
			}
			_ = src.Update(func(m *Matrix) error {
				if err := m.Set(int(best), neg, 0); err != nil {
					return err
				}
				return m.Set(300, slices.Clone(q), 100)
			})
			if got := search(src); got[0].Index != 300 || slices.ContainsFunc(got, func(r Result) bool { return r.Index == best }) {
				t.Fatalf("source after writes: %v", got)
			}
			if got := search(clone); !slices.Equal(got, before) {
				t.Fatalf("clone changed with its source: %v, was %v", got, before)
			}
			// And the other way round.
			_ = clone.Update(func(m *Matrix) error { m.Clear(int(before[1].Index)); return nil })
			if got := search(src); got[0].Index != 300 || !slices.ContainsFunc(got, func(r Result) bool { return r.Index == before[1].Index }) {
				t.Fatalf("source changed with its clone: %v", got)
			}
			if want := reference(vecs, bias, func(i int) bool { return i != int(before[1].Index) }, q, 10, nil); sameResults(search(clone), want, 1e-3) != nil && kind == "exact" {
				t.Fatalf("clone after Clear: %v, want %v", search(clone), want)
			}
		})
	}
}
