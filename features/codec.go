package features

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrCorrupt is returned (wrapped) by every decoder in this package when the
// bytes are not a valid encoding: truncated, trailing garbage, an unknown
// schema version, or a field outside its documented range. State is read back
// from Badger and from changelog topics, so a decoder must reject, never
// panic on, whatever it is given.
var ErrCorrupt = errors.New("features: corrupt encoding")

func corrupt(what string, args ...any) error {
	return fmt.Errorf("%w: "+what, append([]any{ErrCorrupt}, args...)...)
}

// reader walks an encoding. The first failure sticks in err and every later
// read returns zero, so decoders check err once per record, not per field.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = corrupt("%s", what)
	}
}

func (r *reader) byte(what string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.fail(what + ": truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what + ": bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what + ": bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a uvarint element count and checks it against max and against
// the bytes left (each element takes at least minSize bytes), so that a
// corrupt count can never make a decoder allocate more than the input
// justifies.
func (r *reader) count(what string, max, minSize int) int {
	v := r.uvarint(what)
	if r.err != nil {
		return 0
	}
	if v > uint64(max) || (minSize > 0 && v > uint64(len(r.b)/minSize)) {
		r.fail(fmt.Sprintf("%s: count %d out of range", what, v))
		return 0
	}
	return int(v)
}

func (r *reader) u32(what string) uint32 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 4 {
		r.fail(what + ": truncated")
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) u64(what string) uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.fail(what + ": truncated")
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// f64 reads a float64 that must be finite and not negative (every float this
// package stores is a count, a sum of ratios or a decayed count).
func (r *reader) f64(what string) float64 {
	f := math.Float64frombits(r.u64(what))
	if r.err == nil && !(f >= 0 && f <= math.MaxFloat64) {
		r.fail(what + ": not a finite non-negative number")
		return 0
	}
	return f
}

// f32 reads a float32 in [lo, hi].
func (r *reader) f32(what string, lo, hi float32) float32 {
	f := math.Float32frombits(r.u32(what))
	if r.err == nil && !(f >= lo && f <= hi) {
		r.fail(fmt.Sprintf("%s: %v not in [%v, %v]", what, f, lo, hi))
		return 0
	}
	return f
}

func (r *reader) bytes(what string, max int) []byte {
	n := r.count(what, max, 1)
	if r.err != nil {
		return nil
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b
}

func (r *reader) string(what string, min, max int) string {
	b := r.bytes(what, max)
	if r.err == nil && len(b) < min {
		r.fail(what + ": too short")
	}
	return string(b)
}

// done reports the first error, or a trailing-bytes error.
func (r *reader) done(what string) error {
	if r.err == nil && len(r.b) != 0 {
		r.err = corrupt("%s: %d trailing bytes", what, len(r.b))
	}
	if r.err != nil {
		return fmt.Errorf("features: decode %s: %w", what, r.err)
	}
	return nil
}

func appendU64(dst []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(dst, v) }
func appendF64(dst []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
}
func appendF32(dst []byte, f float32) []byte {
	return binary.LittleEndian.AppendUint32(dst, math.Float32bits(f))
}
func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendUvarint(dst []byte, v uint64) []byte { return binary.AppendUvarint(dst, v) }
func appendVarint(dst []byte, v int64) []byte   { return binary.AppendVarint(dst, v) }
