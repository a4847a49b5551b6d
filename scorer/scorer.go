package scorer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrec/eddy/learner/modelrec"
	"github.com/eddyrec/eddy/scorer/topk"
)

// Request is one recommendation request (the query parameters of GET
// /v1/recommendations).
type Request struct {
	UserID      string
	K           int
	ExcludeSeen bool
	Explain     bool
	RequestID   string
}

// Item is one recommended item.
type Item struct {
	ItemID  string   `json:"item_id"`
	Score   float64  `json:"score"`
	Explain *Explain `json:"explain,omitempty"`
}

// Explain gives an item's score parts: the retrieval score (bias + u·v),
// the ranker's feature values and each feature's contribution to the
// ranker's margin, and the ranker's intercept.
type Explain struct {
	MFScore       float64            `json:"mf_score"`
	Popularity    float64            `json:"popularity,omitempty"`
	Features      map[string]float64 `json:"features,omitempty"`
	Contributions map[string]float64 `json:"contributions,omitempty"`
	Intercept     float64            `json:"intercept,omitempty"`
}

// Response is the body of a successful GET /v1/recommendations.
type Response struct {
	UserID       string `json:"user_id"`
	RequestID    string `json:"request_id"`
	ModelVersion string `json:"model_version"`
	Variant      string `json:"variant"`
	Fallback     bool   `json:"fallback"`
	Items        []Item `json:"items"`

	// features holds each item's ranker feature values for the served-list
	// log (nil without a ranker); names are the ranker's feature names.
	features [][]float32
	names    []string
	// policy is the served list's "policy" (empty without --variants).
	policy string
	// st is the state the response is computed from: one model version,
	// even if a promotion swaps the scorer's state meanwhile.
	st *State
}

// Fallback reasons (label values of eddy_scorer_fallback_total).
const (
	ReasonUnknownUser = "unknown_user"
	ReasonEmptyModel  = "empty_model"
	// ReasonFrozenPending: a frozen variant's request before its model
	// copy was taken (the scorer has not caught up yet).
	ReasonFrozenPending = "frozen_pending"
)

// Scorer answers recommendation requests from a State.
type Scorer struct {
	cfg Config
	// cur is the state requests read. A promotion builds the new version
	// in a state of its own and swaps it in whole (Consumer), so every
	// request reads one version.
	cur     atomic.Pointer[State]
	metrics *metrics
	recs    *recsLog // nil: served lists are not published
	split   []Variant
	arms    []arm // arms[i] serves split[i]

	// frozen is the frozen variants' model copy (nil until taken, and
	// always without a frozen variant).
	frozen     atomic.Pointer[frozenModel]
	wantFrozen bool

	scratch sync.Pool
	closed  atomic.Bool
}

// New returns a scorer over state, registering its metrics on reg.
func New(cfg Config, state *State, reg prometheus.Registerer) (*Scorer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Scorer{cfg: cfg, split: cfg.variants()}
	s.cur.Store(state)
	for _, v := range s.split {
		a := arm{name: v.Name, policy: v.Policy}
		s.wantFrozen = s.wantFrozen || v.Policy == PolicyFrozen
		if cfg.Variants != "" {
			a.logPolicy = v.Policy
		}
		s.arms = append(s.arms, a)
	}
	m, err := newMetrics(reg, s)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	return s, nil
}

// WantsFrozen reports whether a variant serves a frozen model copy.
func (s *Scorer) WantsFrozen() bool { return s.wantFrozen }

// Freeze (re)takes the frozen variants' model copy from the live state; a
// no-op without a frozen variant. The consumer calls it when it first
// catches up and then every Config.FrozenRefresh. The previous copy is
// dropped, not closed: its coalescer has no goroutines of its own, and
// requests still searching it finish there.
func (s *Scorer) Freeze() {
	if !s.wantFrozen {
		return
	}
	f := s.cur.Load().freeze(s.cfg.SearchWorkers, s.cfg.MaxBatch)
	s.frozen.Store(f)
}

// FrozenVersion returns the model version of the frozen copy and when it
// was taken (zero time: not yet).
func (s *Scorer) FrozenVersion() (uint64, time.Time) {
	if f := s.frozen.Load(); f != nil {
		return f.version, f.at
	}
	return 0, time.Time{}
}

// State returns the scorer's state.
func (s *Scorer) State() *State { return s.cur.Load() }

// swap makes next the state requests read (a promoted version, complete)
// and returns the one it replaces. Requests already running finish on
// the old state; its coalescer holds no goroutines, so dropping it is
// enough.
func (s *Scorer) swap(next *State) *State {
	next.ranker.Store(s.cur.Load().ranker.Load())
	return s.cur.Swap(next)
}

// arm is a variant as the scorer serves it, with its metric series.
type arm struct {
	name      string
	policy    string
	logPolicy string // the served lists' "policy": empty without --variants
	// The series of its successful requests, resolved once.
	okDuration prometheus.Observer
	okRequests prometheus.Counter
}

// Variants returns the variants users are split between (one, named
// Config.Variant, without --variants), weights normalised.
func (s *Scorer) Variants() []Variant { return slices.Clone(s.split) }

// assign returns the arm that serves userID.
func (s *Scorer) assign(userID string) *arm { return &s.arms[Assign(s.split, userID)] }

// coalescer returns st's batcher, creating it once st's index exists.
func (s *Scorer) coalescer(st *State) *topk.Coalescer {
	if c := st.coal.Load(); c != nil {
		return c
	}
	st.mu.RLock()
	idx := st.index
	st.mu.RUnlock()
	if idx == nil {
		return nil
	}
	st.coalOnce.Do(func() {
		st.coal.Store(topk.NewCoalescer(idx, s.cfg.SearchWorkers, s.cfg.MaxBatch))
	})
	return st.coal.Load()
}

// SearchStats returns the current state's coalescer's passes over the
// item matrix and the queries they scored.
func (s *Scorer) SearchStats() (passes, queries uint64) {
	if c := s.cur.Load().coal.Load(); c != nil {
		return c.Stats()
	}
	return 0, 0
}

// Close stops the search workers.
func (s *Scorer) Close() {
	s.closed.Store(true)
	st := s.cur.Load()
	st.coalOnce.Do(func() {})
	if c := st.coal.Load(); c != nil {
		c.Close()
	}
}

// reqScratch is a request's reusable memory.
type reqScratch struct {
	q     topk.Query
	feats []float32
	cand  []ranked
	contr []float64
	kinds []featureKind
	metas []itemMeta
}

type ranked struct {
	idx   int32
	mf    float32
	score float64
	feats []float32
}

// ErrBadRequest is wrapped by errors that are the caller's fault.
var ErrBadRequest = errors.New("bad request")

// Recommend returns the top req.K items for req.UserID, served by the
// user's variant.
func (s *Scorer) Recommend(_ context.Context, req Request) (*Response, error) {
	return s.recommend(req, s.assign(req.UserID))
}

func (s *Scorer) recommend(req Request, a *arm) (*Response, error) {
	if req.UserID == "" || len(req.UserID) > modelrec.MaxIDLen {
		return nil, fmt.Errorf("%w: user_id: required, 1–%d bytes", ErrBadRequest, modelrec.MaxIDLen)
	}
	if req.K < 1 || req.K > MaxK {
		return nil, fmt.Errorf("%w: k %d: want 1–%d", ErrBadRequest, req.K, MaxK)
	}
	st := s.cur.Load()
	resp := &Response{UserID: req.UserID, RequestID: req.RequestID, Variant: a.name,
		ModelVersion: strconv.FormatUint(st.ModelVersion(), 10), policy: a.logPolicy, st: st}

	sc, _ := s.scratch.Get().(*reqScratch)
	if sc == nil {
		sc = &reqScratch{}
	}
	defer s.scratch.Put(sc)

	frozen := a.policy == PolicyFrozen
	st.mu.RLock()
	u := st.users[req.UserID]
	var seen []int32
	known, userUpdates := u != nil, float64(0)
	if u != nil {
		if !frozen {
			sc.q.Vec = append(sc.q.Vec[:0], u.vec...)
		}
		seen, userUpdates = u.seen, float64(u.updates)
	}
	live := st.liveItems
	st.mu.RUnlock()

	coal, rs := s.coalescer(st), st.ranker.Load()
	if frozen {
		// The frozen copy's vectors and ranker; seen set and item
		// features stay live (see PolicyFrozen).
		f := s.frozen.Load()
		if f == nil || f.src != st {
			return s.fallback(resp, req, seen, ReasonFrozenPending), nil
		}
		fu, ok := f.users[req.UserID]
		sc.q.Vec = append(sc.q.Vec[:0], fu.vec...)
		known, userUpdates = ok, float64(fu.updates)
		coal, rs, live = f.coal, f.ranker, f.live
		resp.ModelVersion = strconv.FormatUint(f.version, 10)
	}
	switch {
	case a.policy == PolicyPopularity:
		return s.popularList(resp, req, seen), nil
	case live == 0 || coal == nil:
		return s.fallback(resp, req, seen, ReasonEmptyModel), nil
	case !known:
		return s.fallback(resp, req, seen, ReasonUnknownUser), nil
	}
	if a.policy == PolicyRetrieval {
		rs = nil
	}
	want := req.K
	if rs != nil {
		want = max(req.K, s.cfg.Candidates)
	}
	sc.q.K = want
	sc.q.Exclude = nil
	if req.ExcludeSeen {
		sc.q.Exclude = seen
	}
	if cap(sc.q.Out) < want {
		sc.q.Out = make([]topk.Result, 0, want)
	}
	if err := coal.Search(&sc.q); err != nil {
		return nil, err
	}
	if sc.q.Err != nil {
		return nil, sc.q.Err
	}
	if rs == nil {
		s.fillItems(resp, sc.q.Out, req.Explain, nil)
		return resp, nil
	}
	s.rerank(resp, req, rs.r, sc, userUpdates)
	return resp, nil
}

// fillItems turns retrieval results into response items.
func (s *Scorer) fillItems(resp *Response, res []topk.Result, explain bool, pop []float64) {
	st := resp.st
	resp.Items = make([]Item, len(res))
	st.mu.RLock()
	for i, r := range res {
		resp.Items[i] = Item{ItemID: st.itemNames[r.Index], Score: float64(r.Score)}
		if explain {
			e := &Explain{MFScore: float64(r.Score)}
			if pop != nil {
				e = &Explain{Popularity: pop[i]}
			}
			resp.Items[i].Explain = e
		}
	}
	st.mu.RUnlock()
}

// featureKind is a ranker feature the scorer computes, resolved from its
// name once per request instead of once per candidate and feature.
type featureKind uint8

const (
	featUnknown featureKind = iota
	featMFScore
	featLogPopularity
	featCTR
	featRecency
	featUserActivity
)

func kindOf(name string) featureKind {
	switch name {
	case modelrec.FeatureMFScore:
		return featMFScore
	case modelrec.FeatureItemLogPopularity:
		return featLogPopularity
	case modelrec.FeatureItemCTR:
		return featCTR
	case modelrec.FeatureItemRecency:
		return featRecency
	case modelrec.FeatureUserLogActivity:
		return featUserActivity
	}
	return featUnknown
}

// rerank computes the ranker features of every candidate, scores them and
// keeps the best req.K (ties in retrieval order).
func (s *Scorer) rerank(resp *Response, req Request, r Ranker, sc *reqScratch, userUpdates float64) {
	st := resp.st
	names := r.Features()
	nf := len(names)
	out := sc.q.Out
	if cap(sc.feats) < nf*len(out) {
		sc.feats = make([]float32, nf*len(out))
	}
	feats := sc.feats[:nf*len(out)]
	sc.kinds = sc.kinds[:0]
	for _, name := range names {
		sc.kinds = append(sc.kinds, kindOf(name))
	}
	sc.cand = sc.cand[:0]
	nowMs := time.Now().UnixMilli()
	userActivity := math.Log1p(userUpdates)
	st.mu.RLock()
	// Gather the candidates' metadata first: each is likely a cache miss,
	// and a loop that only loads keeps many of them in flight, where the
	// feature arithmetic between loads would serialise them.
	sc.metas = sc.metas[:0]
	for _, res := range out {
		sc.metas = append(sc.metas, st.items[res.Index])
	}
	st.mu.RUnlock()
	for c, res := range out {
		m := &sc.metas[c]
		x := feats[c*nf : (c+1)*nf]
		for f, k := range sc.kinds {
			var v float64
			switch k {
			case featMFScore:
				v = float64(res.Score)
			case featLogPopularity:
				v = math.Log1p(st.decayedPopularity(*m, nowMs))
			case featCTR:
				v = min(1, max(0, (float64(m.popularity)+1)/(float64(m.impressions)+10)))
			case featRecency:
				v = math.Log1p(max(0, float64(nowMs-m.tsMillis)/3.6e6))
			case featUserActivity:
				v = userActivity
			}
			x[f] = float32(v)
		}
		sc.cand = append(sc.cand, ranked{idx: res.Index, mf: res.Score, score: r.Score(x), feats: x})
	}
	top := bestRanked(sc.cand, req.K)
	resp.Items = make([]Item, len(top))
	resp.names = names
	resp.features = make([][]float32, len(top))
	kept := make([]float32, len(top)*nf)
	st.mu.RLock()
	for i, c := range top {
		resp.Items[i] = Item{ItemID: st.itemNames[c.idx], Score: c.score}
		resp.features[i] = kept[i*nf : (i+1)*nf : (i+1)*nf]
		copy(resp.features[i], c.feats)
		if req.Explain {
			if cap(sc.contr) < nf {
				sc.contr = make([]float64, nf)
			}
			contr := sc.contr[:nf]
			e := &Explain{MFScore: float64(c.mf), Features: make(map[string]float64, nf), Contributions: make(map[string]float64, nf)}
			e.Intercept = r.Contributions(c.feats, contr)
			for f, name := range names {
				e.Features[name] = float64(c.feats[f])
				e.Contributions[name] = contr[f]
			}
			resp.Items[i].Explain = e
		}
	}
	st.mu.RUnlock()
}

// bestRanked reorders cand so that its first min(k, len) entries are the
// best by score, ties in their original order (what a stable sort by
// descending score would give), and returns them. For the usual small k it
// is an insertion into a k-long prefix, not a sort of every candidate.
func bestRanked(cand []ranked, k int) []ranked {
	k = min(k, len(cand))
	if k > 64 {
		slices.SortStableFunc(cand, func(a, b ranked) int {
			switch {
			case a.score > b.score:
				return -1
			case a.score < b.score:
				return 1
			}
			return 0
		})
		return cand[:k]
	}
	n := 0 // cand[:n] holds the best so far, best first
	for i := range cand {
		c := cand[i] // i ≥ n: moving the prefix never overwrites unseen ones
		if n == k {
			if !(c.score > cand[k-1].score) {
				continue
			}
			n-- // the worst kept one leaves
		}
		j := n
		// Strictly better only: a later candidate goes after equal scores.
		for j > 0 && c.score > cand[j-1].score {
			cand[j] = cand[j-1]
			j--
		}
		cand[j] = c
		n++
	}
	return cand[:k]
}

// fallback serves the popularity list when the variant's policy cannot
// serve the request, counted by reason and marked "fallback": true.
func (s *Scorer) fallback(resp *Response, req Request, seen []int32, reason string) *Response {
	s.metrics.fallbacks.WithLabelValues(reason).Inc()
	resp.Fallback = true
	return s.popularList(resp, req, seen)
}

// popularList serves the most popular live items (decayed), skipping seen
// ones when the request asks to.
func (s *Scorer) popularList(resp *Response, req Request, seen []int32) *Response {
	pop := resp.st.popular(time.Now())
	res := make([]topk.Result, 0, req.K)
	for _, p := range pop {
		if len(res) == req.K {
			break
		}
		if req.ExcludeSeen {
			if _, ok := slices.BinarySearch(seen, p.Index); ok {
				continue
			}
		}
		res = append(res, p)
	}
	var scores []float64
	if req.Explain {
		scores = make([]float64, len(res))
		for i, r := range res {
			scores[i] = float64(r.Score)
		}
	}
	s.fillItems(resp, res, req.Explain, scores)
	return resp
}
