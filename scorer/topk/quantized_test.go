package topk

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

func q8Kernels() map[string]q8Kernel {
	k := simdQ8Kernels()
	if k == nil {
		k = map[string]q8Kernel{}
	}
	k["go"] = scanQ8Go
	return k
}

func withQ8Kernel(k q8Kernel, f func()) {
	old := q8KernelImpl
	q8KernelImpl = k
	defer func() { q8KernelImpl = old }()
	f()
}

// TestQ8KernelsMatchReference checks every int8 kernel against a plain
// integer reference computed from the stored bytes (the integer part must
// be exact, the float scaling within rounding), and its scan contract:
// it stops at the first block with a score above a threshold.
func TestQ8KernelsMatchReference(t *testing.T) {
	for name, k := range q8Kernels() {
		for _, tc := range []struct{ n, dim, nq int }{{16, 4, 1}, {40, 5, 3}, {100, 64, 4}, {64, 63, 9}, {33, 1, 2}, {48, 130, 6}, {300, 16, 40}} {
			t.Run(fmt.Sprintf("%s/n%d_d%d_q%d", name, tc.n, tc.dim, tc.nq), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(tc.n), uint64(tc.dim)))
				m, _, _ := randomMatrix(t, rng, tc.n, tc.dim)
				for i := 16; i < 32 && i < tc.n; i++ {
					m.Clear(i) // an all-empty block
				}
				m.Clear(3)
				m.enableInt8()
				groups := q8Groups(tc.dim)
				n := groups * 4
				qs := make([]int8, tc.nq*n)
				corr := make([]int32, tc.nq)
				qscale := make([]float32, tc.nq)
				for q := range tc.nq {
					v := make([]float32, tc.dim)
					if q != 1 { // a zero query must work too
						for d := range v {
							v[d] = float32(rng.NormFloat64())
						}
					}
					corr[q], qscale[q] = quantizeQuery(v, qs[q*n:(q+1)*n])
				}
				out := make([]float32, q8Rows*BlockWidth)
				mask := make([]uint16, q8Rows)
				acc := make([]int32, q8Rows*BlockWidth)
				low := slices.Repeat([]float32{-math.MaxFloat32}, tc.nq)
				bb := q8BlockBytes(tc.dim)
				blocks := m.blocks()
				// scores[b][q][j], from scoring each block alone.
				scores := make([][]float32, blocks)
				for b := range blocks {
					start, end := k(m.q8, m.q8scale, m.bias, groups, b, b+1, qs, corr, qscale, low, out, mask, acc)
					w := b * BlockWidth
					empty := !slices.ContainsFunc(m.bias[w:w+BlockWidth], func(x float32) bool { return !math.IsInf(float64(x), -1) })
					if empty {
						if start != b+1 || end != b+1 {
							t.Fatalf("empty block %d: kernel returned [%d, %d)", b, start, end)
						}
						scores[b] = slices.Repeat([]float32{float32(math.Inf(-1))}, tc.nq*BlockWidth)
						continue
					}
					if start != b || end != b+1 {
						t.Fatalf("block %d alone: kernel returned [%d, %d)", b, start, end)
					}
					scores[b] = slices.Clone(out[:tc.nq*BlockWidth])
					for q := range tc.nq {
						for j := range BlockWidth {
							var acc int64
							for d := range n {
								acc += int64(m.q8[b*bb+(d/4)*4*BlockWidth+4*j+d%4]) * int64(qs[q*n+d])
							}
							want := float64(acc-int64(corr[q]))*float64(m.q8scale[w+j])*float64(qscale[q]) + float64(m.bias[w+j])
							got := out[q*BlockWidth+j]
							bit := mask[q]&(1<<j) != 0
							if math.IsInf(want, -1) {
								if !math.IsInf(float64(got), -1) || bit {
									t.Fatalf("block %d query %d item %d: empty slot scored %v", b, q, j, got)
								}
								continue
							}
							if d := math.Abs(float64(got) - want); d > 1e-4*(1+math.Abs(want)) || !bit {
								t.Fatalf("block %d query %d item %d: got %v (mask %v), want %v", b, q, j, got, bit, want)
							}
						}
					}
				}
				// With real thresholds the scan must stop exactly at the
				// first block holding a score above its query's threshold.
				thr := make([]float32, tc.nq)
				for q := range thr {
					thr[q] = float32(rng.NormFloat64() * 3)
				}
				hits := func(b int) bool {
					for q := range tc.nq {
						for j := range BlockWidth {
							if scores[b][q*BlockWidth+j] > thr[q] {
								return true
							}
						}
					}
					return false
				}
				for b0 := range blocks {
					start, end := k(m.q8, m.q8scale, m.bias, groups, b0, blocks, qs, corr, qscale, thr, out, mask, acc)
					first := b0
					for first < blocks && !hits(first) {
						first++
					}
					if first == blocks {
						if start != blocks || end != blocks {
							t.Fatalf("scan from %d: [%d, %d), want nothing found", b0, start, end)
						}
						continue
					}
					if start > first || end <= first || start < b0 || end-start > q8Span(tc.nq) {
						t.Fatalf("scan from %d: [%d, %d), first hit in block %d", b0, start, end, first)
					}
					for b := start; b < end; b++ {
						for q := range tc.nq {
							for j := range BlockWidth {
								r := ((b-start)*tc.nq+q)*BlockWidth + j
								want := scores[b][q*BlockWidth+j]
								if out[r] != want || (mask[(b-start)*tc.nq+q]&(1<<j) != 0) != (want > thr[q]) {
									t.Fatalf("scan from %d, block %d query %d item %d: %v, alone %v", b0, b, q, j, out[r], want)
								}
							}
						}
					}
				}
			})
		}
	}
}

// TestQuantizedRecall checks that int8 retrieval with exact re-scoring
// finds the exact top K (recall@K) and returns exact scores, with
// deletions, exclusions and updates after creation.
func TestQuantizedRecall(t *testing.T) {
	for name, k := range q8Kernels() {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(11, 12))
			const n, dim = 5000, 32
			m, vecs, bias := randomMatrix(t, rng, n, dim)
			x := NewQuantized(m, -1)
			// Updates after the index exists must reach the int8 copy.
			_ = x.Update(func(m *Matrix) error {
				for i := 0; i < n; i += 17 {
					m.Clear(i)
				}
				for i := 5; i < n; i += 101 {
					for d := range vecs[i] {
						vecs[i][d] = float32(rng.NormFloat64() * 2)
					}
					if err := m.Set(i, vecs[i], bias[i]); err != nil {
						return err
					}
				}
				return m.Set(n+20, vecs[0], 3) // grows the matrix
			})
			vecs = append(vecs, make([][]float32, 21)...)
			bias = append(bias, make([]float32, 21)...)
			vecs[n+20], bias[n+20] = vecs[0], 3
			for i := n; i < n+20; i++ {
				vecs[i] = make([]float32, dim)
			}
			var recall float64
			const nq = 64
			qs := make([]*Query, nq)
			for i := range qs {
				v := make([]float32, dim)
				for d := range v {
					v[d] = float32(rng.NormFloat64())
				}
				var ex []int32
				for j := i % 3; j < n; j += 11 {
					ex = append(ex, int32(j))
				}
				qs[i] = &Query{Vec: v, K: 1 + i%30, Exclude: ex}
			}
			withQ8Kernel(k, func() { x.Search(qs) })
			for i, q := range qs {
				if q.Err != nil {
					t.Fatal(q.Err)
				}
				want := reference(vecs, bias, m.Live, q.Vec, q.K, q.Exclude)
				if len(q.Out) != len(want) {
					t.Fatalf("query %d: %d results, want %d", i, len(q.Out), len(want))
				}
				for r, res := range q.Out {
					if ex := m.Score(int(res.Index), q.Vec); res.Score != ex {
						t.Fatalf("query %d rank %d: score %v is not the exact %v", i, r, res.Score, ex)
					}
					if !m.Live(int(res.Index)) {
						t.Fatalf("query %d: returned empty slot %d", i, res.Index)
					}
					if _, bad := slices.BinarySearch(q.Exclude, res.Index); bad {
						t.Fatalf("query %d: returned excluded item %d", i, res.Index)
					}
					if r > 0 && worse(q.Out[r-1], res) {
						t.Fatalf("query %d: results out of order at rank %d", i, r)
					}
				}
				recall += RecallAtK(q.Out, want)
			}
			if recall /= nq; recall < 0.99 {
				t.Fatalf("recall@K %.4f, want ≥ 0.99", recall)
			}
		})
	}
}

func TestQuantizedEmptyAndBadQueries(t *testing.T) {
	m, _ := NewMatrix(3, 0)
	x := NewQuantized(m, 0)
	q := &Query{Vec: []float32{1, 0, 0}, K: 5}
	bad := &Query{Vec: []float32{1}, K: 5}
	x.Search([]*Query{q, bad})
	if q.Err != nil || len(q.Out) != 0 || bad.Err == nil {
		t.Fatalf("empty index: %v %v, bad query err %v", q.Out, q.Err, bad.Err)
	}
	_ = x.Update(func(m *Matrix) error { return m.Set(2, []float32{0, 0, 0}, 1) })
	x.Search([]*Query{q})
	if want := []Result{{2, 1}}; !slices.Equal(q.Out, want) {
		t.Fatalf("got %v, want %v", q.Out, want)
	}
}

func TestCollectorKeepsBestK(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, tc := range []struct{ n, k, distinct int }{{0, 3, 10}, {5, 10, 10}, {100, 1, 1000}, {1000, 10, 5}, {5000, 200, 100000}, {300, 300, 7}} {
		t.Run(fmt.Sprintf("n%d_k%d", tc.n, tc.k), func(t *testing.T) {
			var c collector
			c.reset(tc.k)
			all := make([]Result, tc.n)
			for i := range all {
				// Few distinct scores exercise the index tie-break.
				all[i] = Result{Index: int32(i), Score: float32(rng.IntN(tc.distinct))}
				c.push(all[i])
			}
			got := c.sorted(nil)
			sort.Slice(all, func(a, b int) bool { return worse(all[b], all[a]) })
			if want := all[:min(tc.k, len(all))]; !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

func TestSelectLargest(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for range 300 {
		n := rng.IntN(300) + 1
		k := rng.IntN(n) + 1
		a := make([]uint64, n)
		for i := range a {
			a[i] = uint64(rng.IntN(40)) // many equal values
		}
		want := slices.Clone(a)
		slices.Sort(want)
		slices.Reverse(want)
		selectLargest(a, k)
		got := slices.Clone(a[:k])
		slices.Sort(got)
		slices.Reverse(got)
		if !slices.Equal(got, want[:k]) {
			t.Fatalf("n=%d k=%d: largest %v, want %v", n, k, got, want[:k])
		}
	}
}

func TestResultKeyOrdersLikeWorse(t *testing.T) {
	scores := []float32{float32(math.Inf(-1)), -math.MaxFloat32, -3, -1e-30, float32(math.Copysign(0, -1)), 0, 1e-30, 0.5, 2, math.MaxFloat32}
	var rs []Result
	for _, s := range scores {
		for _, idx := range []int32{0, 1, 7, math.MaxInt32} {
			rs = append(rs, Result{Index: idx, Score: s})
		}
	}
	for _, a := range rs {
		if back := keyResult(resultKey(a)); back.Index != a.Index || back.Score != a.Score {
			t.Fatalf("%v round-trips to %v", a, back)
		}
		for _, b := range rs {
			if worse(a, b) != (resultKey(a) < resultKey(b)) {
				t.Fatalf("worse(%v, %v) = %v, keys %x %x", a, b, worse(a, b), resultKey(a), resultKey(b))
			}
		}
	}
}

// TestQuantizedRecallServing measures recall@10 (and @200, the ranker's
// candidates) of the int8 index against Exact over 1,000 random queries on
// a matrix like the scorer's benchmark model: 100k items of dim 64. The
// int8 index is the scorer's default only while this stays ≥ 0.98.
func TestQuantizedRecallServing(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("100k items × 1,000 queries: run without -short and -race")
	}
	if q8KernelName == "go" || kernelName == "go" {
		// The int8 arithmetic is exact in every kernel, so recall does not
		// depend on it; TestQuantizedRecall covers the portable kernel.
		t.Skip("portable kernels: too slow for 100k × 1,000")
	}
	const n, dim, nq = 100000, 64, 1000
	exact := NewExact(servingMatrix(t, n, dim, 21))
	for _, margin := range []int{DefaultRescoreMargin, 0} {
		quant := NewQuantized(servingMatrix(t, n, dim, 21), margin)
		for _, k := range []int{10, 200} {
			eq, qq := servingQueries(nq, dim, k, 22), servingQueries(nq, dim, k, 22)
			exact.Search(eq)
			quant.Search(qq)
			var recall float64
			for i := range eq {
				recall += RecallAtK(qq[i].Out, eq[i].Out)
			}
			recall /= nq
			t.Logf("int8 recall@%d over %d queries, 100k×%d items, re-score margin %d: %.4f", k, nq, dim, margin, recall)
			if margin == DefaultRescoreMargin && recall < 0.98 {
				t.Errorf("recall@%d = %.4f, want ≥ 0.98", k, recall)
			}
		}
	}
}
