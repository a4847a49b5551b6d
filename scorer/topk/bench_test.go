package topk

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// servingMatrix builds n items like the scorer's synthetic model (eddy
// bench serve): vectors N(0, 1/dim) per dimension, biases N(0, 0.1²).
func servingMatrix(t testing.TB, n, dim int, seed uint64) *Matrix {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	m, err := NewMatrix(dim, n)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, dim)
	scale := 1 / math.Sqrt(float64(dim))
	for i := range n {
		for d := range v {
			v[d] = float32(rng.NormFloat64() * scale)
		}
		if err := m.Set(i, v, float32(rng.NormFloat64()*0.1)); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func servingQueries(n, dim, k int, seed uint64) []*Query {
	rng := rand.New(rand.NewPCG(seed, 2))
	scale := 1 / math.Sqrt(float64(dim))
	qs := make([]*Query, n)
	for i := range qs {
		v := make([]float32, dim)
		for d := range v {
			v[d] = float32(rng.NormFloat64() * scale)
		}
		qs[i] = &Query{Vec: v, K: k, Out: make([]Result, 0, k)}
	}
	return qs
}

// BenchmarkSearch measures top-K over 100k items of dim 64 for batches of
// 1–64 concurrent queries: the exact index with the selected kernel and the
// portable one, and the int8 index. items/s counts item–query scores.
func BenchmarkSearch(b *testing.B) {
	const n, dim = 100000, 64
	m := servingMatrix(b, n, dim, 5)
	exact := NewExact(m)
	mq := servingMatrix(b, n, dim, 5)
	quant := NewQuantized(mq, -1)
	type variant struct {
		index  Index
		kernel func(func())
	}
	vs := map[string]variant{
		"exact/kernel=go": {exact, func(f func()) { withKernel(scoreBlockGo, f) }},
		"int8/kernel=go":  {quant, func(f func()) { withQ8Kernel(scanQ8Go, f) }},
	}
	for name, k := range simdKernels() {
		vs["exact/kernel="+name] = variant{exact, func(f func()) { withKernel(k, f) }}
	}
	for name, k := range simdQ8Kernels() {
		vs["int8/kernel="+name] = variant{quant, func(f func()) { withQ8Kernel(k, f) }}
	}
	for name, v := range vs {
		for _, k := range []int{10, 200} {
			for _, batch := range []int{1, 4, 16, 64} {
				b.Run(fmt.Sprintf("%s/k=%d/batch=%d", name, k, batch), func(b *testing.B) {
					// Different users each pass, as in serving: the rows the
					// int8 index re-scores are then not in cache.
					pool := servingQueries(1024, dim, k, 7)
					b.ReportAllocs()
					v.kernel(func() {
						i := 0
						for b.Loop() {
							if i+batch > len(pool) {
								i = 0
							}
							v.index.Search(pool[i : i+batch])
							i += batch
						}
					})
					b.ReportMetric(float64(n*batch)*float64(b.N)/b.Elapsed().Seconds(), "items/s")
					b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*batch), "µs/query")
				})
			}
		}
	}
}

// BenchmarkCollector offers a random score stream of 100k items, filtered
// by the collector's threshold as the kernels filter it, for the K the
// scorer uses with the ranker (200 + the re-score margin) and without.
func BenchmarkCollector(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 9))
	scores := make([]float32, 100000)
	for i := range scores {
		scores[i] = float32(rng.NormFloat64())
	}
	for _, k := range []int{10 + DefaultRescoreMargin, 200 + DefaultRescoreMargin} {
		b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
			var c collector
			out := make([]Result, 0, k)
			b.ReportAllocs()
			for b.Loop() {
				c.reset(k)
				for i, s := range scores {
					if s > c.threshold() {
						c.push(Result{Index: int32(i), Score: s})
					}
				}
				out = c.sorted(out)
			}
		})
	}
}
