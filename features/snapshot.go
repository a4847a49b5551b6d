package features

import (
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/eddyrec/eddy/event"
)

// SeenDigest is a Bloom filter over a user's seen set, compact enough to ship
// in every snapshot: 10 bits and 7 probes per item give a false-positive
// rate of ≈ 0.8 % (an unseen item wrongly excluded), and no false negatives.
// Probe i (0 ≤ i < K) of item hash h = Hash64(item_id) sets bit
// hi64(((h₁ + i·h₂)·0x9e3779b97f4a7c15 mod 2⁶⁴) · m), where h₁ and h₂ are the
// low and high 32 bits of h (h₂ with its low bit set), m = 64·len(Bits), and
// hi64 is the high word of the 128-bit product (Lemire's fast range). Bit b
// is bit b%64 of Bits[b/64].
type SeenDigest struct {
	Items int      // number of items added
	K     int      // probes per item, 1..16
	Bits  []uint64 // the filter, m = 64·len(Bits) bits
}

const (
	digestBitsPerItem = 10
	digestProbes      = 7
	maxDigestWords    = (SeenCapacity*digestBitsPerItem + 63) / 64
)

// newSeenDigest builds the digest of s.
func newSeenDigest(s *seenSet) SeenDigest {
	d := SeenDigest{Items: s.len(), K: digestProbes}
	if d.Items == 0 {
		return d
	}
	d.Bits = make([]uint64, (d.Items*digestBitsPerItem+63)/64)
	s.each(func(h uint64) {
		m := uint64(len(d.Bits)) * 64
		h1, h2 := h&0xffffffff, h>>32|1
		for i := range uint64(d.K) {
			b, _ := bits.Mul64((h1+i*h2)*0x9e3779b97f4a7c15, m)
			d.Bits[b/64] |= 1 << (b % 64)
		}
	})
	return d
}

// ContainsHash reports whether the item with hash h (Hash64 of its id) may
// be in the seen set: false means certainly not.
func (d *SeenDigest) ContainsHash(h uint64) bool {
	if len(d.Bits) == 0 {
		return false
	}
	m := uint64(len(d.Bits)) * 64
	h1, h2 := h&0xffffffff, h>>32|1
	for i := range uint64(d.K) {
		b, _ := bits.Mul64((h1+i*h2)*0x9e3779b97f4a7c15, m)
		if d.Bits[b/64]&(1<<(b%64)) == 0 {
			return false
		}
	}
	return true
}

// Contains reports whether itemID may be in the seen set.
func (d *SeenDigest) Contains(itemID string) bool { return d.ContainsHash(Hash64(itemID)) }

// SnapshotType is one event type's counts in a UserSnapshot; Decayed holds
// the decayed counts (HalfLives order) evaluated at the snapshot's AsOf.
type SnapshotType struct {
	Total   uint64
	Decayed [NumHalfLives]float32
}

// UserSnapshot is the compact serving record of one user that the process
// role publishes, throttled per key, to a compacted topic for the scorer:
// what ranking and exclusion need, without the full state.
type UserSnapshot struct {
	UserID         string
	AsOf           int64 // unix ms: the user's latest event time
	FirstSeen      int64 // unix ms
	Events         uint64
	Sessions       uint64
	WatchEvents    uint64
	MeanWatchRatio float32 // -1 without watch events
	Types          [numTypes]SnapshotType
	Recent         []string // item ids, most recent first, ≤ RecentCapacity
	Seen           SeenDigest
}

// Snapshot returns the serving snapshot of u for user id, evaluated at the
// user's latest event time (event time keeps it deterministic on replay; the
// scorer decays further to its own clock with DecayedAt).
func (u *UserState) Snapshot(id string) UserSnapshot {
	s := UserSnapshot{
		UserID:         id,
		AsOf:           u.lastSeen,
		FirstSeen:      u.firstSeen,
		Events:         u.counts.total(),
		Sessions:       u.sessions,
		WatchEvents:    u.watchN,
		MeanWatchRatio: -1,
		Recent:         make([]string, len(u.recent)),
		Seen:           newSeenDigest(&u.seen),
	}
	if u.watchN > 0 {
		s.MeanWatchRatio = float32(u.watchSum / float64(u.watchN))
	}
	for i := range u.counts {
		c := &u.counts[i]
		s.Types[i].Total = c.Total
		for h := range c.Decayed {
			s.Types[i].Decayed[h] = float32(c.at(h, u.lastSeen))
		}
	}
	for i, r := range u.recent {
		s.Recent[i] = r.id
	}
	return s
}

// DecayedAt returns the decayed count of type t for half-life index h
// (0: 1 h, 1: 1 d, 2: 30 d) at now; a now before AsOf gives the value at
// AsOf.
func (s *UserSnapshot) DecayedAt(t event.Type, h int, now time.Time) float64 {
	i := int(t) - 1
	if i < 0 || i >= numTypes || h < 0 || h >= NumHalfLives {
		return 0
	}
	v := float64(s.Types[i].Decayed[h])
	if dt := now.UnixMilli() - s.AsOf; dt > 0 {
		v *= decayFactor(dt, h)
	}
	return v
}

// TypeMix returns the share of event type t among all the user's decayed
// counts for half-life index h (a ranker feature: what the user does
// lately); 0 when the user has no events.
func (s *UserSnapshot) TypeMix(t event.Type, h int) float64 {
	i := int(t) - 1
	if i < 0 || i >= numTypes || h < 0 || h >= NumHalfLives {
		return 0
	}
	var sum float64
	for j := range s.Types {
		sum += float64(s.Types[j].Decayed[h])
	}
	if sum == 0 {
		return 0
	}
	return float64(s.Types[i].Decayed[h]) / sum
}

// Recency returns the time since the user's latest event, at now.
func (s *UserSnapshot) Recency(now time.Time) time.Duration {
	return max(0, now.Sub(time.UnixMilli(s.AsOf)))
}

// userSnapshotVersion is the schema version byte of the UserSnapshot
// encoding.
const userSnapshotVersion = 1

// AppendBinary appends the encoding of s (layout in doc.go) to dst.
func (s *UserSnapshot) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, userSnapshotVersion)
	dst = appendString(dst, s.UserID)
	dst = appendVarint(dst, s.AsOf)
	dst = appendVarint(dst, s.FirstSeen)
	dst = appendUvarint(dst, s.Events)
	dst = appendUvarint(dst, s.Sessions)
	dst = appendUvarint(dst, s.WatchEvents)
	dst = appendF32(dst, s.MeanWatchRatio)
	var mask byte
	for i := range s.Types {
		if s.Types[i].Total > 0 {
			mask |= 1 << i
		}
	}
	dst = append(dst, mask)
	for i := range s.Types {
		if s.Types[i].Total == 0 {
			continue
		}
		dst = appendUvarint(dst, s.Types[i].Total)
		for _, v := range s.Types[i].Decayed {
			dst = appendF32(dst, v)
		}
	}
	dst = appendUvarint(dst, uint64(len(s.Recent)))
	for _, id := range s.Recent {
		dst = appendString(dst, id)
	}
	dst = appendUvarint(dst, uint64(s.Seen.Items))
	dst = append(dst, byte(s.Seen.K))
	dst = appendUvarint(dst, uint64(len(s.Seen.Bits)))
	for _, w := range s.Seen.Bits {
		dst = appendU64(dst, w)
	}
	return dst, nil
}

// MarshalBinary returns the encoding of s.
func (s *UserSnapshot) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// UnmarshalBinary decodes data into s. On error (wrapping ErrCorrupt) s is
// left unchanged.
func (s *UserSnapshot) UnmarshalBinary(data []byte) error {
	var x UserSnapshot
	r := reader{b: data}
	if v := r.byte("version"); r.err == nil && v != userSnapshotVersion {
		return fmt.Errorf("features: decode user snapshot: %w", corrupt("schema version %d, want %d", v, userSnapshotVersion))
	}
	x.UserID = r.string("user id", 1, maxIDLen)
	x.AsOf = r.varint("as of")
	x.FirstSeen = r.varint("first seen")
	x.Events = r.uvarint("events")
	x.Sessions = r.uvarint("sessions")
	x.WatchEvents = r.uvarint("watch events")
	x.MeanWatchRatio = r.f32("mean watch ratio", -1, 1)
	mask := r.byte("type mask")
	for i := range x.Types {
		if mask&(1<<i) == 0 {
			continue
		}
		x.Types[i].Total = r.uvarint("type total")
		for h := range x.Types[i].Decayed {
			x.Types[i].Decayed[h] = r.f32("decayed count", 0, math.MaxFloat32)
		}
	}
	if n := r.count("recent count", RecentCapacity, 2); n > 0 {
		x.Recent = make([]string, 0, n)
		for range n {
			x.Recent = append(x.Recent, r.string("recent item", 1, maxIDLen))
		}
	}
	x.Seen.Items = r.count("seen items", SeenCapacity, 0)
	x.Seen.K = int(r.byte("seen probes"))
	if w := r.count("seen words", maxDigestWords, 8); w > 0 {
		x.Seen.Bits = make([]uint64, w)
		for i := range x.Seen.Bits {
			x.Seen.Bits[i] = r.u64("seen word")
		}
	}
	if r.err == nil {
		switch {
		case x.Seen.K < 1 || x.Seen.K > 16:
			r.fail("seen probes: not in 1..16")
		case (x.Seen.Items == 0) != (len(x.Seen.Bits) == 0):
			r.fail("seen digest: items and bits disagree")
		case x.FirstSeen > x.AsOf:
			r.fail("first seen after as-of")
		}
	}
	if err := r.done("user snapshot"); err != nil {
		return err
	}
	*s = x
	return nil
}
