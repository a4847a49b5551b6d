package modelrec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// Layout constants of schema version 1.
const (
	Magic         byte = 0xED
	SchemaVersion byte = 1
	HeaderLen          = 48
	MaxDim             = 1024
	MaxSeen            = 1024
	MaxIDLen           = 256
)

// Kind says which topic a Vector record belongs to.
type Kind uint8

// Record kinds.
const (
	KindUser Kind = 1
	KindItem Kind = 2
)

func (k Kind) String() string {
	switch k {
	case KindUser:
		return "user"
	case KindItem:
		return "item"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ErrBadRecord is wrapped by every decoding error.
var ErrBadRecord = errors.New("modelrec: bad record")

// Vector is one user or item row of the retrieval model.
type Vector struct {
	Kind         Kind
	ModelVersion uint64
	// Updates counts the updates applied to the row since it was created.
	Updates uint64
	// TsMillis is the event time (unix ms) of the newest update applied.
	TsMillis int64
	// Bias is the item's popularity offset in the MF score (users: 0).
	Bias float32
	// Popularity is the decayed count of positive events as of TsMillis.
	Popularity float32
	// Impressions is the decayed count of impressions as of TsMillis; with
	// Popularity it gives a smoothed click-through rate.
	Impressions float32
	// Vec holds the latent factors.
	Vec []float32
	// Seen lists item ids the user consumed recently, oldest first (users
	// only).
	Seen []string
}

// EncodedLen returns the size of v's encoding.
func (v *Vector) EncodedLen() int {
	n := HeaderLen + 4*len(v.Vec)
	for _, s := range v.Seen {
		n += 2 + len(s)
	}
	return n
}

// Check reports the first field that the layout cannot carry.
func (v *Vector) Check() error {
	switch {
	case v.Kind != KindUser && v.Kind != KindItem:
		return fmt.Errorf("%w: kind %d", ErrBadRecord, v.Kind)
	case len(v.Vec) < 1 || len(v.Vec) > MaxDim:
		return fmt.Errorf("%w: dim %d: want 1–%d", ErrBadRecord, len(v.Vec), MaxDim)
	case len(v.Seen) > MaxSeen:
		return fmt.Errorf("%w: %d seen items: want ≤ %d", ErrBadRecord, len(v.Seen), MaxSeen)
	case v.Kind == KindItem && len(v.Seen) > 0:
		return fmt.Errorf("%w: item record with seen items", ErrBadRecord)
	case !finite(v.Bias) || !nonNeg(v.Popularity) || !nonNeg(v.Impressions):
		return fmt.Errorf("%w: bias %v, popularity %v, impressions %v: want finite, counts ≥ 0", ErrBadRecord, v.Bias, v.Popularity, v.Impressions)
	}
	for i, x := range v.Vec {
		if !finite(x) {
			return fmt.Errorf("%w: factor %d is %v", ErrBadRecord, i, x)
		}
	}
	for i, s := range v.Seen {
		if err := checkID(s); err != nil {
			return fmt.Errorf("%w: seen item %d: %w", ErrBadRecord, i, err)
		}
	}
	return nil
}

// AppendVector appends v's encoding to dst.
func AppendVector(dst []byte, v *Vector) ([]byte, error) {
	if err := v.Check(); err != nil {
		return dst, err
	}
	le := binary.LittleEndian
	dst = append(dst, Magic, SchemaVersion, byte(v.Kind), 0)
	dst = le.AppendUint16(dst, uint16(len(v.Vec)))
	dst = le.AppendUint16(dst, uint16(len(v.Seen)))
	dst = le.AppendUint64(dst, v.ModelVersion)
	dst = le.AppendUint64(dst, v.Updates)
	dst = le.AppendUint64(dst, uint64(v.TsMillis))
	dst = le.AppendUint32(dst, math.Float32bits(v.Bias))
	dst = le.AppendUint32(dst, math.Float32bits(v.Popularity))
	dst = le.AppendUint32(dst, math.Float32bits(v.Impressions))
	dst = le.AppendUint32(dst, 0)
	for _, x := range v.Vec {
		dst = le.AppendUint32(dst, math.Float32bits(x))
	}
	for _, s := range v.Seen {
		dst = le.AppendUint16(dst, uint16(len(s)))
		dst = append(dst, s...)
	}
	return dst, nil
}

// Header is the fixed part of a Vector record, readable without decoding
// the payload.
type Header struct {
	Kind         Kind
	Dim          int
	SeenCount    int
	ModelVersion uint64
	Updates      uint64
	TsMillis     int64
}

// DecodeHeader checks and returns the fixed header of b.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("%w: %d bytes, header needs %d", ErrBadRecord, len(b), HeaderLen)
	}
	if b[0] != Magic {
		return Header{}, fmt.Errorf("%w: magic %#x, want %#x", ErrBadRecord, b[0], Magic)
	}
	if b[1] != SchemaVersion {
		return Header{}, fmt.Errorf("%w: schema version %d, want %d", ErrBadRecord, b[1], SchemaVersion)
	}
	le := binary.LittleEndian
	h := Header{
		Kind:         Kind(b[2]),
		Dim:          int(le.Uint16(b[4:])),
		SeenCount:    int(le.Uint16(b[6:])),
		ModelVersion: le.Uint64(b[8:]),
		Updates:      le.Uint64(b[16:]),
		TsMillis:     int64(le.Uint64(b[24:])),
	}
	switch {
	case h.Kind != KindUser && h.Kind != KindItem:
		return Header{}, fmt.Errorf("%w: kind %d", ErrBadRecord, b[2])
	case b[3] != 0:
		return Header{}, fmt.Errorf("%w: flags %#x, want 0", ErrBadRecord, b[3])
	case h.Dim < 1 || h.Dim > MaxDim:
		return Header{}, fmt.Errorf("%w: dim %d: want 1–%d", ErrBadRecord, h.Dim, MaxDim)
	case h.SeenCount > MaxSeen:
		return Header{}, fmt.Errorf("%w: %d seen items: want ≤ %d", ErrBadRecord, h.SeenCount, MaxSeen)
	case h.Kind == KindItem && h.SeenCount > 0:
		return Header{}, fmt.Errorf("%w: item record with seen items", ErrBadRecord)
	case le.Uint32(b[44:]) != 0:
		return Header{}, fmt.Errorf("%w: reserved bytes not zero", ErrBadRecord)
	}
	return h, nil
}

// DecodeVector decodes b into v, reusing v.Vec's and v.Seen's storage. On
// error v's contents are unspecified and the error wraps ErrBadRecord.
func DecodeVector(b []byte, v *Vector) error {
	h, err := DecodeHeader(b)
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	if len(b) < HeaderLen+4*h.Dim {
		return fmt.Errorf("%w: %d bytes for dim %d", ErrBadRecord, len(b), h.Dim)
	}
	v.Kind, v.ModelVersion, v.Updates, v.TsMillis = h.Kind, h.ModelVersion, h.Updates, h.TsMillis
	v.Bias = math.Float32frombits(le.Uint32(b[32:]))
	v.Popularity = math.Float32frombits(le.Uint32(b[36:]))
	v.Impressions = math.Float32frombits(le.Uint32(b[40:]))
	if !finite(v.Bias) || !nonNeg(v.Popularity) || !nonNeg(v.Impressions) {
		return fmt.Errorf("%w: bias %v, popularity %v, impressions %v: want finite, counts ≥ 0", ErrBadRecord, v.Bias, v.Popularity, v.Impressions)
	}
	if cap(v.Vec) < h.Dim {
		v.Vec = make([]float32, h.Dim)
	}
	v.Vec = v.Vec[:h.Dim]
	p := b[HeaderLen:]
	for i := range v.Vec {
		x := math.Float32frombits(le.Uint32(p[4*i:]))
		if !finite(x) {
			return fmt.Errorf("%w: factor %d is %v", ErrBadRecord, i, x)
		}
		v.Vec[i] = x
	}
	p = p[4*h.Dim:]
	v.Seen = v.Seen[:0]
	for i := range h.SeenCount {
		if len(p) < 2 {
			return fmt.Errorf("%w: seen item %d: truncated", ErrBadRecord, i)
		}
		n := int(le.Uint16(p))
		if len(p) < 2+n {
			return fmt.Errorf("%w: seen item %d: %d bytes declared, %d left", ErrBadRecord, i, n, len(p)-2)
		}
		s := p[2 : 2+n]
		if err := checkID(string(s)); err != nil {
			return fmt.Errorf("%w: seen item %d: %w", ErrBadRecord, i, err)
		}
		v.Seen = append(v.Seen, string(s))
		p = p[2+n:]
	}
	if len(p) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrBadRecord, len(p))
	}
	return nil
}

// checkID applies the event contract's id rules (DESIGN.md §3).
func checkID(s string) error {
	if len(s) < 1 || len(s) > MaxIDLen {
		return fmt.Errorf("id length %d: want 1–%d bytes", len(s), MaxIDLen)
	}
	if !utf8.ValidString(s) {
		return errors.New("id is not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("id contains control character %U", r)
		}
	}
	return nil
}

func finite(x float32) bool {
	return !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0)
}

func nonNeg(x float32) bool { return finite(x) && x >= 0 }
