package topk

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkSearch measures exact top-10 over 100k items of dim 64 for
// batches of 1–64 concurrent queries with the selected kernel and the
// portable one. items/s counts item–query scores.
func BenchmarkSearch(b *testing.B) {
	const n, dim = 100000, 64
	m, _, _ := randomMatrix(b, rand.New(rand.NewPCG(5, 6)), n, dim)
	idx := NewExact(m)
	ks := map[string]blockKernel{"go": scoreBlockGo}
	for name, k := range simdKernels() {
		ks[name] = k
	}
	for name, k := range ks {
		for _, batch := range []int{1, 4, 16, 64} {
			b.Run(fmt.Sprintf("kernel=%s/batch=%d", name, batch), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(7, 8))
				qs := make([]*Query, batch)
				for i := range qs {
					v := make([]float32, dim)
					for d := range v {
						v[d] = float32(rng.NormFloat64())
					}
					qs[i] = &Query{Vec: v, K: 10, Out: make([]Result, 0, 10)}
				}
				b.ReportAllocs()
				withKernel(k, func() {
					for b.Loop() {
						idx.Search(qs)
					}
				})
				b.ReportMetric(float64(n*batch)*float64(b.N)/b.Elapsed().Seconds(), "items/s")
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*batch), "µs/query")
			})
		}
	}
}
