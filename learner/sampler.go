package learner

import (
	"fmt"
	"math"
)

// PopularitySampler draws negative items with probability proportional to
// their recent popularity: it keeps the last Window positive interactions
// in a ring and draws one of them uniformly, so an item's chance is its
// share of recent positives. With probability Uniform it draws uniformly
// from the whole catalogue instead, so that long-tail items still receive
// negative gradients. Items are dense indices (see Catalog).
//
// Sampling from recent positives tracks popularity as it drifts, costs O(1)
// per draw and per update, and never allocates. A sampler is not safe for
// concurrent use.
type PopularitySampler struct {
	ring    []int32
	counts  []uint32 // occurrences of each item in ring
	filled  int
	next    int
	catalog int
	uniform uint64 // probability scaled to 2^32
	state   uint64
}

// NewPopularitySampler returns a sampler over the last window positives,
// drawing uniformly from the catalogue with probability uniform.
func NewPopularitySampler(window int, uniform float64, seed uint64) (*PopularitySampler, error) {
	if window < 1 {
		return nil, fmt.Errorf("learner: sampler window %d: want ≥ 1", window)
	}
	if !(uniform >= 0 && uniform <= 1) {
		return nil, fmt.Errorf("learner: sampler uniform share %v: want [0, 1]", uniform)
	}
	return &PopularitySampler{
		ring:    make([]int32, window),
		uniform: uint64(uniform * (1 << 32)),
		state:   splitmix(seed ^ 0x5A17E5),
	}, nil
}

// Observe records a positive interaction with item.
func (s *PopularitySampler) Observe(item int32) {
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

// SetCatalogSize widens the range of uniform draws to items [0, n).
func (s *PopularitySampler) SetCatalogSize(n int) {
	if n > s.catalog {
		s.catalog = n
	}
}

// Prob returns the probability that Sample draws item, or 0 before any
// observation.
func (s *PopularitySampler) Prob(item int32) float64 {
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

// LogitOffset returns the training logit offset −log(N·q) for item, where
// q = Prob(item) and N is the catalogue size. Negatives drawn with
// probability q teach a logistic model log P(i|u) − log q(i) + const;
// adding this offset to the logit during training makes the score itself
// estimate log P(i|u) up to a constant, so recent popularity stays in the
// score instead of being cancelled. Under uniform sampling it is zero. An
// item the sampler has not seen gets the smallest probability a window of
// this size could give it.
func (s *PopularitySampler) LogitOffset(item int32) float32 {
	n := max(s.catalog, int(item)+1)
	q := s.Prob(item)
	if floor := 1 / float64(len(s.ring)+n); q < floor {
		q = floor
	}
	return -float32(math.Log(float64(n) * q))
}

// Sample returns a negative item, or false when nothing has been observed.
func (s *PopularitySampler) Sample() (int32, bool) {
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
