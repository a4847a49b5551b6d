package abtest

import (
	"fmt"
	"math"
	"slices"
)

// Kind is the kind of an engagement the report counts.
type Kind uint8

// Engagement kinds.
const (
	Click Kind = iota + 1 // a click on a served item
	Watch                 // seconds of a served item watched
)

// Engagement is one event answering a served list.
type Engagement struct {
	EventID   string
	RequestID string
	ItemID    string
	Kind      Kind
	// Seconds is the watch time of a Watch (≥ 0); ignored for a Click.
	Seconds float64
}

// Outcome says what AddEngagement did with an engagement.
type Outcome uint8

// Outcomes of AddEngagement.
const (
	Counted        Outcome = iota // joined and counted
	DuplicateEvent                // its event_id was seen before
	RepeatClick                   // the item of that list was already clicked
	UnknownRequest                // no served list has its request_id
	UnknownItem                   // its list did not serve its item
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"counted", "duplicate_event", "repeat_click", "unknown_request", "unknown_item"}

func (o Outcome) String() string {
	if o < numOutcomes {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// list is one served list while joining.
type list struct {
	variant  uint16
	fallback bool
	items    []string
	clicked  []bool // by position; nil until the first click
	clicks   int32
	watch    float64
}

// Experiment joins served lists and engagements. Add every list first:
// an engagement whose list is added later counts as UnknownRequest. It
// holds every list and the event ids of counted engagements in memory.
type Experiment struct {
	lists    map[string]*list
	variants []string
	index    map[string]uint16
	events   map[string]struct{}
	outcomes [numOutcomes]int64
	dupLists int64
}

// New returns an empty Experiment.
func New() *Experiment {
	return &Experiment{lists: map[string]*list{}, index: map[string]uint16{}, events: map[string]struct{}{}}
}

// AddList adds a served list of variant (empty: "default", as a scorer
// without --variants names it). A request_id seen before is a duplicate
// (a producer retry): ignored, and false is returned.
func (e *Experiment) AddList(requestID, variant string, fallback bool, items []string) bool {
	if _, ok := e.lists[requestID]; ok {
		e.dupLists++
		return false
	}
	if variant == "" {
		variant = "default"
	}
	v, ok := e.index[variant]
	if !ok {
		v = uint16(len(e.variants))
		e.index[variant] = v
		e.variants = append(e.variants, variant)
	}
	e.lists[requestID] = &list{variant: v, fallback: fallback, items: slices.Clone(items)}
	return true
}

// AddEngagement joins one engagement to its list.
func (e *Experiment) AddEngagement(g Engagement) Outcome {
	o := e.join(g)
	e.outcomes[o]++
	return o
}

func (e *Experiment) join(g Engagement) Outcome {
	l := e.lists[g.RequestID]
	if l == nil {
		return UnknownRequest
	}
	pos := slices.Index(l.items, g.ItemID)
	if pos < 0 {
		return UnknownItem
	}
	if g.EventID != "" {
		if _, ok := e.events[g.EventID]; ok {
			return DuplicateEvent
		}
	}
	switch g.Kind {
	case Click:
		if l.clicked == nil {
			l.clicked = make([]bool, len(l.items))
		}
		if l.clicked[pos] {
			e.remember(g.EventID)
			return RepeatClick
		}
		l.clicked[pos] = true
		l.clicks++
	case Watch:
		if g.Seconds > 0 && !math.IsInf(g.Seconds, 0) {
			l.watch += g.Seconds
		}
	}
	e.remember(g.EventID)
	return Counted
}

func (e *Experiment) remember(id string) {
	if id != "" {
		e.events[id] = struct{}{}
	}
}

// Outcomes returns how many engagements had each outcome, by
// Outcome.String(), and the duplicate lists ignored ("duplicate_list").
func (e *Experiment) Outcomes() map[string]int64 {
	m := map[string]int64{"duplicate_list": e.dupLists}
	for o, n := range e.outcomes {
		m[Outcome(o).String()] = n
	}
	return m
}

// VariantResult is one variant's row of the report. Intervals are 95%;
// a nil interval is undefined (no impressions, or fewer than two lists
// with one).
type VariantResult struct {
	Lists         int64       `json:"lists"`
	FallbackLists int64       `json:"fallback_lists"`
	Impressions   int64       `json:"impressions"`
	Clicks        int64       `json:"clicks"`
	CTR           float64     `json:"ctr"`
	CTRCI         *[2]float64 `json:"ctr_ci"`
	WatchSeconds  float64     `json:"watch_sec"`
	// WatchPerImpression is Σ watch seconds / Σ impressions, WatchCI its
	// per-list clustered normal interval (Ratio).
	WatchPerImpression float64     `json:"watch_sec_per_impression"`
	WatchCI            *[2]float64 `json:"watch_ci"`
	// VsControl compares the CTR with the control's; nil for the control
	// and when either has no impressions.
	VsControl *Comparison `json:"vs_control,omitempty"`
}

// Comparison is a variant's CTR against the control's.
type Comparison struct {
	// CTRDiff is CTR − control CTR, CTRDiffCI its 95% Wald interval.
	CTRDiff   float64    `json:"ctr_diff"`
	CTRDiffCI [2]float64 `json:"ctr_diff_ci"`
	// Z and P are the pooled two-proportion z-test and its two-sided
	// p-value.
	Z float64 `json:"z"`
	P float64 `json:"p_value"`
}

// Report is the per-variant result of an experiment.
type Report struct {
	Control  string                   `json:"control"`
	Variants map[string]VariantResult `json:"variants"`
	// Order lists the variants, the control first, then by name.
	Order []string `json:"-"`
}

// Report computes the per-variant results with control as the control
// variant; an empty control picks the first variant by name. A control
// that served no list is an error, unless no list was added at all.
func (e *Experiment) Report(control string) (Report, error) {
	r := Report{Control: control, Variants: map[string]VariantResult{}}
	if len(e.variants) == 0 {
		return r, nil
	}
	r.Order = slices.Clone(e.variants)
	slices.Sort(r.Order)
	if control == "" {
		control = r.Order[0]
		r.Control = control
	}
	ci, ok := slices.BinarySearch(r.Order, control)
	if !ok {
		return r, fmt.Errorf("abtest: control variant %q served no list (variants: %v)", control, r.Order)
	}
	r.Order = append([]string{control}, slices.Delete(r.Order, ci, ci+1)...)

	res := make([]VariantResult, len(e.variants))
	watch := make([]Ratio, len(e.variants))
	for _, l := range e.lists {
		v := &res[l.variant]
		v.Lists++
		if l.fallback {
			v.FallbackLists++
		}
		v.Impressions += int64(len(l.items))
		v.Clicks += int64(l.clicks)
		v.WatchSeconds += l.watch
		watch[l.variant].Add(l.watch, float64(len(l.items)))
	}
	for i := range res {
		v := &res[i]
		if v.Impressions > 0 {
			v.CTR = float64(v.Clicks) / float64(v.Impressions)
			lo, hi := Wilson(v.Clicks, v.Impressions, Z95)
			v.CTRCI = &[2]float64{lo, hi}
		}
		v.WatchPerImpression = watch[i].Mean()
		if watch[i].Clusters() >= 2 {
			lo, hi := watch[i].CI(Z95)
			v.WatchCI = &[2]float64{lo, hi}
		}
	}
	c := res[e.index[control]]
	for i, name := range e.variants {
		v := res[i]
		if name != control && v.Impressions > 0 && c.Impressions > 0 {
			z, p := TwoProportionZ(v.Clicks, v.Impressions, c.Clicks, c.Impressions)
			lo, hi := DiffCI(v.Clicks, v.Impressions, c.Clicks, c.Impressions, Z95)
			v.VsControl = &Comparison{CTRDiff: v.CTR - c.CTR, CTRDiffCI: [2]float64{lo, hi}, Z: z, P: p}
		}
		r.Variants[name] = v
	}
	return r, nil
}
