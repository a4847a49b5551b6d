package features

import (
	"math"
	"math/bits"
	"slices"
)

// The distinct-user sketch is a HyperLogLog with 2^12 registers (standard
// error 1.04/√4096 ≈ 1.6 %) and a sparse mode for small sets, after
// HyperLogLog++ (Heule, Nunkesser, Hall 2013): a sketch first keeps the
// distinct top 32 bits of each hash (exact up to hash collisions, ≈ n²/2³³)
// and becomes dense — 4 KiB of registers — only when that list would take
// more bytes than sparseLimit allows, so the many items with few users stay
// small. The dense estimate is Ertl's improved raw estimator ("New
// cardinality estimation algorithms for HyperLogLog sketches", 2017,
// algorithm 6), which needs neither the bias tables of HLL++ nor a switch to
// linear counting.
const (
	hllP        = 12
	hllM        = 1 << hllP
	hllQ        = 64 - hllP // register values are 0..hllQ+1
	sparseLimit = 768       // 3 KiB of uint32 < 4 KiB of registers
)

// HLLStdError is the standard error of the dense estimate.
var HLLStdError = 1.04 / math.Sqrt(hllM)

// hll is the distinct-user sketch. Exactly one of sparse and dense is in use:
// dense != nil means dense mode.
type hll struct {
	sparse []uint32 // sorted, distinct top 32 bits of the hashes
	dense  []uint8  // hllM registers
}

// add inserts a 64-bit hash.
func (s *hll) add(h uint64) {
	if s.dense != nil {
		s.addDense(h)
		return
	}
	k := uint32(h >> 32)
	i, found := slices.BinarySearch(s.sparse, k)
	if found {
		return
	}
	if len(s.sparse) < sparseLimit {
		s.sparse = slices.Insert(s.sparse, i, k)
		return
	}
	s.toDense()
	s.addDense(h)
}

func (s *hll) addDense(h uint64) {
	idx := h >> (64 - hllP)
	// The rank of the remaining bits; the sentinel bit caps it at hllQ+1.
	rho := uint8(bits.LeadingZeros64(h<<hllP|1<<(hllP-1)) + 1)
	if rho > s.dense[idx] {
		s.dense[idx] = rho
	}
}

// toDense moves the sparse entries into registers. A sparse entry keeps only
// 32 − hllP bits after the index, so its rank is capped at 32 − hllP + 1;
// reaching that cap needs ≈ 2^20 items per register, far beyond any item's
// audience.
func (s *hll) toDense() {
	s.dense = make([]uint8, hllM)
	for _, k := range s.sparse {
		idx := k >> (32 - hllP)
		rho := uint8(bits.LeadingZeros32(k<<hllP|1<<(hllP-1)) + 1)
		if rho > s.dense[idx] {
			s.dense[idx] = rho
		}
	}
	s.sparse = nil
}

// estimate returns the estimated number of distinct hashes added.
func (s *hll) estimate() float64 {
	if s.dense == nil {
		return float64(len(s.sparse))
	}
	var c [hllQ + 2]int
	for _, r := range s.dense {
		c[r]++
	}
	const m = float64(hllM)
	z := m * hllTau(1-float64(c[hllQ+1])/m)
	for k := hllQ; k >= 1; k-- {
		z = 0.5 * (z + float64(c[k]))
	}
	z += m * hllSigma(float64(c[0])/m)
	return m * m / (2 * math.Ln2 * z)
}

func hllSigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		prev := z
		z += x * y
		y += y
		if z == prev {
			return z
		}
	}
}

func hllTau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		prev := z
		y *= 0.5
		z -= (1 - x) * (1 - x) * y
		if z == prev {
			return z / 3
		}
	}
}

// Encoding: mode byte 0 = sparse: count uvarint, then the sorted entries as
// uvarint deltas (the first from zero, the rest > 0); 1 = dense: hllM
// register bytes, each ≤ hllQ+1.
func (s *hll) appendBinary(dst []byte) []byte {
	if s.dense != nil {
		dst = append(dst, 1)
		return append(dst, s.dense...)
	}
	dst = append(dst, 0)
	dst = appendUvarint(dst, uint64(len(s.sparse)))
	prev := uint32(0)
	for _, k := range s.sparse {
		dst = appendUvarint(dst, uint64(k-prev))
		prev = k
	}
	return dst
}

func (s *hll) decode(r *reader) {
	*s = hll{}
	switch r.byte("sketch mode") {
	case 0:
		n := r.count("sketch entries", sparseLimit, 1)
		if r.err != nil || n == 0 {
			return
		}
		s.sparse = make([]uint32, 0, n)
		var prev uint64
		for i := range n {
			d := r.uvarint("sketch entry")
			if r.err != nil {
				return
			}
			if (i > 0 && d == 0) || prev+d > math.MaxUint32 {
				r.fail("sketch entries: not increasing 32-bit values")
				return
			}
			prev += d
			s.sparse = append(s.sparse, uint32(prev))
		}
	case 1:
		if len(r.b) < hllM {
			r.fail("sketch registers: truncated")
			return
		}
		s.dense = make([]uint8, hllM)
		copy(s.dense, r.b[:hllM])
		r.b = r.b[hllM:]
		for _, v := range s.dense {
			if v > hllQ+1 {
				r.fail("sketch register: out of range")
				return
			}
		}
	default:
		if r.err == nil {
			r.fail("sketch mode: unknown")
		}
	}
}
