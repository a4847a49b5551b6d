package ranker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Reason says how an example's label was decided.
type Reason uint8

const (
	// ReasonEngaged: a positive engagement (click, like, purchase, a watch
	// of ratio ≥ the confidence's WatchPositiveAt, a good rating) answered
	// the served item within the label window. Label 1.
	ReasonEngaged Reason = iota + 1
	// ReasonRejected: the first decisive answer was an explicit negative
	// (dislike, skip, a watch abandoned under WatchNegativeBelow, a rating
	// under RatingWeakAt). Label 0.
	ReasonRejected
	// ReasonExpired: nothing decisive answered the item within the label
	// window (event time). Label 0.
	ReasonExpired
)

var reasonNames = [...]string{ReasonEngaged: "engaged", ReasonRejected: "rejected", ReasonExpired: "expired"}

func (r Reason) String() string {
	if r >= ReasonEngaged && int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// NamedValue is one logged feature value.
type NamedValue struct {
	Name  string
	Value float64
}

// Example is one labelled served item: the record value of
// <prefix>ranker.examples.
type Example struct {
	Label    uint8 // 1 positive, 0 negative
	Reason   Reason
	Position int   // 0-based position in the served list
	ServedMs int64 // the served list's time, unix ms
	LabelMs  int64 // event time the label was decided at, unix ms
	// Features are the ranker's feature values at serving time, by name,
	// sorted by name.
	Features []NamedValue
}

// Example record layout, schema version 1, little-endian:
//
//	offset size field
//	0      1    magic 0xE5
//	1      1    schema version (1)
//	2      1    label: 0 or 1
//	3      1    reason (Reason: 1 engaged, 2 rejected, 3 expired)
//	4      2    position (uint16)
//	6      8    served time, unix ms (int64)
//	14     8    label time, unix ms (int64)
//	22     1    feature count n (≤ 255)
//	23     …    n × (name length uint8 1–64, name bytes, value float64)
//
// Anything after the last feature is an error.
const (
	ExampleSchemaVersion = 1
	exampleMagic         = 0xE5
	exampleHeaderLen     = 23
	maxFeatureName       = 64
)

// ErrBadExample is wrapped by every DecodeExample error.
var ErrBadExample = errors.New("ranker: bad example record")

// AppendExample appends x's record to dst. Features beyond 255, names
// longer than 64 bytes and non-finite values are programmer errors the
// joiner never produces; they are reported.
func AppendExample(dst []byte, x *Example) ([]byte, error) {
	if len(x.Features) > 255 {
		return dst, fmt.Errorf("%w: %d features", ErrBadExample, len(x.Features))
	}
	pos := min(max(x.Position, 0), math.MaxUint16)
	dst = append(dst, exampleMagic, ExampleSchemaVersion, x.Label, byte(x.Reason))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(pos))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(x.ServedMs))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(x.LabelMs))
	dst = append(dst, byte(len(x.Features)))
	for _, f := range x.Features {
		if len(f.Name) == 0 || len(f.Name) > maxFeatureName || math.IsNaN(f.Value) || math.IsInf(f.Value, 0) {
			return dst, fmt.Errorf("%w: feature %q = %v", ErrBadExample, f.Name, f.Value)
		}
		dst = append(dst, byte(len(f.Name)))
		dst = append(dst, f.Name...)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f.Value))
	}
	return dst, nil
}

// DecodeExample parses an example record into x, reusing x.Features.
// Feature names are copied.
func DecodeExample(b []byte, x *Example) error {
	if len(b) < exampleHeaderLen {
		return fmt.Errorf("%w: %d bytes, header needs %d", ErrBadExample, len(b), exampleHeaderLen)
	}
	if b[0] != exampleMagic || b[1] != ExampleSchemaVersion {
		return fmt.Errorf("%w: magic %#x version %d", ErrBadExample, b[0], b[1])
	}
	if b[2] > 1 || b[3] < byte(ReasonEngaged) || b[3] > byte(ReasonExpired) {
		return fmt.Errorf("%w: label %d reason %d", ErrBadExample, b[2], b[3])
	}
	x.Label, x.Reason = b[2], Reason(b[3])
	x.Position = int(binary.LittleEndian.Uint16(b[4:]))
	x.ServedMs = int64(binary.LittleEndian.Uint64(b[6:]))
	x.LabelMs = int64(binary.LittleEndian.Uint64(b[14:]))
	n := int(b[22])
	x.Features = x.Features[:0]
	p := b[exampleHeaderLen:]
	for i := range n {
		if len(p) < 1 {
			return fmt.Errorf("%w: feature %d truncated", ErrBadExample, i)
		}
		l := int(p[0])
		if l == 0 || l > maxFeatureName || len(p) < 1+l+8 {
			return fmt.Errorf("%w: feature %d: name length %d", ErrBadExample, i, l)
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(p[1+l:]))
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: feature %d not finite", ErrBadExample, i)
		}
		x.Features = append(x.Features, NamedValue{Name: string(p[1 : 1+l]), Value: v})
		p = p[1+l+8:]
	}
	if len(p) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrBadExample, len(p))
	}
	return nil
}
