package features

import (
	"math/bits"

	"github.com/eddyrec/eddy/event"
)

// SeenCapacity bounds a user's seen set: it keeps the hashes of the last
// SeenCapacity distinct items the user consumed, in order of first
// consumption, and forgets the oldest when a new one arrives.
const SeenCapacity = 2000

// consumed reports whether an event of type t means the user consumed the
// item, so that it is excluded from later recommendations (see doc.go).
func consumed(t event.Type) bool {
	switch t {
	case event.Click, event.Watch, event.Like, event.Dislike, event.Purchase, event.Rating:
		return true
	}
	return false
}

// hashIndex is a linear-probing set of non-zero uint64 hashes (0 marks an
// empty slot). Its table is a power of two at least twice the element count,
// so probe chains stay short; deletion shifts entries back instead of leaving
// tombstones.
type hashIndex struct {
	slots []uint64
	n     int
}

func (x *hashIndex) has(h uint64) bool {
	if len(x.slots) == 0 {
		return false
	}
	mask := uint64(len(x.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch x.slots[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}

// add inserts h and reports whether it was absent.
func (x *hashIndex) add(h uint64) bool {
	if x.has(h) {
		return false
	}
	if 2*(x.n+1) > len(x.slots) {
		x.grow(2 * (x.n + 1))
	}
	x.put(h)
	x.n++
	return true
}

func (x *hashIndex) put(h uint64) {
	mask := uint64(len(x.slots) - 1)
	i := h & mask
	for x.slots[i] != 0 {
		i = (i + 1) & mask
	}
	x.slots[i] = h
}

// grow resizes the table to the smallest power of two ≥ min (at least 16).
func (x *hashIndex) grow(min int) {
	n := 16
	if min > n {
		n = 1 << bits.Len(uint(min-1))
	}
	old := x.slots
	x.slots = make([]uint64, n)
	for _, h := range old {
		if h != 0 {
			x.put(h)
		}
	}
}

// del removes h if present (backward-shift deletion keeps every probe chain
// intact).
func (x *hashIndex) del(h uint64) {
	if len(x.slots) == 0 {
		return
	}
	mask := uint64(len(x.slots) - 1)
	i := h & mask
	for x.slots[i] != h {
		if x.slots[i] == 0 {
			return
		}
		i = (i + 1) & mask
	}
	x.n--
	for {
		x.slots[i] = 0
		j := i
		for {
			j = (j + 1) & mask
			if x.slots[j] == 0 {
				return
			}
			home := x.slots[j] & mask
			// Move slots[j] into the hole at i unless its home lies
			// cyclically in (i, j].
			if (i <= j && (home <= i || home > j)) || (i > j && home <= i && home > j) {
				x.slots[i] = x.slots[j]
				i = j
				break
			}
		}
	}
}

// seenSet is a bounded FIFO set of item hashes: a ring in insertion order plus
// an index for O(1) membership. Only the ring is encoded; the index is
// rebuilt on decode.
type seenSet struct {
	ring  []uint64 // len ≤ SeenCapacity; once full, ring[head] is the oldest
	head  int
	index hashIndex
}

func (s *seenSet) len() int { return len(s.ring) }

func (s *seenSet) contains(h uint64) bool { return s.index.has(h) }

// add inserts h (non-zero) and reports whether it was new.
func (s *seenSet) add(h uint64) bool {
	if !s.index.add(h) {
		return false
	}
	if len(s.ring) < SeenCapacity {
		s.ring = append(s.ring, h)
		return true
	}
	s.index.del(s.ring[s.head])
	s.ring[s.head] = h
	s.head++
	if s.head == len(s.ring) {
		s.head = 0
	}
	return true
}

// each calls fn for every hash, oldest first.
func (s *seenSet) each(fn func(uint64)) {
	for i := range s.ring {
		j := s.head + i
		if j >= len(s.ring) {
			j -= len(s.ring)
		}
		fn(s.ring[j])
	}
}

func (s *seenSet) appendBinary(dst []byte) []byte {
	dst = appendUvarint(dst, uint64(len(s.ring)))
	s.each(func(h uint64) { dst = appendU64(dst, h) })
	return dst
}

func (s *seenSet) decode(r *reader) {
	*s = seenSet{}
	n := r.count("seen count", SeenCapacity, 8)
	if r.err != nil || n == 0 {
		return
	}
	s.ring = make([]uint64, 0, n)
	s.index.grow(2 * n)
	for range n {
		h := r.u64("seen hash")
		if r.err != nil {
			return
		}
		if h == 0 {
			r.fail("seen hash: zero")
			return
		}
		if !s.index.add(h) {
			r.fail("seen hashes: duplicate")
			return
		}
		s.ring = append(s.ring, h)
	}
}
