package scorer

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eddyrec/eddy/learner/modelrec"
	"github.com/eddyrec/eddy/scorer/topk"
)

// itemMeta is what the scorer keeps per item besides its vector.
type itemMeta struct {
	popularity  float32 // decayed positive count as of ts
	impressions float32
	tsMillis    int64
	live        bool
}

// userRow is one user's hot state. seen is sorted, immutable once stored
// (an update replaces the slice), so readers may keep it after unlocking.
type userRow struct {
	vec      []float32
	seen     []int32
	updates  uint64
	tsMillis int64
}

// State is the scorer's in-memory replica of the model topics: interned
// item ids with their vectors in a topk.Matrix, users, the ranker, and the
// decayed popularity for the fallback. Apply methods are called by one
// goroutine (the consumer); readers run concurrently.
type State struct {
	cfg Config

	mu        sync.RWMutex
	dim       int
	itemIDs   map[string]int32
	itemNames []string
	items     []itemMeta
	liveItems int
	users     map[string]*userRow
	index     topk.MatrixIndex

	ranker       atomic.Pointer[rankerState]
	modelVersion atomic.Uint64
	newestMillis atomic.Int64 // newest record timestamp applied (freshness)

	// coal batches the searches of requests reading this state.
	coalOnce sync.Once
	coal     atomic.Pointer[topk.Coalescer]

	popMu    sync.Mutex
	popAt    time.Time
	popList  []topk.Result
	popEvery time.Duration
}

type rankerState struct {
	r   Ranker
	rec *modelrec.Ranker
}

// frozenModel is a frozen variant's model: the live state's user vectors,
// item matrix and ranker as they were at one moment, never written again
// (readers need no lock). Item indexes are a prefix of the live state's
// (interning only appends), so item names, metadata and seen sets are read
// from the live state.
type frozenModel struct {
	at      time.Time
	src     *State // the live state it was copied from (item indexes are its)
	version uint64
	live    int
	users   map[string]frozenUser
	coal    *topk.Coalescer // nil while no item vector existed
	ranker  *rankerState
}

type frozenUser struct {
	vec     []float32
	updates uint64
}

// freeze copies the model for a frozen variant under the read lock (118 ms
// for 100k items and users × 64, BenchmarkFreeze). The consumer, the
// state's only writer, calls it between batches, so no writer waits on the
// lock and requests (readers) go on; model updates pause for that long.
func (s *State) freeze(workers, maxBatch int) *frozenModel {
	s.mu.RLock()
	defer s.mu.RUnlock()
	f := &frozenModel{at: time.Now(), src: s, version: s.modelVersion.Load(), live: s.liveItems,
		users: make(map[string]frozenUser, len(s.users)), ranker: s.ranker.Load()}
	flat := make([]float32, len(s.users)*s.dim) // one allocation for all vectors
	for id, u := range s.users {
		v := flat[:s.dim:s.dim]
		flat = flat[s.dim:]
		copy(v, u.vec)
		f.users[id] = frozenUser{vec: v, updates: u.updates}
	}
	if s.index != nil {
		var m *topk.Matrix
		s.index.View(func(live *topk.Matrix) { m = live.Clone() })
		f.coal = topk.NewCoalescer(s.cfg.newIndex(m), workers, maxBatch)
	}
	return f
}

// NewState returns an empty state.
func NewState(cfg Config) *State {
	return &State{cfg: cfg, itemIDs: map[string]int32{}, users: map[string]*userRow{}, popEvery: time.Second}
}

// ErrDim is wrapped by Apply errors for records whose dimension differs
// from the state's.
var ErrDim = errors.New("scorer: vector dimension mismatch")

// ensureDim fixes the dimension on the first vector; callers hold mu.
func (s *State) ensureDim(dim int) error {
	if s.dim == 0 {
		m, err := topk.NewMatrix(dim, 1024)
		if err != nil {
			return err
		}
		s.dim, s.index = dim, s.cfg.newIndex(m)
		return nil
	}
	if dim != s.dim {
		return fmt.Errorf("%w: record has %d, state has %d", ErrDim, dim, s.dim)
	}
	return nil
}

// internLocked returns item id's index, creating an empty slot; callers
// hold mu for writing.
func (s *State) internLocked(id string) int32 {
	if i, ok := s.itemIDs[id]; ok {
		return i
	}
	i := int32(len(s.itemNames))
	s.itemIDs[id] = i
	s.itemNames = append(s.itemNames, id)
	s.items = append(s.items, itemMeta{})
	return i
}

// ApplyItems applies a batch of item records (nil value = delete) under
// one lock acquisition. It returns how many were applied and the first
// error; bad records are skipped.
func (s *State) ApplyItems(recs []Record) (int, error) {
	var (
		v        modelrec.Vector
		firstErr error
		applied  int
	)
	s.mu.Lock()
	defer s.mu.Unlock()
	apply := func(m *topk.Matrix) error {
		for _, r := range recs {
			if err := s.applyItemLocked(m, r, &v); err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("item %q: %w", r.Key, err)
				}
				continue
			}
			applied++
		}
		return nil
	}
	// The matrix may not exist until the first record fixes the dimension,
	// so decode the first live record's header before taking its lock.
	for _, r := range recs {
		if r.Value == nil {
			continue
		}
		if h, err := modelrec.DecodeHeader(r.Value); err == nil && h.Kind == modelrec.KindItem {
			if err := s.ensureDim(h.Dim); err == nil {
				break
			}
		}
	}
	if s.index == nil {
		// Only deletes or bad records: nothing to apply to.
		for _, r := range recs {
			if r.Value != nil && firstErr == nil {
				_, firstErr = modelrec.DecodeHeader(r.Value)
			}
		}
		return 0, firstErr
	}
	_ = s.index.Update(apply)
	return applied, firstErr
}

func (s *State) applyItemLocked(m *topk.Matrix, r Record, v *modelrec.Vector) error {
	if r.Value == nil {
		i, ok := s.itemIDs[string(r.Key)]
		if ok && s.items[i].live {
			m.Clear(int(i))
			s.items[i] = itemMeta{}
			s.liveItems--
		}
		return nil
	}
	if err := modelrec.DecodeVector(r.Value, v); err != nil {
		return err
	}
	if v.Kind != modelrec.KindItem {
		return fmt.Errorf("%w: %v record on the items topic", modelrec.ErrBadRecord, v.Kind)
	}
	if len(v.Vec) != s.dim {
		return fmt.Errorf("%w: record has %d, state has %d", ErrDim, len(v.Vec), s.dim)
	}
	if len(r.Key) == 0 || len(r.Key) > modelrec.MaxIDLen {
		return fmt.Errorf("%w: item key length %d", modelrec.ErrBadRecord, len(r.Key))
	}
	i := s.internLocked(string(r.Key))
	if err := m.Set(int(i), v.Vec, v.Bias); err != nil {
		return err
	}
	if !s.items[i].live {
		s.liveItems++
	}
	s.items[i] = itemMeta{popularity: v.Popularity, impressions: v.Impressions, tsMillis: v.TsMillis, live: true}
	s.noteRecord(v.ModelVersion, v.TsMillis)
	return nil
}

func (s *State) noteRecord(version uint64, ts int64) {
	if version > s.modelVersion.Load() {
		s.modelVersion.Store(version)
	}
	if ts > s.newestMillis.Load() {
		s.newestMillis.Store(ts)
	}
}

// ApplyUsers applies a batch of user records (nil value = delete).
func (s *State) ApplyUsers(recs []Record) (int, error) {
	var (
		v        modelrec.Vector
		firstErr error
		applied  int
	)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		if err := s.applyUserLocked(r, &v); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("user %q: %w", r.Key, err)
			}
			continue
		}
		applied++
	}
	return applied, firstErr
}

func (s *State) applyUserLocked(r Record, v *modelrec.Vector) error {
	if r.Value == nil {
		delete(s.users, string(r.Key))
		return nil
	}
	if err := modelrec.DecodeVector(r.Value, v); err != nil {
		return err
	}
	if v.Kind != modelrec.KindUser {
		return fmt.Errorf("%w: %v record on the users topic", modelrec.ErrBadRecord, v.Kind)
	}
	if len(r.Key) == 0 || len(r.Key) > modelrec.MaxIDLen {
		return fmt.Errorf("%w: user key length %d", modelrec.ErrBadRecord, len(r.Key))
	}
	if err := s.ensureDim(len(v.Vec)); err != nil {
		return err
	}
	u := s.users[string(r.Key)]
	if u == nil {
		u = &userRow{vec: make([]float32, s.dim)}
		s.users[string(r.Key)] = u
	}
	copy(u.vec, v.Vec)
	seen := make([]int32, 0, len(v.Seen))
	for _, id := range v.Seen {
		seen = append(seen, s.internLocked(id))
	}
	slices.Sort(seen)
	u.seen = slices.Compact(seen)
	u.updates, u.tsMillis = v.Updates, v.TsMillis
	s.noteRecord(v.ModelVersion, v.TsMillis)
	return nil
}

// ApplyRanker installs a ranker record (nil value removes the ranker).
func (s *State) ApplyRanker(value []byte) error {
	if value == nil {
		s.ranker.Store(nil)
		return nil
	}
	rec, err := modelrec.DecodeRanker(value)
	if err != nil {
		return err
	}
	s.ranker.Store(&rankerState{r: NewLogisticRanker(rec), rec: rec})
	s.noteRecord(rec.ModelVersion, rec.TsMillis)
	return nil
}

// SetRanker installs r directly (for tests and for a learner-provided
// ranker).
func (s *State) SetRanker(r Ranker) {
	if r == nil {
		s.ranker.Store(nil)
		return
	}
	s.ranker.Store(&rankerState{r: r})
}

// Sizes returns the number of live items and users and the bytes of the
// item matrix.
func (s *State) Sizes() (items, users, matrixBytes int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.index != nil {
		s.index.View(func(m *topk.Matrix) { matrixBytes = m.Bytes() })
	}
	return s.liveItems, len(s.users), matrixBytes
}

// UserUpdates returns the update counter of user id's applied record (the
// learner's count of events trained into the vector, modelrec.Vector.Updates)
// and whether the state holds the user. It takes the read lock only: cheap
// enough to poll, e.g. to measure how soon an event reaches the scorer.
func (s *State) UserUpdates(id string) (uint64, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.users[id]
	if u == nil {
		return 0, false
	}
	return u.updates, true
}

// ModelVersion is the highest model version seen in any applied record.
func (s *State) ModelVersion() uint64 { return s.modelVersion.Load() }

// NewestRecord is the timestamp of the newest applied model record (zero
// time when none).
func (s *State) NewestRecord() time.Time {
	ms := s.newestMillis.Load()
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// decayedPopularity is an item's popularity decayed from its record's
// timestamp to now with the configured half-life.
func (s *State) decayedPopularity(m itemMeta, nowMillis int64) float64 {
	age := float64(nowMillis-m.tsMillis) / 1000
	if age < 0 {
		age = 0
	}
	return float64(m.popularity) * math.Exp2(-age/s.cfg.PopularityHalfLife.Seconds())
}

// popular returns the live items by decayed popularity, best first, at
// most MaxK of them; it is recomputed at most once per popEvery.
func (s *State) popular(now time.Time) []topk.Result {
	s.popMu.Lock()
	defer s.popMu.Unlock()
	if s.popList != nil && now.Sub(s.popAt) < s.popEvery {
		return s.popList
	}
	s.mu.RLock()
	ms := now.UnixMilli()
	list := make([]topk.Result, 0, len(s.items))
	for i, m := range s.items {
		if m.live {
			list = append(list, topk.Result{Index: int32(i), Score: float32(s.decayedPopularity(m, ms))})
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(list, func(a, b topk.Result) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return int(a.Index - b.Index)
	})
	if len(list) > MaxK {
		list = slices.Clip(list[:MaxK])
	}
	s.popList, s.popAt = list, now
	return list
}
