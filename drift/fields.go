package drift

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
)

// fieldID names an extractor.
type fieldID uint8

const (
	fType fieldID = iota + 1
	fWatchRatio
	fDuration
	fRating
	fContext
	fConsumedRank
	fEventsPerUser
	fSessionLength
	fScore
	fServedRank
	fFallback
	fListSize
	fVariant
	fFeature
	fCTR
	fClickedScore
	fUnrecommended
)

// FieldInfo describes one observable field; Fields lists them.
type FieldInfo struct {
	Source Source
	Name   string // "context." and "feature." end in a key chosen by the signal
	Kind   SignalKind
	Doc    string
	id     fieldID
	prefix bool
}

var fieldCatalogue = []FieldInfo{
	{SourceEvents, "type", SignalCategorical, "event type of every event (the event-type mix)", fType, false},
	{SourceEvents, "watch_ratio", SignalNumeric, "value/duration of watch events, clipped to [0,1]", fWatchRatio, false},
	{SourceEvents, "duration", SignalNumeric, "item length in seconds of events that carry one", fDuration, false},
	{SourceEvents, "rating", SignalNumeric, "value of rating events", fRating, false},
	{SourceEvents, "context.", SignalCategorical, "value of a context key on every event (\"\" when absent)", fContext, true},
	{SourceEvents, "item_rank", SignalRank, "consumed items (click, watch, like, purchase, rating) by reference popularity rank", fConsumedRank, false},
	{SourceEvents, "events_per_user", SignalNumeric, "events per user in the window, one observation per user at window close", fEventsPerUser, false},
	{SourceEvents, "session_length", SignalNumeric, "seconds between a user's first and last event in the window, per user at window close", fSessionLength, false},
	{SourceRecs, "score", SignalNumeric, "score of every served item", fScore, false},
	{SourceRecs, "item_rank", SignalRank, "served items by reference popularity rank", fServedRank, false},
	{SourceRecs, "fallback", SignalCategorical, "whether a served list is a fallback (\"1\"/\"0\"): the fallback rate", fFallback, false},
	{SourceRecs, "list_size", SignalNumeric, "items per served list", fListSize, false},
	{SourceRecs, "variant", SignalCategorical, "variant of every served list", fVariant, false},
	{SourceRecs, "feature.", SignalNumeric, "a ranker feature's value at serving time, per served item that has it", fFeature, true},
	{SourceOutcome, "ctr", SignalCategorical, "whether a served list got a click within the attribution time (\"1\"/\"0\"): the positive metric", fCTR, false},
	{SourceOutcome, "clicked_score", SignalNumeric, "served score of clicked items", fClickedScore, false},
	{SourceOutcome, "unrecommended", SignalCategorical, "whether an engagement was with an item Eddy did not recommend (\"1\"/\"0\"): the negative metric", fUnrecommended, false},
}

// Fields returns the catalogue of observable fields.
func Fields() []FieldInfo {
	return append([]FieldInfo(nil), fieldCatalogue...)
}

func lookupField(src Source, name string) (FieldInfo, error) {
	for _, f := range fieldCatalogue {
		if f.Source != src {
			continue
		}
		if f.prefix && strings.HasPrefix(name, f.Name) && len(name) > len(f.Name) {
			return f, nil
		}
		if !f.prefix && f.Name == name {
			return f, nil
		}
	}
	var known []string
	for _, f := range fieldCatalogue {
		if f.Source == src {
			n := f.Name
			if f.prefix {
				n += "<key>"
			}
			known = append(known, n)
		}
	}
	if len(known) == 0 {
		return FieldInfo{}, fmt.Errorf("unknown source (want events, recs or outcome)")
	}
	return FieldInfo{}, fmt.Errorf("unknown field (%s has %s)", src, strings.Join(known, ", "))
}

// signal is one compiled signal.
type signal struct {
	SignalConfig
	field fieldID
	key   string // context key or feature name
}

// Schema is a validated configuration compiled for observation: the fixed
// signal list (its order is the index of every per-signal summary) and the
// dispatch lists of each source. Windows, references and states are tied
// to the schema's Fingerprint.
type Schema struct {
	cfg     Config
	signals []signal
	fp      uint64

	perEvent    []int // events signals observed per event
	perUser     []int // events signals observed per user at close
	perList     []int // recs signals observed per served list
	perItem     []int // recs signals observed per served item, but features
	perFeature  []int // feature.<name> signals, sorted by name (merge-walked with an item's sorted features)
	ctr         []int
	clicked     []int
	unrecommend []int
	needsUsers  bool
	needsJoin   bool
}

// NewSchema validates cfg and compiles it.
func NewSchema(cfg Config) (*Schema, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Schema{cfg: cfg}
	cfg.Signals = append([]SignalConfig(nil), cfg.Signals...)
	h := fnv.New64a()
	fmt.Fprintf(h, "eddy-drift-schema-1|k=%d|cap=%d|sample=%g", cfg.SketchK, cfg.TableCapacity, cfg.Window.Sample)
	for i, sc := range cfg.Signals {
		f, _ := lookupField(sc.Source, sc.Field) // validated above
		sg := signal{SignalConfig: sc, field: f.id}
		if f.prefix {
			sg.key = sc.Field[len(f.Name):]
		}
		s.signals = append(s.signals, sg)
		// The fingerprint covers what the summaries mean, not how they are
		// judged: thresholds and methods may change without losing state.
		fmt.Fprintf(h, "|%s/%s/%s/%s", sc.Name, sc.Source, sc.Field, sc.Kind)
		switch f.id {
		case fType, fWatchRatio, fDuration, fRating, fContext, fConsumedRank:
			s.perEvent = append(s.perEvent, i)
		case fEventsPerUser, fSessionLength:
			s.perUser = append(s.perUser, i)
			s.needsUsers = true
		case fFallback, fListSize, fVariant:
			s.perList = append(s.perList, i)
		case fScore, fServedRank:
			s.perItem = append(s.perItem, i)
		case fFeature:
			s.perFeature = append(s.perFeature, i)
		case fCTR:
			s.ctr = append(s.ctr, i)
			s.needsJoin = true
		case fClickedScore:
			s.clicked = append(s.clicked, i)
			s.needsJoin = true
		case fUnrecommended:
			s.unrecommend = append(s.unrecommend, i)
			s.needsJoin = true
		}
	}
	slices.SortStableFunc(s.perFeature, func(a, b int) int { return strings.Compare(s.signals[a].key, s.signals[b].key) })
	s.cfg = cfg
	s.fp = h.Sum64()
	return s, nil
}

// Config returns the validated configuration.
func (s *Schema) Config() Config { return s.cfg }

// Fingerprint identifies the signal list (names, sources, fields, kinds)
// and summary parameters; state encoded under another fingerprint is
// refused by the decoders.
func (s *Schema) Fingerprint() uint64 { return s.fp }

// Signals returns the compiled signal configurations in schema order.
func (s *Schema) Signals() []SignalConfig {
	out := make([]SignalConfig, len(s.signals))
	for i := range s.signals {
		out[i] = s.signals[i].SignalConfig
	}
	return out
}
