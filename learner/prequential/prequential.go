package prequential

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/learner"
)

// Names of the models in a Result, in report order.
const (
	OnlineMF       = "online_mf"
	OnlineMFRanker = "online_mf_ranker"
	Popularity     = "popularity"
	FrozenMF       = "frozen_mf"
)

// ModelNames lists every model name in report order.
var ModelNames = []string{OnlineMF, OnlineMFRanker, Popularity, FrozenMF}

// Config holds the evaluation settings. Fill it with DefaultConfig.
type Config struct {
	// K is the length of each recommended list. Default 10.
	K int
	// Window is the number of positive events per curve window and per
	// pair in the significance tests. Default 1000.
	Window int
	// MF configures the online (and frozen) matrix factorisation.
	MF learner.MFConfig
	// FrozenFrac is the share of events the frozen model learns from
	// before it stops. Default 0.2.
	FrozenFrac float64
	// FrozenEpochs is the number of extra passes over that share the
	// frozen model makes when it freezes, so that it is a converged batch
	// model rather than a snapshot of the online one. Default 3.
	FrozenEpochs int
	// PopHalfLife is the half-life, in positive events, of the
	// decayed-popularity baseline and the ranker's popularity feature.
	// Default 3000.
	PopHalfLife float64
	// Ranker configures the FTRL re-ranker; Candidates is how many MF
	// candidates it re-ranks (default 100) and RankerNegatives how many
	// shown-but-not-chosen candidates each positive trains it with
	// (default 4).
	Ranker          learner.FTRLConfig
	Candidates      int
	RankerNegatives int
	// Models lists the models to run (names as in Result); empty means
	// all. The popularity baseline always runs: the tests compare with it.
	Models []string
	// Progress, when positive, logs progress every that many events.
	Progress int
	// Shift, when positive, is the index of the first event after a known
	// change in the stream (the synthetic generator's drift point). The
	// result then carries each model's Recovery around it and the plot
	// marks it. 0 means none.
	Shift int
	// RecoveryTail is how many of the last windows after Shift measure a
	// model's recovered level (at most all of them); 0 means the later half
	// of the windows after the shift.
	RecoveryTail int
}

// DefaultConfig returns the defaults documented on Config's fields.
func DefaultConfig() Config {
	return Config{
		K:               10,
		Window:          1000,
		MF:              learner.DefaultMFConfig(),
		FrozenFrac:      0.2,
		FrozenEpochs:    3,
		PopHalfLife:     3000,
		Ranker:          learner.DefaultFTRLConfig(),
		Candidates:      100,
		RankerNegatives: 4,
		Progress:        20000,
	}
}

// Validate reports the first setting out of range.
func (c Config) Validate() error {
	switch {
	case c.K < 1 || c.K > 1000:
		return fmt.Errorf("prequential: k %d: want 1–1000", c.K)
	case c.Window < 1:
		return fmt.Errorf("prequential: window %d: want ≥ 1", c.Window)
	case !(c.FrozenFrac > 0 && c.FrozenFrac < 1):
		return fmt.Errorf("prequential: frozen fraction %v: want (0, 1)", c.FrozenFrac)
	case c.FrozenEpochs < 0 || c.FrozenEpochs > 100:
		return fmt.Errorf("prequential: frozen epochs %d: want 0–100", c.FrozenEpochs)
	case !(c.PopHalfLife > 0) || math.IsInf(c.PopHalfLife, 0):
		return fmt.Errorf("prequential: popularity half-life %v: want > 0", c.PopHalfLife)
	case c.Candidates < c.K:
		return fmt.Errorf("prequential: candidates %d: want ≥ k (%d)", c.Candidates, c.K)
	case c.RankerNegatives < 0 || c.RankerNegatives > c.Candidates:
		return fmt.Errorf("prequential: ranker negatives %d: want 0–candidates", c.RankerNegatives)
	case c.Shift < 0:
		return fmt.Errorf("prequential: shift %d: want ≥ 0 (0 = none)", c.Shift)
	case c.RecoveryTail < 0:
		return fmt.Errorf("prequential: recovery tail %d: want ≥ 0", c.RecoveryTail)
	}
	for _, m := range c.Models {
		if !slices.Contains(ModelNames, m) {
			return fmt.Errorf("prequential: unknown model %q: want one of %v", m, ModelNames)
		}
	}
	if err := c.MF.Validate(); err != nil {
		return err
	}
	return c.Ranker.Validate()
}

// ModelResult is one model's outcome.
type ModelResult struct {
	Name         string    `json:"-"`
	HR           float64   `json:"hr_at_k"`
	NDCG         float64   `json:"ndcg_at_k"`
	Coverage     float64   `json:"coverage"`
	EventsPerSec float64   `json:"events_per_sec"`
	Seconds      float64   `json:"seconds"`
	WindowHR     []float64 `json:"-"`
	WindowNDCG   []float64 `json:"-"`
}

// Result is the outcome of a run.
type Result struct {
	K         int
	Events    int
	Positives int
	Users     int
	Items     int
	Window    int
	// WindowEnd[w] is the time of the last positive of window w, and
	// WindowEndEvent[w] its index in the stream, so that a window can be
	// placed relative to an event-count marker such as a drift point.
	WindowEnd      []time.Time
	WindowEndEvent []int
	Models         []*ModelResult
	// Tests compare each model with the popularity baseline, and the
	// online MF with the frozen one, on per-window HR and NDCG.
	Tests []PairedTest
	// FrozenAt is the index of the event at which the frozen model stopped
	// learning (0 when it did not run), and FrozenPositives the number of
	// scored positives before it (the plot's x coordinate).
	FrozenAt        int
	FrozenPositives int
	// Shift is Config.Shift and ShiftPositives the number of scored
	// positives before it; Recovery holds each model's HR around it (nil
	// without a shift).
	Shift          int
	ShiftPositives int
	Recovery       []Recovery
	Seconds        float64
}

// Model returns the result of the named model, or nil.
func (r *Result) Model(name string) *ModelResult {
	for _, m := range r.Models {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// ErrNoPositives is returned when a stream has no positive event to score.
var ErrNoPositives = errors.New("prequential: no positive events")

// stream is the interned replay every runner reads (read-only).
type stream struct {
	events []event.Event
	user   []int32
	item   []int32
	seen   []int32 // items in the catalogue before event t
	// evaluate marks the events scored: positives whose item the user has
	// not consumed before (a watch after its click is not a discovery).
	evaluate []bool
	// consumes marks events after which the item counts as consumed by the
	// user and is excluded from their lists: every event but impressions.
	consumes []bool
	// positive marks every clear positive (Confidence.Positive).
	positive []bool
	nPos     int
	users    *learner.Catalog
	items    *learner.Catalog
}

func newStream(events []event.Event, conf learner.Confidence) *stream {
	s := &stream{
		events: events, users: learner.NewCatalog(), items: learner.NewCatalog(),
		user: make([]int32, len(events)), item: make([]int32, len(events)),
		seen: make([]int32, len(events)), evaluate: make([]bool, len(events)),
		consumes: make([]bool, len(events)), positive: make([]bool, len(events)),
	}
	var consumed []learner.ItemSet
	for t := range events {
		ev := &events[t]
		s.seen[t] = int32(s.items.Len())
		u, i := s.users.Intern(ev.UserID), s.items.Intern(ev.ItemID)
		s.user[t], s.item[t] = u, i
		if int(u) >= len(consumed) {
			consumed = append(consumed, nil)
		}
		s.positive[t] = conf.Positive(ev)
		if s.positive[t] && !consumed[u].Has(i) {
			s.evaluate[t] = true
			s.nPos++
		}
		if ev.Type != event.Impression {
			s.consumes[t] = true
			consumed[u].Add(i)
		}
	}
	return s
}

// positivesBefore counts the scored positives among events [0, t).
func (s *stream) positivesBefore(t int) int {
	n := 0
	for _, e := range s.evaluate[:t] {
		if e {
			n++
		}
	}
	return n
}

// tally accumulates one model's hits.
type tally struct {
	res      *ModelResult
	hits     float64
	ndcg     float64
	wHits    float64
	wNDCG    float64
	wN       int
	shown    learner.ItemSet
	shownN   int
	duration time.Duration
}

func newTally(name string) *tally { return &tally{res: &ModelResult{Name: name}} }

// record scores list against target at positive number p.
func (ta *tally) record(list []learner.Scored, target int32, window int) {
	for _, c := range list {
		if !ta.shown.Has(c.Item) {
			ta.shown.Add(c.Item)
			ta.shownN++
		}
	}
	for r, c := range list {
		if c.Item == target {
			g := 1 / math.Log2(float64(r)+2)
			ta.hits++
			ta.ndcg += g
			ta.wHits++
			ta.wNDCG += g
			break
		}
	}
	ta.wN++
	if ta.wN == window {
		ta.flush()
	}
}

func (ta *tally) flush() {
	if ta.wN == 0 {
		return
	}
	ta.res.WindowHR = append(ta.res.WindowHR, ta.wHits/float64(ta.wN))
	ta.res.WindowNDCG = append(ta.res.WindowNDCG, ta.wNDCG/float64(ta.wN))
	ta.wHits, ta.wNDCG, ta.wN = 0, 0, 0
}

func (ta *tally) finish(nPos, nItems, nEvents int) *ModelResult {
	ta.flush()
	r := ta.res
	r.HR = ta.hits / float64(nPos)
	r.NDCG = ta.ndcg / float64(nPos)
	if nItems > 0 {
		r.Coverage = float64(ta.shownN) / float64(nItems)
	}
	r.Seconds = ta.duration.Seconds()
	if r.Seconds > 0 {
		r.EventsPerSec = float64(nEvents) / r.Seconds
	}
	return r
}

// runner replays the whole stream for one or more models.
type runner interface {
	run(ctx context.Context, s *stream, cfg *Config, log *slog.Logger) ([]*tally, error)
}

// Run evaluates every model on events, which must be in time order. Runs
// are deterministic for a given cfg (models run concurrently but share
// nothing mutable).
func Run(ctx context.Context, events []event.Event, cfg Config, log *slog.Logger) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	s := newStream(events, cfg.MF.Confidence)
	if s.nPos == 0 {
		return nil, ErrNoPositives
	}
	if cfg.Shift >= len(events) {
		return nil, fmt.Errorf("prequential: shift at event %d: the stream has %d events", cfg.Shift, len(events))
	}
	log.Info("prequential: replay", "events", len(events), "positives", s.nPos,
		"users", s.users.Len(), "items", s.items.Len(), "k", cfg.K, "dim", cfg.MF.Dim)

	want := func(names ...string) bool {
		if len(cfg.Models) == 0 {
			return true
		}
		for _, n := range names {
			if slices.Contains(cfg.Models, n) {
				return true
			}
		}
		return false
	}
	runners := []runner{popRunner{}}
	if want(OnlineMF, OnlineMFRanker) {
		runners = append(runners, &mfRunner{ranked: want(OnlineMFRanker)})
	}
	if want(FrozenMF) {
		runners = append(runners, &mfRunner{frozen: true})
	}
	out := make([][]*tally, len(runners))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, r := range runners {
		g.Go(func() error {
			ts, err := r.run(gctx, s, &cfg, log)
			out[i] = ts
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	res := &Result{
		K: cfg.K, Events: len(events), Positives: s.nPos, Users: s.users.Len(),
		Items: s.items.Len(), Window: cfg.Window,
	}
	for _, ts := range out {
		for _, ta := range ts {
			res.Models = append(res.Models, ta.finish(s.nPos, s.items.Len(), len(events)))
		}
	}
	orderModels(res.Models)
	p := 0
	for t := range events {
		if s.evaluate[t] {
			p++
			if p%cfg.Window == 0 || p == s.nPos {
				res.WindowEnd = append(res.WindowEnd, events[t].Time)
				res.WindowEndEvent = append(res.WindowEndEvent, t)
			}
		}
	}
	pop := res.Model(Popularity)
	for _, m := range res.Models {
		if m.Name != Popularity {
			res.Tests = append(res.Tests,
				Compare(m.Name, Popularity, "hr_at_k", m.WindowHR, pop.WindowHR),
				Compare(m.Name, Popularity, "ndcg_at_k", m.WindowNDCG, pop.WindowNDCG))
		}
	}
	if on, fr := res.Model(OnlineMF), res.Model(FrozenMF); on != nil && fr != nil {
		res.Tests = append(res.Tests, Compare(OnlineMF, FrozenMF, "hr_at_k", on.WindowHR, fr.WindowHR))
	}
	if want(FrozenMF) {
		res.FrozenAt = frozenSplit(&cfg, len(events))
		res.FrozenPositives = s.positivesBefore(res.FrozenAt)
	}
	if cfg.Shift > 0 {
		res.Shift, res.ShiftPositives = cfg.Shift, s.positivesBefore(cfg.Shift)
		for _, m := range res.Models {
			res.Recovery = append(res.Recovery, recovery(res, m, res.FrozenAt, cfg.Shift, cfg.RecoveryTail))
		}
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

func orderModels(ms []*ModelResult) {
	rank := map[string]int{OnlineMF: 0, OnlineMFRanker: 1, Popularity: 2, FrozenMF: 3}
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && rank[ms[j].Name] < rank[ms[j-1].Name]; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

func progress(ctx context.Context, log *slog.Logger, cfg *Config, name string, t, n int) error {
	if cfg.Progress > 0 && t > 0 && t%cfg.Progress == 0 {
		log.Info("prequential: progress", "model", name, "events", t, "of", n)
		return ctx.Err()
	}
	return nil
}
