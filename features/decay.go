package features

import (
	"math"
	"time"

	"github.com/eddyrec/eddy/event"
)

// HalfLives are the half-lives of the decayed counts, in the order of the
// Decayed arrays and of the JSON names DecayNames.
var HalfLives = [NumHalfLives]time.Duration{time.Hour, 24 * time.Hour, 30 * 24 * time.Hour}

// DecayNames are the JSON keys of the decayed counts, in HalfLives order.
var DecayNames = [NumHalfLives]string{"decayed_1h", "decayed_1d", "decayed_30d"}

// NumHalfLives is the number of decayed counts kept per event type.
const NumHalfLives = 3

// numTypes is the number of valid event types; type t lives at index t-1.
const numTypes = 8

var halfLifeMs = [NumHalfLives]float64{
	float64(time.Hour / time.Millisecond),
	float64(24 * time.Hour / time.Millisecond),
	float64(30 * 24 * time.Hour / time.Millisecond),
}

// decayFactor returns 2^(−dtMs/halfLife) for dtMs ≥ 0.
func decayFactor(dtMs int64, h int) float64 {
	if dtMs == 0 {
		return 1
	}
	return math.Exp2(-float64(dtMs) / halfLifeMs[h])
}

// typeCounter is one event type's counts: the exact total and the decayed
// counts, all three stored as their value at T (unix ms), the latest event
// time applied. They are decayed lazily, when an event or a query arrives.
type typeCounter struct {
	Total   uint64
	T       int64
	Decayed [NumHalfLives]float64
}

// add applies one event of weight 1 at time t (unix ms). Because exponential
// decay is linear, an event older than T contributes exactly what it would
// have contributed had it arrived in order: 2^(−(T−t)/h) at time T. The sum
// is therefore independent of arrival order (up to float rounding).
func (c *typeCounter) add(t int64) {
	if c.Total == 0 {
		c.T = t
	}
	c.Total++
	switch {
	case t >= c.T:
		dt := t - c.T
		for h := range c.Decayed {
			c.Decayed[h] = c.Decayed[h]*decayFactor(dt, h) + 1
		}
		c.T = t
	default:
		dt := c.T - t
		for h := range c.Decayed {
			c.Decayed[h] += decayFactor(dt, h)
		}
	}
}

// at returns the decayed count for half-life index h evaluated at now (unix
// ms). A query time before T returns the value at T: the stored sum already
// contains the events after now, and extrapolating backwards would inflate
// them instead of removing them.
func (c *typeCounter) at(h int, now int64) float64 {
	if now <= c.T {
		return c.Decayed[h]
	}
	return c.Decayed[h] * decayFactor(now-c.T, h)
}

// TypeCount is the JSON view of one event type's counts at a query time.
type TypeCount struct {
	Total      uint64  `json:"total"`
	Decayed1h  float64 `json:"decayed_1h"`
	Decayed1d  float64 `json:"decayed_1d"`
	Decayed30d float64 `json:"decayed_30d"`
}

func (c *typeCounter) view(now int64) TypeCount {
	return TypeCount{
		Total:      c.Total,
		Decayed1h:  c.at(0, now),
		Decayed1d:  c.at(1, now),
		Decayed30d: c.at(2, now),
	}
}

// typeCounters holds the counters of the eight event types.
type typeCounters [numTypes]typeCounter

func (cs *typeCounters) add(t event.Type, ms int64) bool {
	i := int(t) - 1
	if i < 0 || i >= numTypes {
		return false
	}
	cs[i].add(ms)
	return true
}

func (cs *typeCounters) view(now int64) map[string]TypeCount {
	m := make(map[string]TypeCount, numTypes)
	for i := range cs {
		if cs[i].Total > 0 {
			m[event.Type(i+1).String()] = cs[i].view(now)
		}
	}
	return m
}

// total is the number of events over all types.
func (cs *typeCounters) total() uint64 {
	var n uint64
	for i := range cs {
		n += cs[i].Total
	}
	return n
}

// Encoding (see doc.go): a one-byte mask of the present types (bit i = type
// i+1), then for each present type in order: total uvarint, T varint, three
// float64 little-endian.
func (cs *typeCounters) appendBinary(dst []byte) []byte {
	var mask byte
	for i := range cs {
		if cs[i].Total > 0 {
			mask |= 1 << i
		}
	}
	dst = append(dst, mask)
	for i := range cs {
		if cs[i].Total == 0 {
			continue
		}
		dst = appendUvarint(dst, cs[i].Total)
		dst = appendVarint(dst, cs[i].T)
		for _, v := range cs[i].Decayed {
			dst = appendF64(dst, v)
		}
	}
	return dst
}

func (cs *typeCounters) decode(r *reader) {
	mask := r.byte("type mask")
	for i := range cs {
		if mask&(1<<i) == 0 {
			cs[i] = typeCounter{}
			continue
		}
		c := &cs[i]
		c.Total = r.uvarint("type total")
		if r.err == nil && c.Total == 0 {
			r.fail("type total: zero for a present type")
		}
		c.T = r.varint("type time")
		for h := range c.Decayed {
			c.Decayed[h] = r.f64("decayed count")
		}
	}
}
