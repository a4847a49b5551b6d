package learner

import (
	"fmt"
	"math"

	"github.com/eddyrec/eddy/event"
)

// Seeds of user and item initialisation differ so that a user and an item
// with the same id do not start from the same vector.
const (
	userSeedSalt = 0x75736572 // "user"
	itemSeedSalt = 0x6974656d // "item"
)

// rowBlock is how many rows' vectors are allocated at once, so that a new
// user or item costs no allocation of its own most of the time.
const rowBlock = 1024

// Model is an in-memory online MF: user rows, item rows and a negative
// sampler, updated per event by composing UserStep and ApplyItemGradient
// exactly as the user and item stages do in the stream. It serves
// evaluation and tests; the streaming stages call the same functions on
// their own state. A Model is not safe for concurrent use.
type Model struct {
	mf           *MF
	cfg          MFConfig
	users, items *Catalog
	userRows     []Row
	itemRows     []Row
	slab         []float32
	sampler      *PopularitySampler
	frozen       bool

	// Per-event scratch, sized once.
	ex    []Example
	negs  []int32
	grads []ItemGradient
	du    []float32
}

// NewModel returns an empty model whose users and items are indexed by the
// given catalogues (which the caller interns ids into).
func NewModel(cfg MFConfig, users, items *Catalog) (*Model, error) {
	mf, err := NewMF(cfg)
	if err != nil {
		return nil, err
	}
	s, err := NewPopularitySampler(cfg.NegativeWindow, cfg.NegativeUniform, cfg.Seed)
	if err != nil {
		return nil, err
	}
	m := &Model{
		mf: mf, cfg: cfg, users: users, items: items, sampler: s,
		ex:    make([]Example, 0, 1+cfg.Negatives),
		negs:  make([]int32, 0, cfg.Negatives),
		grads: make([]ItemGradient, 1+cfg.Negatives),
		du:    make([]float32, cfg.Dim),
	}
	for i := range m.grads {
		m.grads[i].Grad = make([]float32, cfg.Dim)
		m.grads[i].Partition, m.grads[i].Offset = -1, -1
	}
	return m, nil
}

// MF returns the learner the model runs.
func (m *Model) MF() *MF { return m.mf }

// Freeze stops learning: later Learn calls leave the model unchanged and
// users or items first seen afterwards stay unknown to it.
func (m *Model) Freeze() { m.frozen = true }

// Frozen reports whether Freeze was called.
func (m *Model) Frozen() bool { return m.frozen }

// NumItems returns the number of item rows (items the model has learnt of).
func (m *Model) NumItems() int { return len(m.itemRows) }

func (m *Model) newVec() []float32 {
	d := m.cfg.Dim
	if len(m.slab) < d {
		m.slab = make([]float32, rowBlock*d)
	}
	v := m.slab[:d:d]
	m.slab = m.slab[d:]
	return v
}

// ensureUser initialises rows up to user u on first sight.
func (m *Model) ensureUser(u int32) {
	for int(u) >= len(m.userRows) {
		id := m.users.ID(int32(len(m.userRows)))
		v := m.newVec()
		InitRow(m.cfg.Seed^userSeedSalt, id, m.cfg.UserInitScale, v)
		m.userRows = append(m.userRows, Row{Vec: v})
	}
}

func (m *Model) ensureItem(i int32) {
	for int(i) >= len(m.itemRows) {
		id := m.items.ID(int32(len(m.itemRows)))
		v := m.newVec()
		InitRow(m.cfg.Seed^itemSeedSalt, id, m.cfg.InitScale, v)
		m.itemRows = append(m.itemRows, Row{Vec: v})
	}
	m.sampler.SetCatalogSize(len(m.itemRows))
}

// LearnEvent learns from ev, whose user and item have catalogue indices u
// and i, with the label and weight of the model's Confidence.
func (m *Model) LearnEvent(u, i int32, ev *event.Event) {
	y, w := m.cfg.Confidence.Signal(ev)
	m.Learn(u, i, y, w)
}

// Learn applies one event. It is the reference recipe the user and item
// stages follow:
//
//  1. initialise the user and item rows on first sight (InitRow);
//  2. build the examples: the event's item with (label, weight), and for a
//     positive, Negatives items drawn from the PopularitySampler (skipping
//     the event's item) with weight NegWeight·min(weight, 1);
//  3. with SampleCorrection, set each example's Offset to the sampler's
//     LogitOffset for its item;
//  4. UserStep on the user row, producing one ItemGradient per example;
//  5. ApplyItemGradient to each item row (the item stage);
//  6. for a positive, Observe the item in the sampler.
func (m *Model) Learn(u, i int32, label, weight float32) {
	if m.frozen || weight <= 0 {
		return
	}
	m.ensureUser(u)
	m.ensureItem(i)
	m.negs = m.negs[:0]
	ex := append(m.ex[:0], Example{ItemID: m.items.ID(i), Item: &m.itemRows[i], Label: label, Weight: weight})
	if label > 0 {
		// A weak positive earns proportionally weak negatives, so that it
		// cannot push the user away from more than it pulls them towards.
		nw := m.cfg.NegWeight * min(weight, 1)
		for range m.cfg.Negatives {
			j, ok := m.sampler.Sample()
			if !ok || j == i {
				continue
			}
			ex = append(ex, Example{ItemID: m.items.ID(j), Item: &m.itemRows[j], Label: 0, Weight: nw})
			m.negs = append(m.negs, j)
		}
	}
	if m.cfg.SampleCorrection && m.cfg.Negatives > 0 {
		for e := range ex {
			j := i
			if e > 0 {
				j = m.negs[e-1]
			}
			ex[e].Offset = m.sampler.LogitOffset(j)
		}
	}
	m.ex = ex
	m.mf.UserStep(&m.userRows[u], ex, m.grads, m.du)
	for e := range ex {
		// Cannot fail: the gradient was produced by this model's own
		// UserStep, so its dimension and rate fit.
		_ = m.mf.ApplyItemGradient(ex[e].Item, &m.grads[e])
	}
	if label > 0 {
		m.sampler.Observe(i)
	}
}

// Score returns user u's score for item i, -Inf when the model does not
// know the item; an unknown user scores the item bias.
func (m *Model) Score(u, i int32) float32 {
	if int(i) >= len(m.itemRows) {
		return float32(math.Inf(-1))
	}
	it := &m.itemRows[i]
	if int(u) >= len(m.userRows) {
		return it.Bias
	}
	return Score(&m.userRows[u], it)
}

// Scores writes user u's scores for items [0, n) into dst (reusing its
// storage) and returns it. Items the model does not know score -Inf.
func (m *Model) Scores(u int32, n int, dst []float32) []float32 {
	if cap(dst) < n {
		dst = make([]float32, n, n+n/4+64)
	}
	dst = dst[:n]
	known := min(n, len(m.itemRows))
	if int(u) < len(m.userRows) {
		uv := m.userRows[u].Vec
		for i := range known {
			it := &m.itemRows[i]
			dst[i] = it.Bias + dot(uv, it.Vec)
		}
	} else {
		for i := range known {
			dst[i] = m.itemRows[i].Bias
		}
	}
	for i := known; i < n; i++ {
		dst[i] = float32(math.Inf(-1))
	}
	return dst
}

// String describes the model for logs.
func (m *Model) String() string {
	return fmt.Sprintf("mf(dim=%d users=%d items=%d frozen=%v)", m.cfg.Dim, len(m.userRows), len(m.itemRows), m.frozen)
}
