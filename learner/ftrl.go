package learner

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// FTRLConfig holds the hyper-parameters of FTRL-Proximal (McMahan et al.,
// "Ad Click Prediction: a View from the Trenches", KDD 2013, Algorithm 1).
type FTRLConfig struct {
	// Alpha and Beta set the per-coordinate learning rate
	// η_i = Alpha / (Beta + √n_i). Defaults 0.05 and 1.
	Alpha, Beta float64
	// L1 and L2 are the regularisation strengths λ1 and λ2; L1 makes the
	// weights sparse. Defaults 1 and 1.
	L1, L2 float64
	// Dense is the number of named dense features, indices [0, Dense).
	Dense int
	// HashBits sets the hashed sparse space: 2^HashBits indices after the
	// dense ones. Default 18.
	HashBits uint8
}

// DefaultFTRLConfig returns the defaults documented on FTRLConfig. Dense
// is left at zero: the caller knows its named features.
func DefaultFTRLConfig() FTRLConfig {
	return FTRLConfig{Alpha: 0.05, Beta: 1, L1: 1, L2: 1, HashBits: 18}
}

// Validate reports the first setting out of range.
func (c FTRLConfig) Validate() error {
	ok := func(v float64) bool { return v >= 0 && !math.IsInf(v, 0) }
	switch {
	case !(c.Alpha > 0) || math.IsInf(c.Alpha, 0):
		return fmt.Errorf("learner: ftrl alpha %v: want > 0", c.Alpha)
	case !ok(c.Beta):
		return fmt.Errorf("learner: ftrl beta %v: want ≥ 0", c.Beta)
	case !ok(c.L1):
		return fmt.Errorf("learner: ftrl l1 %v: want ≥ 0", c.L1)
	case !ok(c.L2):
		return fmt.Errorf("learner: ftrl l2 %v: want ≥ 0", c.L2)
	case c.Dense < 0 || c.Dense > 1<<16:
		return fmt.Errorf("learner: ftrl dense features %d: want 0–65536", c.Dense)
	case c.HashBits > 22:
		return fmt.Errorf("learner: ftrl hash bits %d: want 0–22", c.HashBits)
	}
	return nil
}

// Feature is one non-zero input: an index (a dense slot, or one returned by
// FTRL.Hashed) and its value. Indices within one example must be distinct.
type Feature struct {
	Index uint32
	Value float64
}

// FTRL is an FTRL-Proximal logistic regression. It keeps the per-coordinate
// state z and n and derives weights lazily, so predicting and updating
// touch only the example's non-zero features and never allocate. An FTRL is
// not safe for concurrent use.
type FTRL struct {
	cfg  FTRLConfig
	mask uint32
	z, n []float64
}

// NewFTRL returns a model with all weights zero.
func NewFTRL(cfg FTRLConfig) (*FTRL, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	size := cfg.Dense + 1<<cfg.HashBits
	return &FTRL{
		cfg: cfg, mask: 1<<cfg.HashBits - 1,
		z: make([]float64, size), n: make([]float64, size),
	}, nil
}

// Config returns the model's configuration.
func (f *FTRL) Config() FTRLConfig { return f.cfg }

// Hashed returns the sparse index of the feature value in namespace ns, for
// example ("ctx.device", "tv"). It does not allocate.
func (f *FTRL) Hashed(ns, value string) uint32 {
	h := hashString(ns)
	h ^= 0xff // separator, so ("ab","c") ≠ ("a","bc")
	h *= 1099511628211
	for i := 0; i < len(value); i++ {
		h ^= uint64(value[i])
		h *= 1099511628211
	}
	return uint32(f.cfg.Dense) + uint32(splitmix(h))&f.mask
}

// weight is Algorithm 1's closed form for coordinate i.
func (f *FTRL) weight(i uint32) float64 {
	z := f.z[i]
	if math.Abs(z) <= f.cfg.L1 {
		return 0
	}
	s := 1.0
	if z < 0 {
		s = -1
	}
	return -(z - s*f.cfg.L1) / ((f.cfg.Beta+math.Sqrt(f.n[i]))/f.cfg.Alpha + f.cfg.L2)
}

// Weight returns the current weight of index i (0 when out of range).
func (f *FTRL) Weight(i uint32) float64 {
	if int(i) >= len(f.z) {
		return 0
	}
	return f.weight(i)
}

// Size returns the number of coordinates (Dense + 2^HashBits).
func (f *FTRL) Size() int { return len(f.z) }

// Margin returns w·x. Features with out-of-range indices are ignored.
func (f *FTRL) Margin(x []Feature) float64 {
	var m float64
	for _, ft := range x {
		if int(ft.Index) < len(f.z) {
			m += f.weight(ft.Index) * ft.Value
		}
	}
	return m
}

// Predict returns the probability σ(w·x), with the margin clipped to ±35.
func (f *FTRL) Predict(x []Feature) float64 {
	return sigmoid64(f.Margin(x))
}

// Update predicts x, then takes one FTRL-Proximal step towards label
// (0 or 1) and returns the prediction made before the step.
func (f *FTRL) Update(x []Feature, label float64) float64 {
	p := f.Predict(x)
	a := f.cfg.Alpha
	for _, ft := range x {
		i := ft.Index
		if int(i) >= len(f.z) {
			continue
		}
		g := (p - label) * ft.Value
		w := f.weight(i)
		n := f.n[i]
		sigma := (math.Sqrt(n+g*g) - math.Sqrt(n)) / a
		f.z[i] += g - sigma*w
		f.n[i] = n + g*g
	}
	return p
}

func sigmoid64(m float64) float64 {
	m = max(-35, min(35, m))
	return 1 / (1 + math.Exp(-m))
}

// Wire format of an FTRL model, version 1, little-endian:
//
//	offset  size   field
//	0       4      magic "EFTR"
//	4       1      schema version (1)
//	5       1      hash bits
//	6       2      reserved (0)
//	8       4      dense feature count, uint32
//	12      8×4    alpha, beta, l1, l2, float64
//	44      4      entry count m, uint32
//	48      20·m   entries: index uint32, z float64, n float64, ascending index
//
// Only coordinates that have seen a gradient (n > 0) are stored, so a
// sparse model stays small.
const (
	FTRLSchemaVersion = 1
	ftrlHeaderLen     = 48
	ftrlEntryLen      = 20
)

var ftrlMagic = [4]byte{'E', 'F', 'T', 'R'}

// ErrBadFTRL is wrapped by every UnmarshalBinary error.
var ErrBadFTRL = errors.New("learner: bad ftrl model record")

// MarshalBinary encodes the model's configuration and state.
func (f *FTRL) MarshalBinary() ([]byte, error) {
	m := 0
	for _, n := range f.n {
		if n > 0 {
			m++
		}
	}
	b := make([]byte, 0, ftrlHeaderLen+ftrlEntryLen*m)
	b = append(b, ftrlMagic[:]...)
	b = append(b, FTRLSchemaVersion, f.cfg.HashBits, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(f.cfg.Dense))
	for _, v := range []float64{f.cfg.Alpha, f.cfg.Beta, f.cfg.L1, f.cfg.L2} {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(m))
	for i, n := range f.n {
		if n > 0 {
			b = binary.LittleEndian.AppendUint32(b, uint32(i))
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f.z[i]))
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(n))
		}
	}
	return b, nil
}

// UnmarshalBinary replaces f with the model encoded in b. On error f is
// unchanged and the error wraps ErrBadFTRL.
func (f *FTRL) UnmarshalBinary(b []byte) error {
	if len(b) < ftrlHeaderLen {
		return fmt.Errorf("%w: %d bytes, header needs %d", ErrBadFTRL, len(b), ftrlHeaderLen)
	}
	if [4]byte(b[:4]) != ftrlMagic {
		return fmt.Errorf("%w: magic %q", ErrBadFTRL, b[:4])
	}
	if b[4] != FTRLSchemaVersion {
		return fmt.Errorf("%w: schema version %d, want %d", ErrBadFTRL, b[4], FTRLSchemaVersion)
	}
	if b[6] != 0 || b[7] != 0 {
		return fmt.Errorf("%w: reserved bytes not zero", ErrBadFTRL)
	}
	cfg := FTRLConfig{HashBits: b[5], Dense: int(binary.LittleEndian.Uint32(b[8:]))}
	if cfg.Dense > 1<<16 {
		return fmt.Errorf("%w: dense feature count %d: want ≤ 65536", ErrBadFTRL, cfg.Dense)
	}
	fs := [4]*float64{&cfg.Alpha, &cfg.Beta, &cfg.L1, &cfg.L2}
	for k, p := range fs {
		*p = math.Float64frombits(binary.LittleEndian.Uint64(b[12+8*k:]))
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadFTRL, err)
	}
	m := int(binary.LittleEndian.Uint32(b[44:]))
	if len(b)-ftrlHeaderLen != ftrlEntryLen*m || m < 0 {
		return fmt.Errorf("%w: %d bytes for %d entries", ErrBadFTRL, len(b), m)
	}
	size := cfg.Dense + 1<<cfg.HashBits
	if m > size {
		return fmt.Errorf("%w: %d entries for %d coordinates", ErrBadFTRL, m, size)
	}
	z, n := make([]float64, size), make([]float64, size)
	prev := -1
	for k := range m {
		e := b[ftrlHeaderLen+ftrlEntryLen*k:]
		i := int(binary.LittleEndian.Uint32(e))
		zi := math.Float64frombits(binary.LittleEndian.Uint64(e[4:]))
		ni := math.Float64frombits(binary.LittleEndian.Uint64(e[12:]))
		switch {
		case i <= prev || i >= size:
			return fmt.Errorf("%w: entry %d: index %d out of order or range", ErrBadFTRL, k, i)
		case math.IsNaN(zi) || math.IsInf(zi, 0):
			return fmt.Errorf("%w: entry %d: z %v not finite", ErrBadFTRL, k, zi)
		case !(ni > 0) || math.IsInf(ni, 0):
			return fmt.Errorf("%w: entry %d: n %v: want finite > 0", ErrBadFTRL, k, ni)
		}
		z[i], n[i] = zi, ni
		prev = i
	}
	g := FTRL{cfg: cfg, mask: 1<<cfg.HashBits - 1, z: z, n: n}
	// Finite state can still give an infinite weight (a tiny alpha with
	// beta 0); such a model would poison every prediction.
	for k := range m {
		i := binary.LittleEndian.Uint32(b[ftrlHeaderLen+ftrlEntryLen*k:])
		if w := g.weight(i); math.IsNaN(w) || math.IsInf(w, 0) {
			return fmt.Errorf("%w: entry %d: weight of index %d is %v", ErrBadFTRL, k, i, w)
		}
	}
	*f = g
	return nil
}
