package learner

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// ItemGradient is what the user stage sends the item stage for one example
// of one event: the descent direction for the item's factors and bias and
// the base step size the user stage used. It is keyed by ItemID on the
// item-grads topic.
type ItemGradient struct {
	ItemID string
	// Partition and Offset name the event that produced the gradient
	// (-1 when unknown), so that an item stage can drop gradients replayed
	// after a user-stage restart.
	Partition int32
	Offset    int64
	// Rate is the base learning rate; the item stage scales it by the item's
	// own schedule (see ApplyItemGradient).
	Rate     float32
	BiasGrad float32
	Grad     []float32
}

// Wire format of an ItemGradient, version 1. All integers and floats are
// little-endian; floats are IEEE-754 binary32.
//
//	offset  size    field
//	0       2       magic "EG" (0x45 0x47)
//	2       1       schema version (1)
//	3       1       flags (0; reserved)
//	4       2       dim, uint16, 1–MaxWireDim
//	6       2       item id length n, uint16, 1–MaxItemIDLen
//	8       4       partition, int32 (-1 unknown)
//	12      8       offset, int64 (-1 unknown)
//	20      4       rate, float32, (0, 1]
//	24      4       bias gradient, float32
//	28      n       item id, UTF-8
//	28+n    4·dim   gradient, float32 × dim
//
// Every float must be finite: a NaN that slipped into an item vector would
// spread to every user who meets the item.
const (
	GradientSchemaVersion = 1
	gradientHeaderLen     = 28
	// MaxWireDim bounds dim on the wire (beyond MaxDim so the format can
	// outlive today's model sizes).
	MaxWireDim = 1024
	// MaxItemIDLen is the contract's bound on item ids (DESIGN.md §3).
	MaxItemIDLen = 256
)

var gradientMagic = [2]byte{'E', 'G'}

// ErrBadGradient is wrapped by every DecodeItemGradient error.
var ErrBadGradient = errors.New("learner: bad item gradient record")

// EncodedLen returns the encoded size of g.
func (g *ItemGradient) EncodedLen() int {
	return gradientHeaderLen + len(g.ItemID) + 4*len(g.Grad)
}

// AppendItemGradient appends the wire form of g to dst.
func AppendItemGradient(dst []byte, g *ItemGradient) ([]byte, error) {
	if err := g.check(); err != nil {
		return dst, err
	}
	dst = append(dst, gradientMagic[0], gradientMagic[1], GradientSchemaVersion, 0)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(g.Grad)))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(g.ItemID)))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(g.Partition))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(g.Offset))
	dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(g.Rate))
	dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(g.BiasGrad))
	dst = append(dst, g.ItemID...)
	for _, v := range g.Grad {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
	}
	return dst, nil
}

// DecodeItemGradient parses one record into g, reusing g.Grad's capacity.
// On error g is left in an unspecified state and the error wraps
// ErrBadGradient.
func DecodeItemGradient(b []byte, g *ItemGradient) error {
	if len(b) < gradientHeaderLen {
		return fmt.Errorf("%w: %d bytes, header needs %d", ErrBadGradient, len(b), gradientHeaderLen)
	}
	if b[0] != gradientMagic[0] || b[1] != gradientMagic[1] {
		return fmt.Errorf("%w: magic %q", ErrBadGradient, b[:2])
	}
	if b[2] != GradientSchemaVersion {
		return fmt.Errorf("%w: schema version %d, want %d", ErrBadGradient, b[2], GradientSchemaVersion)
	}
	if b[3] != 0 {
		return fmt.Errorf("%w: flags %#x, want 0", ErrBadGradient, b[3])
	}
	dim := int(binary.LittleEndian.Uint16(b[4:]))
	n := int(binary.LittleEndian.Uint16(b[6:]))
	if want := gradientHeaderLen + n + 4*dim; len(b) != want {
		return fmt.Errorf("%w: %d bytes, dim %d and id length %d need %d", ErrBadGradient, len(b), dim, n, want)
	}
	if cap(g.Grad) >= dim {
		g.Grad = g.Grad[:dim]
	} else {
		g.Grad = make([]float32, dim)
	}
	g.Partition = int32(binary.LittleEndian.Uint32(b[8:]))
	g.Offset = int64(binary.LittleEndian.Uint64(b[12:]))
	g.Rate = math.Float32frombits(binary.LittleEndian.Uint32(b[20:]))
	g.BiasGrad = math.Float32frombits(binary.LittleEndian.Uint32(b[24:]))
	g.ItemID = string(b[gradientHeaderLen : gradientHeaderLen+n])
	p := b[gradientHeaderLen+n:]
	for j := range g.Grad {
		g.Grad[j] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*j:]))
	}
	if err := g.check(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadGradient, err)
	}
	return nil
}

func (g *ItemGradient) check() error {
	switch {
	case len(g.Grad) < 1 || len(g.Grad) > MaxWireDim:
		return fmt.Errorf("dim %d: want 1–%d", len(g.Grad), MaxWireDim)
	case len(g.ItemID) < 1 || len(g.ItemID) > MaxItemIDLen:
		return fmt.Errorf("item id length %d: want 1–%d", len(g.ItemID), MaxItemIDLen)
	case !utf8.ValidString(g.ItemID):
		return errors.New("item id is not valid UTF-8")
	case !finite32(g.Rate) || g.Rate <= 0 || g.Rate > 1:
		return fmt.Errorf("rate %v: want (0, 1]", g.Rate)
	case !finite32(g.BiasGrad):
		return fmt.Errorf("bias gradient %v: want finite", g.BiasGrad)
	}
	for j, v := range g.Grad {
		if !finite32(v) {
			return fmt.Errorf("gradient[%d] = %v: want finite", j, v)
		}
	}
	return nil
}

func finite32(v float32) bool {
	return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0)
}
