package drift

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
)

// FuzzSketchUnmarshal feeds arbitrary bytes to the sketch decoder: it must
// never panic, and whatever it accepts must re-encode to the same bytes,
// answer queries within [min, max] and keep working after inserts and
// merges.
func FuzzSketchUnmarshal(f *testing.F) {
	for _, n := range []int{0, 1, 3, 7, 250, 5000} {
		s := &Sketch{}
		for i := range n {
			s.Insert(float64(i%97) * 1.5)
		}
		b, _ := s.MarshalBinary()
		f.Add(b)
	}
	small, _ := NewSketch(MinK)
	for i := range 100 {
		small.Insert(float64(i))
	}
	b, _ := small.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Sketch
		if err := s.UnmarshalBinary(data); err != nil {
			return
		}
		again, err := s.MarshalBinary()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted input does not round-trip")
		}
		if s.Count() > 0 {
			for _, q := range []float64{0, 0.1, 0.5, 0.9, 1} {
				v := s.Quantile(q)
				if v < s.Min() || v > s.Max() || math.IsNaN(v) {
					t.Fatalf("Quantile(%v) = %v outside [%v, %v]", q, v, s.Min(), s.Max())
				}
			}
			if c := s.CDF(s.Max()); c != 1 {
				t.Fatalf("CDF(max) = %v", c)
			}
			if _, _, err := KSSketch(&s, &s); err != nil {
				t.Fatal(err)
			}
			if _, err := PSISketch(&s, &s, 0); err != nil {
				t.Fatal(err)
			}
		}
		c := s.Clone()
		for i := range 300 {
			s.Insert(float64(i))
		}
		if err := s.Merge(c); err != nil {
			t.Fatal(err)
		}
		if _, err := s.MarshalBinary(); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzFreqTableUnmarshal does the same for the frequency table decoder.
func FuzzFreqTableUnmarshal(f *testing.F) {
	for _, keys := range [][]string{nil, {"a"}, {"a", "b", "b", ""}, zipfKeys(5, 500, 100)} {
		ft, _ := NewFreqTable(20)
		for _, k := range keys {
			ft.Insert(k)
		}
		b, _ := ft.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var ft FreqTable
		if err := ft.UnmarshalBinary(data); err != nil {
			return
		}
		again, err := ft.MarshalBinary()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted input does not round-trip")
		}
		if ft.Len() > ft.Capacity() {
			t.Fatalf("%d keys over capacity %d", ft.Len(), ft.Capacity())
		}
		if ft.Total() > 0 {
			if _, err := JSFreq(&ft, &ft); err != nil {
				t.Fatal(err)
			}
			if _, _, _, err := ChiSquareFreq(&ft, &ft); err != nil {
				t.Fatal(err)
			}
		}
		c := ft.Clone()
		ft.Insert("fuzz")
		ft.Merge(c)
	})
}

// FuzzSketchOps drives a sketch with an arbitrary insert/merge sequence and
// checks the invariants the decoder enforces, so every reachable state is
// encodable and decodable.
func FuzzSketchOps(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add(bytes.Repeat([]byte{0xff, 0, 0, 0, 0, 0, 0xf0, 0x7f}, 40))
	huge := binary.LittleEndian.AppendUint64(nil, math.Float64bits(1e308))
	huge = binary.LittleEndian.AppendUint64(huge, math.Float64bits(-1e308))
	f.Add(bytes.Repeat(huge, 30))
	f.Fuzz(func(t *testing.T, ops []byte) {
		s, _ := NewSketch(MinK)
		other, _ := NewSketch(MinK)
		for len(ops) >= 8 {
			x := math.Float64frombits(binary.LittleEndian.Uint64(ops))
			ops = ops[8:]
			if x < 0 && !math.IsNaN(x) {
				other.Insert(x)
				continue
			}
			s.Insert(x)
			if len(ops)%5 == 0 {
				if err := s.Merge(other); err != nil {
					t.Fatal(err)
				}
			}
		}
		for range 50 * len(ops) {
			s.Insert(float64(len(ops)))
		}
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back Sketch
		if err := back.UnmarshalBinary(b); err != nil {
			t.Fatalf("reachable state rejected: %v", err)
		}
	})
}
