package drift

import (
	"errors"
	"fmt"
)

// StatusCapturing marks the signals of a report made while the reference
// is being captured: there is nothing to compare against yet.
const StatusCapturing Status = "capturing"

// Monitor judges merged windows: it captures a reference from the first
// ReferenceWindows windows (and again after each Promote), compares every
// later window with it, feeds the reports to the trigger Policy and
// updates Metrics. It is the part of the drift role after the merge of
// partitions, and what `eddy eval drift` runs. Its state (reference,
// capture in progress, policy) is encodable so the role survives restarts.
//
// A Monitor is not safe for concurrent use.
type Monitor struct {
	schema  *Schema
	metrics *Metrics

	ref          *Reference
	capturing    bool
	captureModel string
	capture      []*Window
	policy       *Policy
}

// Step is what one window produced.
type Step struct {
	Report   *Report
	Decision Decision
	// Captured is the reference completed by this window, if any.
	Captured *Reference
}

// NewMonitor returns a monitor that starts by capturing a baseline
// reference. metrics may be nil.
func NewMonitor(s *Schema, metrics *Metrics) *Monitor {
	return &Monitor{
		schema: s, metrics: metrics, capturing: true,
		policy: NewPolicy(s.cfg.Trigger),
	}
}

// Reference returns the current reference (nil before the first capture).
func (m *Monitor) Reference() *Reference { return m.ref }

// Policy returns the trigger policy.
func (m *Monitor) Policy() *Policy { return m.policy }

// Capturing reports whether a reference is being captured.
func (m *Monitor) Capturing() bool { return m.capturing }

// Promote starts capturing a new reference for modelVersion from the next
// window on: a promoted model serves differently, so prediction signals
// must be judged against its own reference. The trigger policy is rebased
// when the capture completes.
func (m *Monitor) Promote(modelVersion string) {
	m.capturing, m.captureModel, m.capture = true, modelVersion, nil
}

// SetReference installs a reference built elsewhere (a configured
// baseline period), ending any capture and rebasing the policy.
func (m *Monitor) SetReference(r *Reference) error {
	if r.w.schema.fp != m.schema.fp {
		return fmt.Errorf("drift: set reference: %w", ErrSchemaMismatch)
	}
	m.ref, m.capturing, m.capture = r, false, nil
	m.policy.Rebase()
	return nil
}

// Process judges the next closed, merged window (in index order).
func (m *Monitor) Process(w *Window) (Step, error) {
	if w.schema.fp != m.schema.fp {
		return Step{}, fmt.Errorf("drift: monitor: %w", ErrSchemaMismatch)
	}
	if !w.closed {
		return Step{}, errors.New("drift: monitor: window not closed")
	}
	var st Step
	if m.capturing {
		st.Report = m.capturingReport(w)
		m.capture = append(m.capture, w)
		if len(m.capture) >= m.schema.cfg.ReferenceWindows {
			id := fmt.Sprintf("ref-%d-%d", m.capture[0].Index, m.capture[0].Start.UnixMilli())
			ref, err := NewReference(id, m.captureModel, m.capture)
			if err != nil {
				return st, err
			}
			m.ref, m.capturing, m.capture = ref, false, nil
			m.policy.Rebase()
			st.Captured = ref
		}
		st.Decision = Decision{Time: w.End, ReportID: st.Report.ID, Action: ActionNone}
	} else {
		rep, err := m.ref.Compare(w)
		if err != nil {
			return st, err
		}
		st.Report = rep
		st.Decision = m.policy.Observe(rep)
		if rq := st.Decision.Request; rq != nil {
			rq.ReferenceFrom, rq.ReferenceTo = m.ref.Start, m.ref.End
		}
	}
	if m.metrics != nil {
		m.metrics.ObserveReport(st.Report)
		m.metrics.ObserveDecision(st.Decision)
	}
	return st, nil
}

func (m *Monitor) capturingReport(w *Window) *Report {
	rep := &Report{
		Schema: ReportSchemaVersion, ID: ReportID(w), WindowIndex: w.Index,
		WindowStart: w.Start, WindowEnd: w.End, Partitions: w.Partitions,
		Events: w.Events, Lists: w.Lists, ModelVersion: m.captureModel,
		Signals: make([]SignalResult, len(m.schema.signals)), DriftedSignals: []string{},
	}
	for i := range m.schema.signals {
		sg := &m.schema.signals[i]
		rep.Signals[i] = SignalResult{Name: sg.Name, Source: sg.Source, Field: sg.Field, Kind: sg.Kind, Status: StatusCapturing}
		rep.Signals[i].Method, rep.Signals[i].Threshold, rep.Signals[i].N = sg.Method, sg.Threshold, w.N(i)
	}
	return rep
}

// Monitor state binary layout, version 1:
//
//	"EDMN" | ver u8 | fingerprint u64 | capturing u8 | model len u16, version
//	| has reference u8 [len u32, reference] | capture u32 × (len u32, window)
//	| policy len u32, policy state
const monitorMagic = "EDMN"

// MarshalBinary encodes the monitor's state.
func (m *Monitor) MarshalBinary() ([]byte, error) {
	var e encoder
	e.b = append(e.b, monitorMagic...)
	e.u8(stateV1)
	e.u64(m.schema.fp)
	if m.capturing {
		e.u8(1)
	} else {
		e.u8(0)
	}
	if err := e.str16(m.captureModel); err != nil {
		return nil, err
	}
	if m.ref != nil {
		b, err := m.ref.MarshalBinary()
		if err != nil {
			return nil, err
		}
		e.u8(1)
		e.blob(b)
	} else {
		e.u8(0)
	}
	e.u32(uint32(len(m.capture)))
	for _, w := range m.capture {
		b, err := w.MarshalBinary()
		if err != nil {
			return nil, err
		}
		e.blob(b)
	}
	b, err := m.policy.MarshalBinary()
	if err != nil {
		return nil, err
	}
	e.blob(b)
	return e.b, nil
}

// RestoreMonitor decodes state written by MarshalBinary under s.
func RestoreMonitor(s *Schema, data []byte, metrics *Metrics) (*Monitor, error) {
	m, err := restoreMonitor(s, data, metrics)
	if err != nil {
		return nil, fmt.Errorf("drift: restore monitor: %w", err)
	}
	return m, nil
}

func restoreMonitor(s *Schema, data []byte, metrics *Metrics) (*Monitor, error) {
	d := &decoder{b: data}
	if mg := d.take(4); d.err != nil || string(mg) != monitorMagic {
		return nil, corrupt("bad magic")
	}
	if v := d.u8(); v != stateV1 {
		return nil, corrupt("unsupported version %d", v)
	}
	if fp := d.u64(); d.err == nil && fp != s.fp {
		return nil, ErrSchemaMismatch
	}
	m := NewMonitor(s, metrics)
	capturing := d.u8()
	m.captureModel = d.str16()
	hasRef := d.u8()
	if d.err != nil {
		return nil, d.err
	}
	if capturing > 1 || hasRef > 1 || (capturing == 0 && hasRef == 0) {
		return nil, corrupt("monitor flags invalid")
	}
	m.capturing = capturing == 1
	if hasRef == 1 {
		b := d.blob()
		if d.err != nil {
			return nil, d.err
		}
		r, err := decodeReference(s, &decoder{b: b})
		if err != nil {
			return nil, err
		}
		m.ref = r
	}
	n := int(d.u32())
	if d.err != nil {
		return nil, d.err
	}
	if n >= s.cfg.ReferenceWindows || n > len(d.b)/4 || (!m.capturing && n > 0) {
		return nil, corrupt("%d capture windows", n)
	}
	for range n {
		b := d.blob()
		if d.err != nil {
			return nil, d.err
		}
		wd := &decoder{b: b}
		w, err := decodeWindow(s, wd)
		if err == nil && len(wd.b) != 0 {
			err = corrupt("trailing bytes in capture window")
		}
		if err != nil {
			return nil, err
		}
		if !w.closed {
			return nil, corrupt("capture window not closed")
		}
		m.capture = append(m.capture, w)
	}
	pb := d.blob()
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, corrupt("%d trailing bytes", len(d.b))
	}
	p, err := restorePolicy(s.cfg.Trigger, pb)
	if err != nil {
		return nil, err
	}
	m.policy = p
	return m, nil
}
