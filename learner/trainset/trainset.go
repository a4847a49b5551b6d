package trainset

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/ials"
)

// Set is a time-ordered list of interactions; index t is the t-th event.
type Set struct {
	Users, Items *learner.Catalog
	User, Item   []int32
	// Label and Weight are learner.Confidence's signal; Weight 0 means the
	// event teaches the MF nothing (an impression, a middling watch).
	Label, Weight []float32
	// TsMillis is the event's time, unix milliseconds.
	TsMillis []int64
	// Positive marks clear positives (learner.Confidence.Positive), the
	// events evaluation holds out and scores.
	Positive []bool
	// Consumes marks events after which the item counts as the user's
	// (every type but impressions): those items are left out of the
	// user's recommendations.
	Consumes []bool
	// Duplicates counts events dropped for an event_id already seen.
	Duplicates int
}

// Len returns the number of events.
func (s *Set) Len() int { return len(s.User) }

// Builder collects events into a Set.
type Builder struct {
	conf learner.Confidence
	ids  map[uint64]struct{}
	s    *Set
}

// NewBuilder returns an empty builder that weighs events with conf.
func NewBuilder(conf learner.Confidence) *Builder {
	return &Builder{conf: conf, ids: map[uint64]struct{}{},
		s: &Set{Users: learner.NewCatalog(), Items: learner.NewCatalog()}}
}

// Add adds ev unless its event_id was added before, and reports whether
// it did. Events without an id are always added.
func (b *Builder) Add(ev *event.Event) bool {
	if ev.EventID != "" {
		k := fnv64a(ev.EventID)
		if _, dup := b.ids[k]; dup {
			b.s.Duplicates++
			return false
		}
		b.ids[k] = struct{}{}
	}
	s := b.s
	y, w := b.conf.Signal(ev)
	s.User = append(s.User, s.Users.Intern(ev.UserID))
	s.Item = append(s.Item, s.Items.Intern(ev.ItemID))
	s.Label = append(s.Label, y)
	s.Weight = append(s.Weight, w)
	s.TsMillis = append(s.TsMillis, ev.Time.UnixMilli())
	s.Positive = append(s.Positive, b.conf.Positive(ev))
	s.Consumes = append(s.Consumes, ev.Type != event.Impression)
	return true
}

// fnv64a is the 64-bit FNV-1a hash of s, inline so that hashing an id
// allocates nothing (hash/fnv's hasher escapes to the heap).
func fnv64a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// Set sorts the events by time (stably: events of the same millisecond
// keep the order they were added in) and returns the set. The builder
// must not be used afterwards.
func (b *Builder) Set() *Set {
	s := b.s
	b.s, b.ids = nil, nil
	if sort.SliceIsSorted(s.TsMillis, func(i, j int) bool { return s.TsMillis[i] < s.TsMillis[j] }) {
		return s
	}
	perm := make([]int, s.Len())
	for i := range perm {
		perm[i] = i
	}
	sort.SliceStable(perm, func(i, j int) bool { return s.TsMillis[perm[i]] < s.TsMillis[perm[j]] })
	s.User = permute(s.User, perm)
	s.Item = permute(s.Item, perm)
	s.Label = permute(s.Label, perm)
	s.Weight = permute(s.Weight, perm)
	s.TsMillis = permute(s.TsMillis, perm)
	s.Positive = permute(s.Positive, perm)
	s.Consumes = permute(s.Consumes, perm)
	return s
}

func permute[T any](v []T, perm []int) []T {
	out := make([]T, len(v))
	for i, p := range perm {
		out[i] = v[p]
	}
	return out
}

// FromEvents builds a Set from events.
func FromEvents(events []event.Event, conf learner.Confidence) *Set {
	b := NewBuilder(conf)
	for i := range events {
		b.Add(&events[i])
	}
	return b.Set()
}

// ErrTooSmall is returned by Matrix when the selected events cannot train
// a model.
var ErrTooSmall = errors.New("trainset: too little data to train on")

// MinPositives is the fewest positive events a training set may have: a
// model of fewer says nothing.
const MinPositives = 10

// Matrix builds the training matrix of the events for which keep returns
// true (all of them when keep is nil), over the set's whole catalogues so
// that rows keep the set's indices.
func (s *Set) Matrix(keep func(t int) bool) (*ials.Matrix, error) {
	es := make([]ials.Entry, 0, s.Len())
	pos := 0
	for t := range s.Len() {
		if s.Weight[t] <= 0 || (keep != nil && !keep(t)) {
			continue
		}
		es = append(es, ials.Entry{Row: s.User[t], Col: s.Item[t], Label: s.Label[t], Weight: s.Weight[t]})
		if s.Label[t] > 0 {
			pos++
		}
	}
	if pos < MinPositives {
		return nil, fmt.Errorf("%w: %d positive events of %d (want at least %d)", ErrTooSmall, pos, s.Len(), MinPositives)
	}
	return ials.NewMatrix(s.Users.Len(), s.Items.Len(), es)
}

// Span returns the times of the first and last events.
func (s *Set) Span() (first, last time.Time) {
	if s.Len() == 0 {
		return time.Time{}, time.Time{}
	}
	return time.UnixMilli(s.TsMillis[0]).UTC(), time.UnixMilli(s.TsMillis[s.Len()-1]).UTC()
}
