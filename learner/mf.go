package learner

import (
	"fmt"
	"math"
)

// Dimension bounds of the retrieval model (DESIGN.md §4).
const (
	MinDim = 32
	MaxDim = 128
)

// MFConfig holds the hyper-parameters of the online matrix factorisation.
// Fill it with DefaultMFConfig and check it with Validate.
type MFConfig struct {
	// Dim is the number of latent factors (32–128). Default 64.
	Dim int
	// LearnRate is the base SGD step size. Default 0.25.
	LearnRate float32
	// MinRateFrac is the floor of the per-row schedule as a fraction of
	// LearnRate, so that rows keep adapting to drift. Default 0.8.
	MinRateFrac float32
	// ScheduleSteps sets the per-row learning-rate schedule
	// rate(n) = LearnRate · max(MinRateFrac, 1/sqrt(1 + n/ScheduleSteps)),
	// where n is the number of updates the row has received: new users and
	// items move fast, settled ones slow down. 0 disables it. Default 100.
	ScheduleSteps float32
	// Reg is the L2 penalty on factor vectors. Default 0.001.
	Reg float32
	// BiasReg is the L2 penalty on item biases. Default 0.001.
	BiasReg float32
	// Negatives is the number of popularity-sampled negatives per positive
	// event. Default 4.
	Negatives int
	// NegWeight is the loss weight of each sampled negative. Default 0.7.
	NegWeight float32
	// NegativeWindow is the number of recent positives the popularity
	// sampler draws negatives from. Default 2000.
	NegativeWindow int
	// NegativeUniform is the share of negatives drawn uniformly from the
	// catalogue instead of by popularity. Default 0.1.
	NegativeUniform float64
	// SampleCorrection applies the noise-contrastive correction
	// −log(Negatives·q(i)) to every example's logit during training, q being
	// the sampler's probability of drawing i. Popularity-sampled negatives
	// without it teach the model to cancel popularity, which is most of
	// what predicts the next item. Default true.
	SampleCorrection bool
	// InitScale is the standard deviation of initial item factor
	// components. Default 0.1.
	InitScale float32
	// UserInitScale is the same for users. Default 0: a new user's scores
	// are the item biases, a learned popularity prior, until their first
	// event moves them.
	UserInitScale float32
	// Seed makes initialisation and sampling reproducible.
	Seed uint64
	// Confidence maps events to training signals.
	Confidence Confidence
}

// DefaultMFConfig returns the defaults documented on MFConfig's fields.
func DefaultMFConfig() MFConfig {
	return MFConfig{
		Dim:              64,
		LearnRate:        0.25,
		MinRateFrac:      0.8,
		ScheduleSteps:    100,
		Reg:              0.001,
		BiasReg:          0.001,
		Negatives:        4,
		NegWeight:        0.7,
		NegativeWindow:   2000,
		NegativeUniform:  0.1,
		SampleCorrection: true,
		InitScale:        0.1,
		UserInitScale:    0,
		Seed:             1,
		Confidence:       DefaultConfidence(),
	}
}

// Validate reports the first field that is out of range.
func (c MFConfig) Validate() error {
	finite := func(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }
	switch {
	case c.Dim < MinDim || c.Dim > MaxDim:
		return fmt.Errorf("learner: dim %d: want %d–%d", c.Dim, MinDim, MaxDim)
	case !finite(c.LearnRate) || c.LearnRate <= 0 || c.LearnRate > 1:
		return fmt.Errorf("learner: learn rate %v: want (0, 1]", c.LearnRate)
	case !finite(c.MinRateFrac) || c.MinRateFrac < 0 || c.MinRateFrac > 1:
		return fmt.Errorf("learner: min rate fraction %v: want [0, 1]", c.MinRateFrac)
	case !finite(c.ScheduleSteps) || c.ScheduleSteps < 0:
		return fmt.Errorf("learner: schedule steps %v: want ≥ 0", c.ScheduleSteps)
	case !finite(c.Reg) || c.Reg < 0 || c.Reg >= 1:
		return fmt.Errorf("learner: reg %v: want [0, 1)", c.Reg)
	case !finite(c.BiasReg) || c.BiasReg < 0 || c.BiasReg >= 1:
		return fmt.Errorf("learner: bias reg %v: want [0, 1)", c.BiasReg)
	case c.Negatives < 0 || c.Negatives > 64:
		return fmt.Errorf("learner: negatives %d: want 0–64", c.Negatives)
	case !finite(c.NegWeight) || c.NegWeight < 0:
		return fmt.Errorf("learner: negative weight %v: want ≥ 0", c.NegWeight)
	case c.NegativeWindow < 1:
		return fmt.Errorf("learner: negative window %d: want ≥ 1", c.NegativeWindow)
	case !(c.NegativeUniform >= 0 && c.NegativeUniform <= 1):
		return fmt.Errorf("learner: negative uniform share %v: want [0, 1]", c.NegativeUniform)
	case !finite(c.InitScale) || c.InitScale < 0 || c.InitScale > 1:
		return fmt.Errorf("learner: init scale %v: want [0, 1]", c.InitScale)
	case !finite(c.UserInitScale) || c.UserInitScale < 0 || c.UserInitScale > 1:
		return fmt.Errorf("learner: user init scale %v: want [0, 1]", c.UserInitScale)
	}
	if err := c.Confidence.Validate(); err != nil {
		return err
	}
	return nil
}

// Row is the model state of one user or one item.
type Row struct {
	// Vec holds Dim latent factors.
	Vec []float32
	// Bias is the item's popularity offset; users leave it at zero because
	// a per-user constant cannot change that user's ranking.
	Bias float32
	// Count is the number of updates applied to the row; it drives the
	// learning-rate schedule.
	Count uint32
}

// Example is one term of an event's loss: an item, its label (1 for a
// positive, 0 for a negative) and the term's weight (confidence).
type Example struct {
	ItemID string
	Item   *Row // read, never written, by UserStep
	Label  float32
	Weight float32
	// Offset is added to the example's logit during training only. With
	// popularity-sampled negatives it carries the sampling correction
	// −log(Negatives·q(item)) (see SampleCorrection), so the model learns
	// scores that keep popularity instead of cancelling it.
	Offset float32
}

// MF is the online matrix-factorisation learner. Its methods are the hot
// loops of the user and item stages; they do not allocate and are safe for
// concurrent use on distinct rows (MF itself is read-only).
type MF struct {
	cfg MFConfig
}

// NewMF returns a learner for cfg.
func NewMF(cfg MFConfig) (*MF, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &MF{cfg: cfg}, nil
}

// Config returns the learner's configuration.
func (m *MF) Config() MFConfig { return m.cfg }

// rate returns the step size of a row that has received n updates.
func (m *MF) rate(n uint32) float32 {
	r := m.cfg.LearnRate
	if m.cfg.ScheduleSteps > 0 {
		f := float32(1 / math.Sqrt(1+float64(n)/float64(m.cfg.ScheduleSteps)))
		if f < m.cfg.MinRateFrac {
			f = m.cfg.MinRateFrac
		}
		r *= f
	}
	return r
}

// Score returns the model's affinity of user u for item it: bias + u·v.
func Score(u, it *Row) float32 {
	return it.Bias + dot(u.Vec, it.Vec)
}

// UserStep is the user stage's half of one SGD step on the weighted
// logistic loss
//
//	L = Σ_e w_e · [ −y_e log σ(s_e) − (1−y_e) log(1−σ(s_e)) ] + Reg/2 ‖u‖²,
//	s_e = b_e + u·v_e,
//
// over the examples of one event. It updates user in place and writes, for
// each example e, grads[e] = the descent direction for item e's row, which
// the item stage applies with ApplyItemGradient. grads must hold at least
// len(ex) values whose Grad slices have length Dim; ItemID is copied from
// the example. du is scratch space of length Dim (kept by the caller so
// that the step does not allocate).
//
// Item gradients are taken at the user vector as it was before the step,
// so the two halves together are exactly one simultaneous SGD step.
func (m *MF) UserStep(user *Row, ex []Example, grads []ItemGradient, du []float32) {
	d := m.cfg.Dim
	u := user.Vec[:d]
	du = du[:d]
	clear(du)
	grads = grads[:len(ex)]
	for e := range ex {
		it := ex[e].Item
		s := it.Bias + dot(u, it.Vec[:d]) + ex[e].Offset
		p := sigmoid(s)
		y, w := ex[e].Label, ex[e].Weight
		g := w * (y - p) // −∂L/∂s
		gr := &grads[e]
		gr.ItemID = ex[e].ItemID
		gr.Rate = m.cfg.LearnRate
		gr.BiasGrad = g
		gradStep(g, u, it.Vec[:d], du, gr.Grad[:d])
	}
	lr := m.rate(user.Count)
	shrinkAdd(1-lr*m.cfg.Reg, lr, du, u)
	user.Count++
}

// Loss returns the weighted logistic loss of ex for user, without the
// regulariser: the quantity UserStep descends. It is for tests and
// monitoring, not the hot path.
func (m *MF) Loss(user *Row, ex []Example) float64 {
	var l float64
	for _, e := range ex {
		s := Score(user, e.Item) + e.Offset
		l += float64(e.Weight) * logLoss(float64(s), float64(e.Label))
	}
	return l
}

// ApplyItemGradient is the item stage's half of the step: it moves item
// along g with the item's own scheduled rate and applies L2 shrinkage to
// the item's current vector (which may have moved since the user stage read
// it). It returns an error, leaving item unchanged, when g does not fit the
// model: gradients arrive from the wire.
func (m *MF) ApplyItemGradient(item *Row, g *ItemGradient) error {
	d := m.cfg.Dim
	if len(g.Grad) != d || len(item.Vec) < d {
		return fmt.Errorf("learner: item %q: gradient of dim %d for model of dim %d", g.ItemID, len(g.Grad), d)
	}
	if !(g.Rate > 0 && g.Rate <= 1) {
		return fmt.Errorf("learner: item %q: gradient rate %v: want (0, 1]", g.ItemID, g.Rate)
	}
	lr := g.Rate
	if m.cfg.LearnRate > 0 {
		// Same schedule as users, relative to the rate the user stage used.
		lr *= m.rate(item.Count) / m.cfg.LearnRate
	}
	shrinkAdd(1-lr*m.cfg.Reg, lr, g.Grad[:d], item.Vec[:d])
	item.Bias = (1-lr*m.cfg.BiasReg)*item.Bias + lr*g.BiasGrad
	item.Count++
	return nil
}

// InitRow fills vec with the deterministic initial factors of the row named
// id: components uniform on ±scale·√3 (standard deviation scale) drawn from
// a generator seeded by (seed, id). Any stage that first sees id produces
// the same vector, whatever order events arrive in.
func InitRow(seed uint64, id string, scale float32, vec []float32) {
	s := seed ^ hashString(id)
	a := scale * float32(math.Sqrt(3))
	for j := range vec {
		s += 0x9E3779B97F4A7C15
		x := splitmix(s)
		// 24 random bits → [0,1) exactly representable in float32.
		f := float32(x>>40) / (1 << 24)
		vec[j] = a * (2*f - 1)
	}
}

// hashString is 64-bit FNV-1a; it does not allocate.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// splitmix is the SplitMix64 finaliser.
func splitmix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func sigmoid(s float32) float32 {
	if s > 30 {
		s = 30
	} else if s < -30 {
		s = -30
	}
	return 1 / (1 + float32(math.Exp(float64(-s))))
}

// logLoss is the logistic loss of score s for label y ∈ [0,1], computed
// stably as softplus(s) − y·s.
func logLoss(s, y float64) float64 {
	var sp float64
	if s > 0 {
		sp = s + math.Log1p(math.Exp(-s))
	} else {
		sp = math.Log1p(math.Exp(s))
	}
	return sp - y*s
}
