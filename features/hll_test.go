package features

import (
	"fmt"
	"math"
	"testing"
)

// TestHLLError compares the sketch with exact counts: sparse mode is exact
// (up to 32-bit collisions, none expected at these sizes); dense mode must
// stay within 3 standard errors on every sketch, and its mean relative error
// over k sketches — the bias — within 3σ/√k (1.2 % for k = 16).
func TestHLLError(t *testing.T) {
	sizes := []int{1, 10, 100, 768, 769, 2000, 5000, 20000, 100000}
	sketches := 16
	if testing.Short() {
		sizes, sketches = sizes[:7], 4
	}
	for _, n := range sizes {
		var sumRel float64
		for k := range sketches {
			var s hll
			for i := range n {
				h := Hash64(fmt.Sprintf("user-%d-%d", k, i))
				s.add(h)
				s.add(h) // repeats do not count
			}
			est := s.estimate()
			rel := (est - float64(n)) / float64(n)
			sumRel += rel
			if n <= sparseLimit {
				if est != float64(n) {
					t.Errorf("n=%d sketch %d: sparse estimate %g, want exact", n, k, est)
				}
				continue
			}
			if math.Abs(rel) > 3*HLLStdError {
				t.Errorf("n=%d sketch %d: estimate %.0f, relative error %.4f > 3σ = %.4f", n, k, est, rel, 3*HLLStdError)
			}
		}
		// The mean of k independent errors has standard error σ/√k.
		if bias, bound := sumRel/float64(sketches), 3*HLLStdError/math.Sqrt(float64(sketches)); n > sparseLimit && math.Abs(bias) > bound {
			t.Errorf("n=%d: mean relative error %.4f over %d sketches > %.4f", n, bias, sketches, bound)
		}
	}
}

func TestHLLEncoding(t *testing.T) {
	for _, n := range []int{0, 5, 700, 3000} {
		var s hll
		for i := range n {
			s.add(Hash64(fmt.Sprint(i)))
		}
		b := s.appendBinary(nil)
		var x hll
		r := reader{b: b}
		x.decode(&r)
		if err := r.done("hll"); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if x.estimate() != s.estimate() {
			t.Fatalf("n=%d: estimate %g after round trip, want %g", n, x.estimate(), s.estimate())
		}
	}
}
