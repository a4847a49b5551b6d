// Package drifteval runs Eddy's drift detection offline over a synthetic
// stream with a known shift, and scores it: how many windows after the
// shift it was detected, how many windows raised a false alarm before it,
// and how many retrain requests the trigger policy emitted. It backs
// `eddy eval drift --synthetic` and the calibration tests of the default
// thresholds.
//
// It owns the synthetic serving side: internal/synth generates events, and
// drifteval turns each request's impressions into the drift.ServedList the
// scorer would have written, scored by a frozen snapshot of the generator's
// ground-truth model taken at the start (a perfect model that goes stale
// when tastes drift). Features at serving time are mf_score (that score)
// and item_pop (the item's popularity term from the snapshot ranks);
// fallback is always false and item_ctr is not produced, so those signals
// stay unjudged. It does not own the drift code: every record goes through
// drift.Partition, drift.Merger and drift.Monitor exactly as in the drift
// role.
package drifteval

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"time"

	"github.com/eddyrec/eddy/drift"
	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/synth"
)

// Config is one offline run.
type Config struct {
	Synth synth.Config // the stream; its drift fields are set by Run from DriftAt and Kind
	Drift drift.Config // the drift configuration under test
	// Windows is how many windows are judged after the reference capture
	// (default 288: a day of 5-minute windows).
	Windows int
	// DriftAt is the judged window (1-based) at whose start the shift is
	// injected; 0 means a stationary stream.
	DriftAt int
	Kind    synth.DriftKind
	// Partitions is how many partitions the stream is spread over by
	// user id, so that the run exercises the merge: default 4 with
	// event-time windows, 1 with count windows (the k-th count window of
	// each partition covers different times when partitions carry
	// different traffic, so merged count windows are not aligned with the
	// shift).
	Partitions int
	// WindowEvents, when > 0, uses count-based windows of that many
	// events in total (WindowEvents/Partitions per partition) instead of
	// Drift.Window.Size.
	WindowEvents int64
}

// Result is the outcome of a run, printed by `eddy eval drift --json`.
type Result struct {
	// DetectedAfterWindows is the number of shifted windows seen up to and
	// including the first drifted one (1: detected in the first shifted
	// window); nil without a shift or when it was missed.
	DetectedAfterWindows *int `json:"detected_after_windows"`
	// FalseAlarms counts windows before the shift (all windows when
	// stationary) in which any signal drifted.
	FalseAlarms     int `json:"false_alarms"`
	Windows         int `json:"windows"`
	RetrainRequests int `json:"retrain_requests"`

	Kind             string   `json:"kind"`
	DriftAt          int      `json:"drift_at"`
	Seed             uint64   `json:"seed"`
	ReferenceWindows int      `json:"reference_windows"`
	Partitions       int      `json:"partitions"`
	Events           int64    `json:"events"`
	Lists            int64    `json:"lists"`
	RequestWindows   []int    `json:"retrain_request_windows"`
	DetectedSignals  []string `json:"detected_signals"`
	// MaxRatio is, per signal, the largest score/threshold seen before the
	// shift (p-value methods: threshold/p): how close the stationary
	// stream came to an alarm. Calibration reads it.
	MaxRatio map[string]float64 `json:"max_ratio_before_drift"`
}

// lookahead is how many events are held back so that all impressions of a
// request are known before its served list is emitted (the list precedes
// its impressions). A request's impressions interleave with other
// sessions' events; with 64 concurrent sessions nearly all arrive within a
// few thousand events, and lists cut short are counted in Truncated.
const lookahead = 8192

// Run generates the stream and judges it. onReport, if not nil, sees every
// report and decision in order.
func Run(ctx context.Context, cfg Config, onReport func(drift.Step)) (Result, error) {
	if cfg.Windows == 0 {
		cfg.Windows = 288
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 4
		if cfg.WindowEvents > 0 {
			cfg.Partitions = 1
		}
	}
	if cfg.Windows < 1 || cfg.Partitions < 1 || cfg.Partitions > 1024 || cfg.DriftAt < 0 || cfg.DriftAt > cfg.Windows || cfg.WindowEvents < 0 {
		return Result{}, errors.New("drifteval: windows ≥ 1, partitions in [1, 1024], 0 ≤ drift-at ≤ windows, window-events ≥ 0")
	}
	if cfg.DriftAt > 0 && cfg.Kind == synth.DriftNone {
		return Result{}, errors.New("drifteval: drift-at needs a drift kind")
	}
	dcfg := cfg.Drift
	if cfg.WindowEvents > 0 {
		per := cfg.WindowEvents / int64(cfg.Partitions)
		if per < 1 {
			return Result{}, errors.New("drifteval: window-events must be at least the number of partitions")
		}
		dcfg.Window.Events = per
	}
	schema, err := drift.NewSchema(dcfg)
	if err != nil {
		return Result{}, err
	}
	ref := schema.Config().ReferenceWindows
	total := ref + cfg.Windows

	scfg := cfg.Synth
	scfg.DriftKind, scfg.DriftAt, scfg.DriftAtTime = synth.DriftNone, 0, time.Time{}
	if cfg.DriftAt > 0 {
		scfg.DriftKind = cfg.Kind
		shifted := int64(ref + cfg.DriftAt - 1) // windows before the shift
		if cfg.WindowEvents > 0 {
			scfg.DriftAt = shifted * cfg.WindowEvents
		} else {
			// Windows are counted from the one holding the first event.
			size := time.Duration(dcfg.Window.Size)
			scfg.DriftAtTime = scfg.Start.Truncate(size).Add(time.Duration(shifted) * size)
		}
	}
	gen, err := synth.New(scfg)
	if err != nil {
		return Result{}, err
	}
	r := &runner{
		cfg: cfg, schema: schema, gen: gen, total: total, ref: ref,
		res: Result{
			Windows: cfg.Windows, Kind: cfg.Kind.String(), DriftAt: cfg.DriftAt, Seed: scfg.Seed,
			ReferenceWindows: ref, Partitions: cfg.Partitions,
			RequestWindows: []int{}, DetectedSignals: []string{}, MaxRatio: map[string]float64{},
		},
		onReport: onReport,
	}
	if cfg.DriftAt == 0 {
		r.res.Kind = "none"
	}
	if err := r.run(ctx); err != nil {
		return r.res, err
	}
	return r.res, nil
}

type runner struct {
	cfg      Config
	schema   *drift.Schema
	gen      *synth.Generator
	total    int
	ref      int
	onReport func(drift.Step)

	parts   []*drift.Partition
	merger  *drift.Merger
	monitor *drift.Monitor
	judged  int // merged windows processed
	res     Result

	snapUser []float32
	itemVec  []float32
	itemPop  []float64

	ring    []event.Event
	head    int
	n       int
	pending map[string]*drift.ServedList // request id → list being collected
	emitted map[string]bool              // request ids whose list was emitted (the last len(recent))
	recent  []string                     // ring of emitted ids, bounding emitted
	next    int
	closed  []*drift.Window
}

func (r *runner) run(ctx context.Context) error {
	c := r.gen.Config()
	r.snapUser = make([]float32, 0, c.Users*c.Dim)
	for u := range c.Users {
		r.snapUser = append(r.snapUser, r.gen.UserVector(u)...)
	}
	r.itemVec = make([]float32, 0, c.Items*c.Dim)
	r.itemPop = make([]float64, c.Items)
	for i := range c.Items {
		r.itemVec = append(r.itemVec, r.gen.ItemVector(i)...)
		_, rank := r.gen.Popularity(i)
		r.itemPop[i] = 1 - math.Log(float64(rank))/math.Log(float64(c.Items))
	}
	ids := make([]int32, r.cfg.Partitions)
	for p := range ids {
		ids[p] = int32(p)
		r.parts = append(r.parts, drift.NewPartition(r.schema))
	}
	r.merger = drift.NewMerger(r.schema, ids)
	r.monitor = drift.NewMonitor(r.schema, nil)
	r.ring = make([]event.Event, lookahead)
	r.pending = map[string]*drift.ServedList{}
	r.emitted = map[string]bool{}
	r.recent = make([]string, 1<<16)

	for r.judged < r.total {
		if r.res.Events&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		slot := (r.head + r.n) % lookahead
		if r.n == lookahead {
			if err := r.release(); err != nil {
				return err
			}
			slot = (r.head + r.n) % lookahead
		}
		e := &r.ring[slot]
		r.gen.Next(e)
		r.n++
		if e.Type == event.Impression && !r.emitted[e.RequestID] {
			r.collect(e)
		}
	}
	return nil
}

// collect adds an impression to its request's list.
func (r *runner) collect(e *event.Event) {
	l := r.pending[e.RequestID]
	if l == nil {
		l = &drift.ServedList{RequestID: e.RequestID, UserID: e.UserID, ModelVersion: "synthetic-snapshot", Time: e.Time}
		r.pending[e.RequestID] = l
	}
	u, _ := r.gen.UserIndex(e.UserID)
	i, _ := r.gen.ItemIndex(e.ItemID)
	d := r.gen.Config().Dim
	var score float64
	uv, iv := r.snapUser[u*d:u*d+d], r.itemVec[i*d:i*d+d]
	for k := range uv {
		score += float64(uv[k]) * float64(iv[k])
	}
	l.Items = append(l.Items, drift.ServedItem{
		ItemID: e.ItemID, Position: len(l.Items), Score: score,
		Features: drift.Features{{Name: "item_pop", Value: r.itemPop[i]}, {Name: "mf_score", Value: score}},
	})
}

// release observes the oldest held event, preceded by its request's served
// list when it is the request's first impression.
func (r *runner) release() error {
	e := &r.ring[r.head]
	r.head = (r.head + 1) % lookahead
	r.n--
	p := r.partition(e.UserID)
	if l, ok := r.pending[e.RequestID]; ok && e.Type == event.Impression {
		delete(r.pending, e.RequestID)
		r.markEmitted(e.RequestID)
		r.parts[p].ObserveServedList(l)
		r.res.Lists++
	}
	r.parts[p].ObserveEvent(e)
	r.res.Events++
	return r.drain(p)
}

// markEmitted remembers a request whose list was emitted, forgetting the
// oldest of the last 65,536 so memory stays flat; a request's impressions
// all arrive within the lookahead, far fewer requests than that.
func (r *runner) markEmitted(id string) {
	if old := r.recent[r.next]; old != "" {
		delete(r.emitted, old)
	}
	r.recent[r.next] = id
	r.next = (r.next + 1) % len(r.recent)
	r.emitted[id] = true
}

func (r *runner) partition(user string) int {
	h := fnv.New32a()
	h.Write([]byte(user))
	return int(h.Sum32() % uint32(len(r.parts)))
}

func (r *runner) drain(p int) error {
	r.closed = r.parts[p].TakeClosed(r.closed[:0])
	merged, err := r.merger.Add(int32(p), r.closed, r.parts[p].ClosedThrough())
	if err != nil {
		return err
	}
	for _, w := range merged {
		if r.judged >= r.total {
			break
		}
		if err := r.judge(w); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) judge(w *drift.Window) error {
	st, err := r.monitor.Process(w)
	if err != nil {
		return fmt.Errorf("drifteval: window %d: %w", w.Index, err)
	}
	r.judged++
	if r.onReport != nil {
		r.onReport(st)
	}
	judgedIdx := r.judged - r.ref // 1-based among judged windows; ≤ 0 while capturing
	if judgedIdx < 1 {
		return nil
	}
	shifted := r.cfg.DriftAt > 0 && judgedIdx >= r.cfg.DriftAt
	if !shifted {
		for _, s := range st.Report.Signals {
			if s.Status != drift.StatusOK {
				continue
			}
			var ratio float64
			if s.Method.HasPValue() {
				ratio = s.Threshold / math.Max(s.PValue, 1e-300)
			} else {
				ratio = s.Score / s.Threshold
			}
			r.res.MaxRatio[s.Name] = math.Max(r.res.MaxRatio[s.Name], math.Round(ratio*1000)/1000)
		}
		if st.Report.Drifted {
			r.res.FalseAlarms++
		}
	} else if st.Report.Drifted && r.res.DetectedAfterWindows == nil {
		n := judgedIdx - r.cfg.DriftAt + 1
		r.res.DetectedAfterWindows = &n
		r.res.DetectedSignals = append(r.res.DetectedSignals, st.Report.DriftedSignals...)
	}
	if st.Decision.Action == drift.ActionRequest {
		r.res.RetrainRequests++
		r.res.RequestWindows = append(r.res.RequestWindows, judgedIdx)
	}
	return nil
}
