package drift

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Reference is what windows are compared against: the merged summaries of
// a set of windows — those captured after the current model version was
// promoted, or a configured baseline period — with where they came from.
// It is immutable once built and safe for concurrent Compare calls.
type Reference struct {
	ID           string
	ModelVersion string
	Start, End   time.Time
	Windows      int

	w *Window
	// Per rank signal: the table ranks are taken from and the table whose
	// bucket shares are the reference distribution. With two or more
	// windows they are disjoint halves (even and odd windows): ranking
	// items by the same counts that are then bucketed would favour the
	// items that were lucky in the reference, and every fresh window would
	// look shifted towards lower ranks (measured: JS ≈ 0.1 on a
	// stationary stream; ≈ 0.01 with the split).
	rankTab, distTab []*FreqTable
	ranks            []map[string]int // item → 1-based rank in rankTab
}

// NewReference merges closed windows into a reference. id names it in
// reports (e.g. "model-v12" or "baseline-20250101"); modelVersion may be
// empty.
func NewReference(id, modelVersion string, windows []*Window) (*Reference, error) {
	if len(windows) == 0 {
		return nil, errors.New("drift: reference: no windows")
	}
	if id == "" || len(id) > maxIDBytes {
		return nil, errors.New("drift: reference: id must be 1–65535 bytes")
	}
	w, err := MergeWindows(windows...)
	if err != nil {
		return nil, fmt.Errorf("drift: reference: %w", err)
	}
	r := &Reference{ID: id, ModelVersion: modelVersion, Start: w.Start, End: w.End, Windows: len(windows), w: w}
	s := w.schema
	r.rankTab = make([]*FreqTable, len(s.signals))
	r.distTab = make([]*FreqTable, len(s.signals))
	var even, odd *Window
	if len(windows) >= 2 {
		var ev, od []*Window
		for k, x := range windows {
			if k%2 == 0 {
				ev = append(ev, x)
			} else {
				od = append(od, x)
			}
		}
		if even, err = MergeWindows(ev...); err != nil {
			return nil, fmt.Errorf("drift: reference: %w", err)
		}
		if odd, err = MergeWindows(od...); err != nil {
			return nil, fmt.Errorf("drift: reference: %w", err)
		}
	}
	for i := range s.signals {
		if s.signals[i].Kind != SignalRank {
			continue
		}
		r.rankTab[i], r.distTab[i] = w.tables[i], w.tables[i]
		if even != nil && even.tables[i] != nil && odd.tables[i] != nil {
			r.rankTab[i], r.distTab[i] = even.tables[i], odd.tables[i]
		}
	}
	r.index()
	return r, nil
}

// Window returns the reference's merged summaries (do not modify them).
func (r *Reference) Window() *Window { return r.w }

func (r *Reference) index() {
	s := r.w.schema
	r.ranks = make([]map[string]int, len(s.signals))
	for i := range s.signals {
		if r.rankTab[i] == nil {
			continue
		}
		cats := r.rankTab[i].Categories()
		slices.SortFunc(cats, func(a, b Category) int {
			if c := cmp.Compare(b.Count, a.Count); c != 0 {
				return c
			}
			return cmp.Compare(a.Key, b.Key)
		})
		m := make(map[string]int, len(cats))
		for k, c := range cats {
			m[c.Key] = k + 1
		}
		r.ranks[i] = m
	}
}

// RankBuckets are the upper rank bounds of the popularity buckets a rank
// signal is compared on: ranks 1–10, 11–100, 101–1000, and everything else
// (ranked beyond 1000, or not tracked by the reference at all). Log-spaced
// buckets follow the Zipf shape of popularity; few buckets keep the
// comparison's noise low at a few thousand observations per window.
var RankBuckets = [...]int{10, 100, 1000}

func rankBucket(rank int) int {
	for b, hi := range RankBuckets {
		if rank >= 1 && rank <= hi {
			return b
		}
	}
	return len(RankBuckets)
}

// bucketCounts puts a table's counts into rank buckets by the reference's
// ranks; untracked mass (Other) goes to the last bucket.
func bucketCounts(ranks map[string]int, t *FreqTable) []float64 {
	out := make([]float64, len(RankBuckets)+1)
	for k, c := range t.counts {
		out[rankBucket(ranks[k])] += float64(c)
	}
	out[len(RankBuckets)] += float64(t.other)
	return out
}

// Status says whether a signal was judged in a window.
type Status string

// The statuses.
const (
	StatusOK           Status = "ok"           // compared; Drifted says the verdict
	StatusInsufficient Status = "insufficient" // fewer than MinSamples in the window
	StatusNoReference  Status = "no_reference" // the reference has no observations
	StatusError        Status = "error"        // the method failed; Error says why
)

// SignalResult is one signal's line in a Report.
type SignalResult struct {
	Name   string     `json:"name"`
	Source Source     `json:"source"`
	Field  string     `json:"field"`
	Kind   SignalKind `json:"kind"`
	Result
	Status Status `json:"status"`
	Error  string `json:"error,omitempty"`
}

// MarshalJSON flattens the embedded Result (which has its own MarshalJSON).
func (s SignalResult) MarshalJSON() ([]byte, error) {
	type line struct {
		Name      string     `json:"name"`
		Source    Source     `json:"source"`
		Field     string     `json:"field"`
		Kind      SignalKind `json:"kind"`
		Method    Method     `json:"method"`
		Score     float64    `json:"score"`
		PValue    *float64   `json:"p_value,omitempty"`
		Threshold float64    `json:"threshold"`
		N         int64      `json:"n"`
		RefN      int64      `json:"ref_n"`
		Drifted   bool       `json:"drifted"`
		Status    Status     `json:"status"`
		Error     string     `json:"error,omitempty"`
	}
	l := line{
		Name: s.Name, Source: s.Source, Field: s.Field, Kind: s.Kind,
		Method: s.Method, Score: finite(s.Score), Threshold: s.Threshold,
		N: s.N, RefN: s.RefN, Drifted: s.Drifted, Status: s.Status, Error: s.Error,
	}
	if s.Method.HasPValue() && s.Status == StatusOK {
		p := finite(s.PValue)
		l.PValue = &p
	}
	return json.Marshal(l)
}

// finite maps NaN and ±Inf (which JSON cannot carry) to 0 and ±MaxFloat64.
func finite(x float64) float64 {
	switch {
	case math.IsNaN(x):
		return 0
	case math.IsInf(x, 1):
		return math.MaxFloat64
	case math.IsInf(x, -1):
		return -math.MaxFloat64
	}
	return x
}

// ReportSchemaVersion is the version of the Report JSON layout.
const ReportSchemaVersion = 1

// Report is the DriftReport of one merged window: every signal's
// distance, threshold, sample sizes and verdict, published to eddy.drift.
type Report struct {
	Schema         int            `json:"schema"`
	ID             string         `json:"id"`
	WindowIndex    int64          `json:"window_index"`
	WindowStart    time.Time      `json:"window_start"`
	WindowEnd      time.Time      `json:"window_end"`
	Partitions     int            `json:"partitions"`
	Events         int64          `json:"events"`
	Lists          int64          `json:"lists"`
	ReferenceID    string         `json:"reference_id"`
	ModelVersion   string         `json:"model_version,omitempty"`
	Signals        []SignalResult `json:"signals"`
	Drifted        bool           `json:"drifted"`
	DriftedSignals []string       `json:"drifted_signals"`
}

// ReportID is the id of the report of window w: "drift-<index>-<start
// Unix ms>", stable across restarts and replays.
func ReportID(w *Window) string {
	return fmt.Sprintf("drift-%d-%d", w.Index, w.Start.UnixMilli())
}

// Compare judges the closed window w against r, signal by signal.
func (r *Reference) Compare(w *Window) (*Report, error) {
	if w.schema.fp != r.w.schema.fp {
		return nil, fmt.Errorf("drift: compare: %w", ErrSchemaMismatch)
	}
	s := w.schema
	rep := &Report{
		Schema: ReportSchemaVersion, ID: ReportID(w), WindowIndex: w.Index,
		WindowStart: w.Start, WindowEnd: w.End, Partitions: w.Partitions,
		Events: w.Events, Lists: w.Lists, ReferenceID: r.ID, ModelVersion: r.ModelVersion,
		Signals: make([]SignalResult, len(s.signals)), DriftedSignals: []string{},
	}
	for i := range s.signals {
		sg := &s.signals[i]
		line := &rep.Signals[i]
		*line = SignalResult{Name: sg.Name, Source: sg.Source, Field: sg.Field, Kind: sg.Kind}
		line.Method, line.Threshold = sg.Method, sg.Threshold
		line.N, line.RefN = w.N(i), r.w.N(i)
		switch {
		case line.RefN == 0:
			line.Status = StatusNoReference
			continue
		case line.N < sg.MinSamples:
			line.Status = StatusInsufficient
			continue
		}
		res, err := r.compareSignal(i, w)
		if err != nil {
			line.Status, line.Error = StatusError, err.Error()
			continue
		}
		line.Result = res
		line.Status = StatusOK
		if res.Drifted {
			rep.Drifted = true
			rep.DriftedSignals = append(rep.DriftedSignals, sg.Name)
		}
	}
	return rep, nil
}

func (r *Reference) compareSignal(i int, w *Window) (Result, error) {
	sg := &w.schema.signals[i]
	opt := Options{Method: sg.Method, Threshold: sg.Threshold}
	switch sg.Kind {
	case SignalNumeric:
		return CompareSketches(r.w.sketches[i], w.sketches[i], opt)
	case SignalCategorical:
		return CompareTables(r.w.tables[i], w.tables[i], opt)
	}
	rc := bucketCounts(r.ranks[i], r.distTab[i])
	cc := bucketCounts(r.ranks[i], w.tables[i])
	res := Result{Method: sg.Method, N: w.N(i), RefN: r.w.N(i)}
	var err error
	switch sg.Method {
	case MethodJS:
		res.Score, err = JS(rc, cc)
	case MethodPSI:
		res.Score, err = PSICounts(rc, cc)
	case MethodChiSquare:
		res.Score, res.PValue, _, err = ChiSquare(rc, cc)
	default:
		err = fmt.Errorf("%s on ranks: %w", sg.Method, ErrNotApplicable)
	}
	if err != nil {
		return res, err
	}
	res.decide(opt)
	return res, nil
}

// Reference binary layout, version 1:
//
//	"EDRF" | ver u8 | id len u16, id | model len u16, version | windows u32
//	| window len u32, window | rank signals u16 × (signal u16, rank table
//	  len u32, table, distribution table len u32, table), signals ascending
const referenceMagic = "EDRF"

// MarshalBinary encodes the reference for its store.
func (r *Reference) MarshalBinary() ([]byte, error) {
	var e encoder
	e.b = append(e.b, referenceMagic...)
	e.u8(stateV1)
	if err := e.str16(r.ID); err != nil {
		return nil, err
	}
	if err := e.str16(r.ModelVersion); err != nil {
		return nil, err
	}
	e.u32(uint32(r.Windows))
	var we encoder
	if err := r.w.encode(&we); err != nil {
		return nil, err
	}
	e.blob(we.b)
	var idx []int
	for i := range r.rankTab {
		if r.rankTab[i] != nil {
			idx = append(idx, i)
		}
	}
	e.u16(uint16(len(idx)))
	for _, i := range idx {
		e.u16(uint16(i))
		for _, t := range []*FreqTable{r.rankTab[i], r.distTab[i]} {
			b, err := t.MarshalBinary()
			if err != nil {
				return nil, err
			}
			e.blob(b)
		}
	}
	return e.b, nil
}

// DecodeReference decodes a reference written by MarshalBinary under s.
func DecodeReference(s *Schema, data []byte) (*Reference, error) {
	d := &decoder{b: data}
	r, err := decodeReference(s, d)
	if err != nil {
		return nil, fmt.Errorf("drift: decode reference: %w", err)
	}
	return r, nil
}

func decodeReference(s *Schema, d *decoder) (*Reference, error) {
	if m := d.take(4); d.err != nil || string(m) != referenceMagic {
		return nil, corrupt("bad magic")
	}
	if v := d.u8(); v != stateV1 {
		return nil, corrupt("unsupported version %d", v)
	}
	id, mv := d.str16(), d.str16()
	n := d.u32()
	if d.err != nil {
		return nil, d.err
	}
	if id == "" || n < 1 || n > math.MaxInt32 {
		return nil, corrupt("reference id or window count invalid")
	}
	wb := d.blob()
	if d.err != nil {
		return nil, d.err
	}
	wd := &decoder{b: wb}
	w, err := decodeWindow(s, wd)
	if err != nil {
		return nil, err
	}
	if len(wd.b) != 0 || !w.closed {
		return nil, corrupt("reference window not closed or trailing bytes")
	}
	r := &Reference{ID: id, ModelVersion: mv, Start: w.Start, End: w.End, Windows: int(n), w: w}
	r.rankTab = make([]*FreqTable, len(s.signals))
	r.distTab = make([]*FreqTable, len(s.signals))
	nrank := int(d.u16())
	prev := -1
	for range nrank {
		i := int(d.u16())
		if d.err != nil {
			return nil, d.err
		}
		if i <= prev || i >= len(s.signals) || s.signals[i].Kind != SignalRank {
			return nil, corrupt("rank table for signal %d invalid", i)
		}
		prev = i
		for k, dst := range []**FreqTable{&r.rankTab[i], &r.distTab[i]} {
			b := d.blob()
			if d.err != nil {
				return nil, d.err
			}
			t := &FreqTable{}
			if err := t.decode(b); err != nil {
				return nil, fmt.Errorf("rank table %d/%d: %w", i, k, err)
			}
			*dst = t
		}
	}
	if len(d.b) != 0 {
		return nil, corrupt("%d trailing bytes", len(d.b))
	}
	for i := range s.signals {
		if s.signals[i].Kind == SignalRank && (r.rankTab[i] == nil) != (w.tables[i] == nil) {
			return nil, corrupt("rank tables of signal %d missing", i)
		}
	}
	r.index()
	return r, nil
}
