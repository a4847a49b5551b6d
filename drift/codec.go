package drift

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// Binary layouts (all integers and floats little-endian). Both start with a
// 4-byte magic and a version byte so that a stored value can be recognised
// and evolved.
//
// Sketch, version 1:
//
//	"EDKS" | ver u8 | k u16 | levels u8 | count u64 | missing u64
//	| min f64 | max f64 | mean f64 | m2 f64 | rng u64
//	| few u8 (0–5, or 255 = more than 5) | few × (value f64, count u64)
//	| levels × (len u32, len × f64)
//
// FreqTable, version 1:
//
//	"EDFT" | ver u8 | capacity u32 | total u64 | other u64 | keys u32
//	| keys × (len u32, bytes, count u64), keys strictly ascending
const (
	sketchMagic = "EDKS"
	freqMagic   = "EDFT"
	codecV1     = 1
	manyFew     = 255
)

// MarshalBinary encodes s in the version-1 layout above.
func (s *Sketch) MarshalBinary() ([]byte, error) {
	k := s.K()
	nlev := max(len(s.levels), 1)
	b := make([]byte, 0, 82+16*maxFewDistinct+4*nlev+8*s.size)
	b = append(b, sketchMagic...)
	b = append(b, codecV1)
	b = binary.LittleEndian.AppendUint16(b, uint16(k))
	b = append(b, byte(nlev))
	b = binary.LittleEndian.AppendUint64(b, uint64(s.n))
	b = binary.LittleEndian.AppendUint64(b, uint64(s.missing))
	for _, f := range [...]float64{s.min, s.max, s.mean, s.m2} {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	rng := s.rng
	if rng == 0 {
		rng = rngSeed
	}
	b = binary.LittleEndian.AppendUint64(b, rng)
	if s.manyVal {
		b = append(b, manyFew)
	} else {
		b = append(b, byte(s.nFew))
		for i := range s.nFew {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.few[i]))
			b = binary.LittleEndian.AppendUint64(b, uint64(s.fewN[i]))
		}
	}
	if len(s.levels) == 0 {
		b = binary.LittleEndian.AppendUint32(b, 0)
	}
	for _, lvl := range s.levels {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(lvl)))
		for _, v := range lvl {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
	}
	return b, nil
}

// decoder reads little-endian fields and remembers the first shortfall.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b) < n {
		d.err = fmt.Errorf("truncated: need %d bytes, have %d: %w", n, len(d.b), ErrCorrupt)
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) u8() uint8 {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if p := d.take(2); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if p := d.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (d *decoder) f64() float64 { return math.Float64frombits(d.u64()) }

func corrupt(what string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(what, args...), ErrCorrupt)
}

// UnmarshalBinary decodes a sketch written by MarshalBinary, replacing s.
// It validates every invariant the sketch relies on (weights sum to the
// count, values finite and within [min, max], bounded size), so input from
// storage or the network cannot make later queries misbehave.
func (s *Sketch) UnmarshalBinary(data []byte) error {
	t, err := decodeSketch(data)
	if err != nil {
		return fmt.Errorf("drift: decode sketch: %w", err)
	}
	s.k, s.levels, s.caps, s.totalCap, s.size = t.k, t.levels, t.caps, t.totalCap, t.size
	s.n, s.missing, s.min, s.max, s.mean, s.m2, s.rng = t.n, t.missing, t.min, t.max, t.mean, t.m2, t.rng
	s.few, s.fewN, s.nFew, s.manyVal = t.few, t.fewN, t.nFew, t.manyVal
	s.viewOK = false
	return nil
}

func decodeSketch(data []byte) (*Sketch, error) {
	d := &decoder{b: data}
	if m := d.take(4); d.err != nil || string(m) != sketchMagic {
		return nil, corrupt("bad magic")
	}
	if v := d.u8(); v != codecV1 {
		return nil, corrupt("unsupported version %d", v)
	}
	s := &Sketch{}
	s.k = int(d.u16())
	nlev := int(d.u8())
	n, missing := d.u64(), d.u64()
	s.min, s.max, s.mean, s.m2 = d.f64(), d.f64(), d.f64(), d.f64()
	s.rng = d.u64()
	nFew := int(d.u8())
	if d.err != nil {
		return nil, d.err
	}
	if s.k < MinK || s.k > MaxK {
		return nil, corrupt("k=%d outside [%d, %d]", s.k, MinK, MaxK)
	}
	if nlev < 1 || nlev > maxLevels {
		return nil, corrupt("%d levels outside [1, %d]", nlev, maxLevels)
	}
	if n > math.MaxInt64 || missing > math.MaxInt64 {
		return nil, corrupt("count out of range")
	}
	s.n, s.missing = int64(n), int64(missing)
	if s.rng == 0 {
		return nil, corrupt("zero generator state")
	}
	if n > 0 {
		// Mean and m2 may legitimately overflow (values near ±1e308), so
		// only min and max, which bound every retained value, must be finite.
		if math.IsNaN(s.min) || math.IsNaN(s.max) || math.IsInf(s.min, 0) || math.IsInf(s.max, 0) || !(s.min <= s.max) {
			return nil, corrupt("min %v, max %v", s.min, s.max)
		}
		if s.m2 < 0 {
			return nil, corrupt("negative sum of squares")
		}
	} else if s.min != 0 || s.max != 0 || s.mean != 0 || s.m2 != 0 {
		return nil, corrupt("moments of an empty sketch")
	}
	switch {
	case nFew == manyFew:
		s.manyVal = true
	case nFew <= maxFewDistinct:
		var sum uint64
		for i := range nFew {
			v, c := d.f64(), d.u64()
			if d.err != nil {
				return nil, d.err
			}
			if math.IsNaN(v) || math.IsInf(v, 0) || v < s.min || v > s.max || c == 0 || c > n {
				return nil, corrupt("distinct value %d invalid", i)
			}
			if slices.Contains(s.few[:i], v) {
				return nil, corrupt("distinct value %d repeated", i)
			}
			s.few[i], s.fewN[i] = v, int64(c)
			sum += c
		}
		s.nFew = nFew
		if sum != n {
			return nil, corrupt("distinct counts sum to %d, want %d", sum, n)
		}
	default:
		return nil, corrupt("distinct count %d", nFew)
	}
	s.levels = make([][]float64, nlev)
	s.recomputeCaps()
	var weight uint64
	for h := range nlev {
		ln := int(d.u32())
		if d.err != nil {
			return nil, d.err
		}
		if ln > len(d.b)/8 {
			return nil, corrupt("level %d length %d exceeds input", h, ln)
		}
		s.size += ln
		if s.size >= s.totalCap {
			return nil, corrupt("%d values exceed capacity %d", s.size, s.totalCap)
		}
		lvl := make([]float64, ln)
		for i := range lvl {
			v := d.f64()
			if math.IsNaN(v) || v < s.min || v > s.max {
				return nil, corrupt("level %d value %d outside [min, max]", h, i)
			}
			lvl[i] = v
		}
		s.levels[h] = lvl
		hi, lo := bits.Mul64(uint64(ln), 1<<h)
		var carry uint64
		weight, carry = bits.Add64(weight, lo, 0)
		if hi != 0 || carry != 0 {
			return nil, corrupt("weights overflow")
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, corrupt("%d trailing bytes", len(d.b))
	}
	if weight != n {
		return nil, corrupt("level weights sum to %d, want count %d", weight, n)
	}
	return s, nil
}

// MarshalBinary encodes t in the version-1 layout above, keys ascending.
func (t *FreqTable) MarshalBinary() ([]byte, error) {
	keys := make([]string, 0, len(t.counts))
	size := 29
	for k := range t.counts {
		keys = append(keys, k)
		size += 12 + len(k)
	}
	slices.Sort(keys)
	b := make([]byte, 0, size)
	b = append(b, freqMagic...)
	b = append(b, codecV1)
	b = binary.LittleEndian.AppendUint32(b, uint32(t.Capacity()))
	b = binary.LittleEndian.AppendUint64(b, uint64(t.total))
	b = binary.LittleEndian.AppendUint64(b, uint64(t.other))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(keys)))
	for _, k := range keys {
		if uint64(len(k)) > math.MaxUint32 {
			return nil, fmt.Errorf("drift: encode freq table: key of %d bytes too long", len(k))
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(len(k)))
		b = append(b, k...)
		b = binary.LittleEndian.AppendUint64(b, uint64(t.counts[k]))
	}
	return b, nil
}

// UnmarshalBinary decodes a table written by MarshalBinary, replacing t,
// after checking that keys are unique and ascending, counts positive, the
// key count within capacity and Σ counts + other = total.
func (t *FreqTable) UnmarshalBinary(data []byte) error {
	if err := t.decode(data); err != nil {
		return fmt.Errorf("drift: decode freq table: %w", err)
	}
	return nil
}

func (t *FreqTable) decode(data []byte) error {
	d := &decoder{b: data}
	if m := d.take(4); d.err != nil || string(m) != freqMagic {
		return corrupt("bad magic")
	}
	if v := d.u8(); v != codecV1 {
		return corrupt("unsupported version %d", v)
	}
	capacity := int(d.u32())
	total, other := d.u64(), d.u64()
	nkeys := int(d.u32())
	if d.err != nil {
		return d.err
	}
	if capacity < 1 || capacity > MaxFreqCapacity {
		return corrupt("capacity %d outside [1, %d]", capacity, MaxFreqCapacity)
	}
	if nkeys > capacity || nkeys > len(d.b)/12 {
		return corrupt("%d keys for capacity %d and %d bytes", nkeys, capacity, len(d.b))
	}
	if total > math.MaxInt64 || other > total {
		return corrupt("total %d, other %d", total, other)
	}
	counts := make(map[string]int64, nkeys+1)
	sum := other
	prev := ""
	for i := range nkeys {
		kl := int(d.u32())
		kb := d.take(kl)
		c := d.u64()
		if d.err != nil {
			return d.err
		}
		k := string(kb)
		if i > 0 && k <= prev {
			return corrupt("key %d not in ascending order", i)
		}
		if c == 0 || c > total-sum {
			return corrupt("count of key %d invalid", i)
		}
		sum += c
		counts[k] = int64(c)
		prev = k
	}
	if len(d.b) != 0 {
		return corrupt("%d trailing bytes", len(d.b))
	}
	if sum != total {
		return corrupt("counts sum to %d, want total %d", sum, total)
	}
	t.capacity, t.counts, t.total, t.other = capacity, counts, int64(total), int64(other)
	return nil
}
