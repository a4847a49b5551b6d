package task

import (
	"fmt"
	"math"
	"testing"
)

func TestKeySample(t *testing.T) {
	const n = 100_000
	for _, tc := range []struct {
		share, want float64
	}{{0, 0}, {-1, 0}, {0.01, 0.01}, {0.5, 0.5}, {1, 1}, {2, 1}} {
		s := NewKeySample(tc.share)
		kept := 0
		for i := range n {
			k := fmt.Sprintf("user-%d", i)
			b, str := s.Keeps([]byte(k)), s.KeepsString(k)
			if b != str {
				t.Fatalf("share %v: Keeps(%q) = %v, KeepsString = %v", tc.share, k, b, str)
			}
			if b {
				kept++
			}
		}
		// Binomial spread: 5 standard deviations.
		if got := float64(kept) / n; math.Abs(got-tc.want) > 5*math.Sqrt(tc.want*(1-tc.want)/n)+1e-12 {
			t.Errorf("share %v kept %.4f of keys", tc.share, got)
		}
	}
	// The FNV-1a reference value (offset basis and prime of FNV-1a 32).
	if h := SampleHash([]byte("a")); h != 0xe40c292c {
		t.Errorf("SampleHash(a) = %#x, want 0xe40c292c", h)
	}
}
