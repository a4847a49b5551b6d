package drift

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func benchValues(seed uint64, n int, mean float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	x := make([]float64, n)
	for i := range x {
		x[i] = mean + r.NormFloat64()
	}
	return x
}

func benchSketch(b *testing.B, seed uint64, n int, mean float64) *Sketch {
	return sketchOf(b, benchValues(seed, n, mean))
}

func BenchmarkSketchInsert(b *testing.B) {
	vals := benchValues(1, 1<<16, 0)
	s := sketchOf(b, benchValues(2, 1_000_000, 0)) // steady state
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Insert(vals[i&(1<<16-1)])
		i++
	}
}

// BenchmarkSketchMerge merges a 10,000-value window into a growing
// reference, as rolling a window into its reference does.
func BenchmarkSketchMerge(b *testing.B) {
	window := benchSketch(b, 3, 10_000, 0)
	ref := benchSketch(b, 4, 100_000, 0)
	b.ReportAllocs()
	for b.Loop() {
		if err := ref.Merge(window); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSketchMarshal(b *testing.B) {
	s := benchSketch(b, 5, 100_000, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSketchUnmarshal(b *testing.B) {
	data, _ := benchSketch(b, 6, 100_000, 0).MarshalBinary()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	var s Sketch
	for b.Loop() {
		if err := s.UnmarshalBinary(data); err != nil {
			b.Fatal(err)
		}
	}
}

// The distance benchmarks compare two 100,000-value sketches. "warm"
// reuses both sorted views (a reference compared again and again); "cold"
// inserts into the window first, so its view is rebuilt each time, as it is
// when a live window is compared.
func benchDistance(b *testing.B, f func(ref, cur *Sketch) error) {
	for _, mode := range []string{"warm", "cold"} {
		b.Run(mode, func(b *testing.B) {
			ref, cur := benchSketch(b, 7, 100_000, 0), benchSketch(b, 8, 100_000, 0.2)
			b.ReportAllocs()
			for b.Loop() {
				if mode == "cold" {
					cur.Insert(0.5)
				}
				if err := f(ref, cur); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPSISketch(b *testing.B) {
	benchDistance(b, func(ref, cur *Sketch) error { _, err := PSISketch(ref, cur, DefaultBins); return err })
}

func BenchmarkJSSketch(b *testing.B) {
	benchDistance(b, func(ref, cur *Sketch) error { _, err := JSSketch(ref, cur, DefaultBins); return err })
}

func BenchmarkKSSketch(b *testing.B) {
	benchDistance(b, func(ref, cur *Sketch) error { _, _, err := KSSketch(ref, cur); return err })
}

func BenchmarkWassersteinSketch(b *testing.B) {
	benchDistance(b, func(ref, cur *Sketch) error { _, err := NormalizedWassersteinSketch(ref, cur); return err })
}

func BenchmarkCompareSketchesAuto(b *testing.B) {
	benchDistance(b, func(ref, cur *Sketch) error { _, err := CompareSketches(ref, cur, Options{}); return err })
}

// BenchmarkKSExact is the exact path on two 10,000-value samples, for
// scale: it sorts copies of both.
func BenchmarkKSExact(b *testing.B) {
	x, y := benchValues(9, 10_000, 0), benchValues(10, 10_000, 0.1)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := KS(x, y); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFreqTableInsert(b *testing.B) {
	keys := zipfKeys(11, 1<<16, 200) // fits the capacity: exact counting
	b.Run("tracked", func(b *testing.B) {
		ft := tableOf(b, keys)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			ft.Insert(keys[i&(1<<16-1)])
			i++
		}
	})
	b.Run("high_cardinality", func(b *testing.B) {
		many := zipfKeys(12, 1<<16, 1_000_000) // overflows a 1,000-key table
		ft := tableOf(b, many)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			ft.Insert(many[i&(1<<16-1)])
			i++
		}
	})
}

func BenchmarkCategoricalDistances(b *testing.B) {
	ref, cur := &FreqTable{}, &FreqTable{}
	for _, k := range zipfKeys(13, 50_000, 50) {
		ref.Insert(k)
	}
	for _, k := range zipfKeys(14, 50_000, 60) {
		cur.Insert(k)
	}
	for _, m := range []Method{MethodChiSquare, MethodJS, MethodPSI} {
		b.Run(fmt.Sprint(m), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := CompareTables(ref, cur, Options{Method: m}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
