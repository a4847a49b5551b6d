package ials

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// zipfMatrix has the shape of click data: users × items with pairs pairs,
// users' activity and items' popularity both Zipf-distributed.
func zipfMatrix(b testing.TB, users, items, pairs int) *Matrix {
	b.Helper()
	rng := rand.New(rand.NewPCG(11, 12))
	zu := rand.NewZipf(rng, 1.1, 20, uint64(users-1))
	zi := rand.NewZipf(rng, 1.05, 10, uint64(items-1))
	es := make([]Entry, pairs)
	for k := range es {
		es[k] = Entry{Row: int32(zu.Uint64()), Col: int32(zi.Uint64()), Label: 1, Weight: 1}
	}
	m, err := NewMatrix(users, items, es)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkTrain1M: 1M interactions (about 0.85M distinct pairs) of
// 150k users × 40k items, d = 64, 15 epochs — the speed target.
func BenchmarkTrain1M(b *testing.B) {
	for _, kern := range []string{"simd", "gonum"} {
		b.Run(kern, func(b *testing.B) {
			if kern == "simd" && simdKernels == nil {
				b.Skip("no SIMD kernels in this build")
			}
			forcePortable = kern == "gonum"
			defer func() { forcePortable = false }()
			m := zipfMatrix(b, 150_000, 40_000, 1_000_000)
			cfg := DefaultConfig()
			cfg.Epochs = 15
			b.ResetTimer()
			for range b.N {
				if _, _, err := Train(context.Background(), m, cfg, Options{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(m.NNZ()), "pairs")
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/float64(cfg.Epochs), "s/epoch")
		})
	}
}

func BenchmarkKernels(b *testing.B) {
	const d = 64
	y := make([]float32, 1000*d)
	for i := range y {
		y[i] = float32(math.Sin(float64(i)))
	}
	idx := make([]int32, 16)
	conf := make([]float32, 16)
	for i := range idx {
		idx[i], conf[i] = int32(i*37%1000), 1
	}
	v, out := y[:d], make([]float32, d)
	g := make([]float32, d*d)
	for name, k := range map[string]*kernels{"gonum": &gonumKernels, "simd": simdKernels} {
		if k == nil {
			continue
		}
		b.Run("gather16/"+name, func(b *testing.B) {
			for range b.N {
				k.gather(y, d, idx, conf, nil, v, out, false)
			}
		})
		b.Run("symv/"+name, func(b *testing.B) {
			for range b.N {
				k.symv(g, d, v, out)
			}
		})
		b.Run("gram4096/"+name, func(b *testing.B) {
			for range b.N {
				k.gramAdd(y, d, g)
			}
		})
	}
}
