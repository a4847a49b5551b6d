package stage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// maxWindow bounds the negative sampler's window: the ring is one state
// value, which must stay below task.MaxValueLen.
const maxWindow = 100_000

// sampler is learner.PopularitySampler with its state exposed for
// persistence: the same ring of recent positives, the same uniform share,
// the same random sequence (SplitMix64 from splitmix(seed ^ 0x5A17E5)) and
// the same probabilities, so a partition draws what learner.Model would
// draw from the same positives (sampler_test.go checks this draw for draw).
// learner's sampler keeps its random state private; the user stage must
// store it with the partition so that a replay after a crash draws the same
// negatives and the item update counters stay exact.
type sampler struct {
	ring    []int32
	counts  []uint32
	filled  int
	next    int
	catalog int
	uniform uint64
	state   uint64
}

func newSampler(window int, uniform float64, seed uint64) *sampler {
	return &sampler{
		ring:    make([]int32, window),
		uniform: uint64(uniform * (1 << 32)),
		state:   splitmix(seed ^ 0x5A17E5),
	}
}

func (s *sampler) observe(item int32) {
	if item < 0 {
		return
	}
	if s.filled == len(s.ring) {
		s.counts[s.ring[s.next]]--
	}
	for int(item) >= len(s.counts) {
		s.counts = append(s.counts, 0)
	}
	s.counts[item]++
	s.ring[s.next] = item
	s.next++
	if s.next == len(s.ring) {
		s.next = 0
	}
	if s.filled < len(s.ring) {
		s.filled++
	}
	if int(item) >= s.catalog {
		s.catalog = int(item) + 1
	}
}

func (s *sampler) setCatalogSize(n int) {
	if n > s.catalog {
		s.catalog = n
	}
}

func (s *sampler) prob(item int32) float64 {
	if s.filled == 0 || item < 0 {
		return 0
	}
	u := float64(s.uniform) / (1 << 32)
	var p float64
	if int(item) < s.catalog {
		p = u / float64(s.catalog)
	}
	if int(item) < len(s.counts) {
		p += (1 - u) * float64(s.counts[item]) / float64(s.filled)
	}
	return p
}

func (s *sampler) logitOffset(item int32) float32 {
	n := max(s.catalog, int(item)+1)
	q := s.prob(item)
	if floor := 1 / float64(len(s.ring)+n); q < floor {
		q = floor
	}
	return -float32(math.Log(float64(n) * q))
}

func (s *sampler) sample() (int32, bool) {
	if s.filled == 0 {
		return 0, false
	}
	s.state += 0x9E3779B97F4A7C15
	r := splitmix(s.state)
	if r&0xFFFFFFFF < s.uniform {
		return int32((r >> 32) * uint64(s.catalog) >> 32), true
	}
	return s.ring[(r>>32)*uint64(s.filled)>>32], true
}

func splitmix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// Sampler state layout, version 1 (little-endian):
//
//	0   2  magic "ES"
//	2   1  version (1)
//	3   1  flags (0)
//	4   4  window w, 1–maxWindow
//	8   4  filled f ≤ w
//	12  4  next < w (= f when f < w)
//	16  4  catalog size c (items in the partition's catalogue)
//	20  8  uniform share, scaled to 2^32
//	28  8  random state
//	36  4f ring, item indices in [0, c), in ring order
const samplerHeaderLen = 36

var errBadSampler = errors.New("stage: bad sampler state")

func (s *sampler) appendState(dst []byte) []byte {
	le := binary.LittleEndian
	dst = append(dst, 'E', 'S', 1, 0)
	dst = le.AppendUint32(dst, uint32(len(s.ring)))
	dst = le.AppendUint32(dst, uint32(s.filled))
	dst = le.AppendUint32(dst, uint32(s.next))
	dst = le.AppendUint32(dst, uint32(s.catalog))
	dst = le.AppendUint64(dst, s.uniform)
	dst = le.AppendUint64(dst, s.state)
	for _, it := range s.ring[:s.filled] {
		dst = le.AppendUint32(dst, uint32(it))
	}
	return dst
}

// decodeSampler parses a sampler state. The caller compares its window and
// uniform share with the configuration (see adapt).
func decodeSampler(b []byte) (*sampler, error) {
	if len(b) < samplerHeaderLen {
		return nil, fmt.Errorf("%w: %d bytes", errBadSampler, len(b))
	}
	if b[0] != 'E' || b[1] != 'S' || b[2] != 1 || b[3] != 0 {
		return nil, fmt.Errorf("%w: header % x", errBadSampler, b[:4])
	}
	le := binary.LittleEndian
	w, f, next, c := le.Uint32(b[4:]), le.Uint32(b[8:]), le.Uint32(b[12:]), le.Uint32(b[16:])
	switch {
	case w < 1 || w > maxWindow:
		return nil, fmt.Errorf("%w: window %d", errBadSampler, w)
	case f > w || next >= w || (f < w && next != f):
		return nil, fmt.Errorf("%w: window %d, filled %d, next %d", errBadSampler, w, f, next)
	case c > math.MaxInt32:
		return nil, fmt.Errorf("%w: catalogue of %d", errBadSampler, c)
	case uint64(len(b)) != samplerHeaderLen+4*uint64(f):
		return nil, fmt.Errorf("%w: %d bytes for %d ring entries", errBadSampler, len(b), f)
	}
	s := &sampler{
		ring:    make([]int32, w),
		filled:  int(f),
		next:    int(next),
		catalog: int(c),
		uniform: le.Uint64(b[20:]),
		state:   le.Uint64(b[28:]),
	}
	if s.uniform > 1<<32 {
		return nil, fmt.Errorf("%w: uniform share %d/2^32", errBadSampler, s.uniform)
	}
	s.counts = make([]uint32, c)
	p := b[samplerHeaderLen:]
	for i := range s.filled {
		it := le.Uint32(p[4*i:])
		if it >= c {
			return nil, fmt.Errorf("%w: ring entry %d is item %d of %d", errBadSampler, i, it, c)
		}
		s.ring[i] = int32(it)
		s.counts[it]++
	}
	return s, nil
}

// adapt returns s if it has the configured window and uniform share, or
// else a sampler with the new settings fed s's positives oldest first and
// keeping its random state: a configuration change moves every partition
// the same way, deterministically.
func (s *sampler) adapt(window int, uniform float64) *sampler {
	u := uint64(uniform * (1 << 32))
	if len(s.ring) == window && s.uniform == u {
		return s
	}
	n := &sampler{ring: make([]int32, window), uniform: u, state: s.state}
	n.setCatalogSize(s.catalog)
	start := 0
	if s.filled == len(s.ring) {
		start = s.next
	}
	for k := range s.filled {
		n.observe(s.ring[(start+k)%len(s.ring)])
	}
	return n
}
