package synth

import (
	"math"
	"math/bits"
	"math/rand/v2"
)

// rng wraps PCG with the few distributions the model needs. The derivations
// are written out here rather than taken from rand.Rand so that the stream
// depends only on the PCG algorithm, which is fixed, and not on how a Go
// release implements Float64, IntN or NormFloat64.
type rng struct {
	src rand.PCG
}

// Stream selectors: one PCG stream per purpose, so that a change in how
// traffic is drawn does not move the latent vectors, and drift draws do not
// depend on when the drift happens.
const (
	streamModel uint64 = 0x9e3779b97f4a7c15 + iota
	streamTraffic
	streamCalibration
	streamDrift
)

func newRNG(seed, stream uint64) *rng {
	r := &rng{}
	r.src.Seed(seed, stream)
	return r
}

// float64 returns a uniform value in [0, 1) with 53 random bits.
func (r *rng) float64() float64 {
	return float64(r.src.Uint64()>>11) * 0x1p-53
}

// intN returns a uniform value in [0, n) for n > 0 (Lemire's
// multiply-shift with rejection, so it is exactly uniform).
func (r *rng) intN(n int) int {
	un := uint64(n)
	hi, lo := bits.Mul64(r.src.Uint64(), un)
	if lo < un {
		thresh := -un % un
		for lo < thresh {
			hi, lo = bits.Mul64(r.src.Uint64(), un)
		}
	}
	return int(hi)
}

// exp returns an exponential value of mean 1.
func (r *rng) exp() float64 {
	return -math.Log1p(-r.float64()) // 1-U lies in (0, 1]: finite
}

// normal returns a standard normal value (Box–Muller, one output per call:
// simpler than caching the pair, and normals are off the hot path).
func (r *rng) normal() float64 {
	u1 := 1 - r.float64() // (0, 1]
	u2 := r.float64()
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

// alias samples an index in O(1) from fixed weights (Vose's alias method).
type alias struct {
	prob  []float64
	alias []int32
}

// newAlias builds the table for weights w (non-negative, positive sum).
func newAlias(w []float64) alias {
	n := len(w)
	a := alias{prob: make([]float64, n), alias: make([]int32, n)}
	var sum float64
	for _, x := range w {
		sum += x
	}
	scaled := make([]float64, n)
	small := make([]int32, 0, n)
	large := make([]int32, 0, n)
	for i, x := range w {
		scaled[i] = x / sum * float64(n)
		if scaled[i] < 1 {
			small = append(small, int32(i))
		} else {
			large = append(large, int32(i))
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s := small[len(small)-1]
		small = small[:len(small)-1]
		l := large[len(large)-1]
		a.prob[s] = scaled[s]
		a.alias[s] = l
		scaled[l] -= 1 - scaled[s]
		if scaled[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	// What remains is 1 up to rounding error.
	for _, i := range large {
		a.prob[i] = 1
		a.alias[i] = i
	}
	for _, i := range small {
		a.prob[i] = 1
		a.alias[i] = i
	}
	return a
}

func (a *alias) sample(r *rng) int {
	i := r.intN(len(a.prob))
	if r.float64() < a.prob[i] {
		return i
	}
	return int(a.alias[i])
}

// zipfWeights returns w[i] = rank[i]^-s for 1-based ranks, normalised to sum 1.
func zipfWeights(dst []float64, rank []int32, s float64) []float64 {
	dst = dst[:0]
	var sum float64
	for _, r := range rank {
		w := math.Pow(float64(r), -s)
		dst = append(dst, w)
		sum += w
	}
	for i := range dst {
		dst[i] /= sum
	}
	return dst
}

// shuffle applies a Fisher–Yates shuffle to x.
func shuffle(r *rng, x []int32) {
	for i := len(x) - 1; i > 0; i-- {
		j := r.intN(i + 1)
		x[i], x[j] = x[j], x[i]
	}
}

func sigmoid(x float64) float64 {
	return 1 / (1 + math.Exp(-x))
}
