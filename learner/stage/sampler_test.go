package stage

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/eddyrec/eddy/learner"
)

// TestSamplerMatchesLearner drives this package's sampler and
// learner.PopularitySampler with the same observations and compares every
// draw and probability: the stages must sample what the evaluated model
// samples.
func TestSamplerMatchesLearner(t *testing.T) {
	for _, tc := range []struct {
		name    string
		window  int
		uniform float64
		seed    uint64
	}{
		{"defaults", 2000, 0.1, 1},
		{"small window wraps", 7, 0.1, 3},
		{"popularity only", 50, 0, 9},
		{"uniform only", 50, 1, 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := learner.NewPopularitySampler(tc.window, tc.uniform, tc.seed)
			if err != nil {
				t.Fatal(err)
			}
			s := newSampler(tc.window, tc.uniform, tc.seed)
			rng := rand.New(rand.NewPCG(tc.seed, 1))
			catalog := 0
			for step := range 5000 {
				switch rng.IntN(3) {
				case 0:
					catalog += rng.IntN(2)
					ref.SetCatalogSize(catalog)
					s.setCatalogSize(catalog)
				case 1:
					it := int32(rng.IntN(catalog + 1))
					ref.Observe(it)
					s.observe(it)
				default:
					a, aok := ref.Sample()
					b, bok := s.sample()
					if a != b || aok != bok {
						t.Fatalf("step %d: learner drew %d,%v; stage drew %d,%v", step, a, aok, b, bok)
					}
				}
				it := int32(rng.IntN(catalog + 2))
				if a, b := ref.Prob(it), s.prob(it); a != b {
					t.Fatalf("step %d: prob(%d) %v vs %v", step, it, a, b)
				}
				if a, b := ref.LogitOffset(it), s.logitOffset(it); a != b {
					t.Fatalf("step %d: offset(%d) %v vs %v", step, it, a, b)
				}
			}
		})
	}
}

// TestSamplerStateRoundTrip checks that a decoded sampler continues the
// same sequence as the original, at every fill level of the ring.
func TestSamplerStateRoundTrip(t *testing.T) {
	s := newSampler(5, 0.25, 7)
	s.setCatalogSize(4)
	for step := range 12 {
		s.observe(int32(step % 4))
		b := s.appendState(nil)
		d, err := decodeSampler(b)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if !bytes.Equal(d.appendState(nil), b) {
			t.Fatalf("step %d: re-encoding differs", step)
		}
		c := *s
		c.ring = append([]int32(nil), s.ring...)
		c.counts = append([]uint32(nil), s.counts...)
		for k := range 20 {
			x, _ := c.sample()
			y, _ := d.sample()
			if x != y || c.prob(int32(k%5)) != d.prob(int32(k%5)) {
				t.Fatalf("step %d draw %d: %d vs %d", step, k, x, y)
			}
		}
	}
}

func TestSamplerAdapt(t *testing.T) {
	s := newSampler(4, 0.1, 1)
	s.setCatalogSize(10)
	for _, it := range []int32{1, 2, 3, 4, 5, 6} { // wraps: ring holds 3,4,5,6
		s.observe(it)
	}
	if s.adapt(4, 0.1) != s {
		t.Fatal("adapt with the same settings made a new sampler")
	}
	n := s.adapt(2, 0.1)
	if n.filled != 2 || n.prob(5) == 0 || n.prob(6) == 0 || n.prob(4) != n.prob(1) {
		t.Fatalf("adapt(2) kept the wrong positives: ring %v filled %d", n.ring, n.filled)
	}
	if n.state != s.state || n.catalog != 10 {
		t.Fatalf("adapt lost the random state or the catalogue size")
	}
	w := s.adapt(8, 0.5)
	if w.filled != 4 || w.uniform != 1<<31 {
		t.Fatalf("adapt(8, 0.5): filled %d uniform %d", w.filled, w.uniform)
	}
}

func TestDecodeSamplerErrors(t *testing.T) {
	good := newSampler(3, 0.1, 1)
	good.setCatalogSize(2)
	good.observe(1)
	valid := good.appendState(nil)
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), valid...)) }
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"short", valid[:10]},
		{"magic", mut(func(b []byte) []byte { b[0] = 'X'; return b })},
		{"version", mut(func(b []byte) []byte { b[2] = 2; return b })},
		{"zero window", mut(func(b []byte) []byte { b[4], b[5] = 0, 0; return b })},
		{"filled beyond window", mut(func(b []byte) []byte { b[8] = 9; return b })},
		{"next not filled", mut(func(b []byte) []byte { b[12] = 2; return b })},
		{"ring item outside catalogue", mut(func(b []byte) []byte { b[samplerHeaderLen] = 5; return b })},
		{"trailing bytes", mut(func(b []byte) []byte { return append(b, 0) })},
		{"uniform above one", mut(func(b []byte) []byte { b[24] = 2; return b })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeSampler(tc.b); !errors.Is(err, errBadSampler) {
				t.Fatalf("err = %v, want errBadSampler", err)
			}
		})
	}
}

func FuzzDecodeSampler(f *testing.F) {
	s := newSampler(4, 0.1, 1)
	s.setCatalogSize(3)
	f.Add(s.appendState(nil))
	for _, it := range []int32{0, 2, 1, 2, 0} {
		s.observe(it)
	}
	f.Add(s.appendState(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeSampler(b)
		if err != nil {
			return
		}
		if !bytes.Equal(d.appendState(nil), b) {
			t.Fatal("a decodable state does not re-encode to itself")
		}
		for range 4 {
			if it, ok := d.sample(); ok && (it < 0 || int(it) >= max(d.catalog, 1)) {
				t.Fatalf("drew %d from a catalogue of %d", it, d.catalog)
			}
			_ = d.logitOffset(0)
		}
	})
}

func FuzzDecodeChunk(f *testing.F) {
	f.Add(appendChunk(nil, []string{"i1", "item-two"}))
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := decodeChunk(b, nil)
		if err != nil {
			return
		}
		if !bytes.Equal(appendChunk(nil, ids), b) {
			t.Fatal("a decodable chunk does not re-encode to itself")
		}
	})
}

func FuzzDecodeGradHeader(f *testing.F) {
	f.Add(appendGradHeader(nil, KindPositive, 1700000000000))
	f.Add([]byte("x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, ts, err := decodeGradHeader(b)
		if err != nil {
			return
		}
		if !bytes.Equal(appendGradHeader(nil, k, ts), b) {
			t.Fatal("a decodable header does not re-encode to itself")
		}
	})
}
