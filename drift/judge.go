package drift

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/stream/task"
)

// Header values of the role's outputs (event.SchemaHeader).
const (
	ReportSchemaHeaderValue  = "drift-report/v1"
	ControlSchemaHeaderValue = "retrain-request/v1"
)

// MonitorProcessor is the drift role's last stage, a task.Processor over
// the single-partition windows topic: it merges the partitions' windows
// (Merger), judges each merged window (Monitor: reference capture,
// comparison, trigger Policy) and Emits one Report per window to the
// reports topic and every RetrainRequest to the control topic, inside the
// batch's Kafka transaction, so each appears exactly once. Merger, Monitor
// and its own bookkeeping are stored through the Batch after every batch
// (a few records per window, so the whole state is rewritten each time).
//
// Idle partitions: a merged window needs every partition to have closed
// it. A partition with no (sampled) records never closes anything, so in
// event-time mode a partition more than IdleWindows windows behind the
// most advanced one that has sent nothing for IdleTimeout (wall clock) is
// treated as closed through that point; windows it sends later for those
// indexes are dropped as late (Merger.Late). Both conditions are needed: in
// a catch-up, partitions progress at different speeds, and a lagging but
// busy partition must hold the merge rather than lose its windows. The
// wall-clock part makes this one decision depend on timing, not only on
// the input; it is logged and counted.
//
// Promotion: the partitions report the model version of the latest served
// list; when a version not seen before appears, the Monitor captures a new
// reference from the next window on (Monitor.Promote).
type MonitorProcessor struct {
	schema     *Schema
	partitions int32
	idle       int64
	idleAfter  time.Duration
	now        func() time.Time
	reports    string
	control    string
	alert      func([]byte)
	metrics    *Metrics
	counters   *roleCounters
	log        *slog.Logger

	loaded   bool
	merger   *Merger
	monitor  *Monitor
	through  map[int32]int64
	versions []string // model versions seen, newest last (bounded)
	// promote is a new version to capture a reference for from merged
	// window promoteAt on ("" when none is pending).
	promote   string
	promoteAt int64
	// lastSeen is when each partition last sent a record (wall clock,
	// not stored: a restart gives every partition a fresh grace).
	lastSeen map[int32]time.Time
}

const (
	keyMonitor    = "monitor"
	maxVersions   = 16
	monitorStateM = "EDRM"
)

func newMonitorProcessor(s *Schema, partitions int32, rc *RoleConfig, m *Metrics, c *roleCounters, log *slog.Logger) *MonitorProcessor {
	return &MonitorProcessor{
		schema: s, partitions: partitions, idle: int64(rc.IdleWindows), idleAfter: rc.IdleTimeout, now: time.Now,
		reports: rc.Topics.Reports, control: rc.Topics.Control,
		alert: rc.Alert, metrics: m, counters: c, log: log, lastSeen: map[int32]time.Time{},
	}
}

func (m *MonitorProcessor) fresh() {
	parts := make([]int32, m.partitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	m.merger = NewMerger(m.schema, parts)
	m.monitor = NewMonitor(m.schema, m.metrics)
	m.through = map[int32]int64{}
	m.versions = nil
}

// Process implements task.Processor.
func (m *MonitorProcessor) Process(_ context.Context, recs []*kgo.Record, b *task.Batch) error {
	if !m.loaded {
		if err := m.load(b); err != nil {
			return err
		}
		m.loaded = true
	}
	for _, r := range recs {
		wr, err := DecodeWindowRecord(r.Value)
		if err != nil {
			m.counters.invalid.WithLabelValues("windows").Inc()
			m.log.Warn("invalid window record skipped", "offset", r.Offset, "err", err)
			continue
		}
		if wr.Partition >= m.partitions {
			// The input topic grew: this monitor merges the partitions it
			// started with. A restart picks up the new count.
			m.counters.invalid.WithLabelValues("windows").Inc()
			m.log.Warn("window record from a partition beyond the input topic's count at start; restart the drift role to include it",
				"partition", wr.Partition, "partitions", m.partitions)
			continue
		}
		var ws []*Window
		if wr.Window != nil {
			w, err := DecodeWindow(m.schema, wr.Window)
			if err != nil {
				m.counters.invalid.WithLabelValues("windows").Inc()
				m.log.Warn("undecodable partition window skipped", "offset", r.Offset, "partition", wr.Partition, "err", err)
			} else {
				ws = append(ws, w)
			}
		}
		m.lastSeen[wr.Partition] = m.now()
		if wr.Window != nil && len(ws) == 1 {
			m.noteVersion(wr.ModelVersion, ws[0].Index)
		}
		late := m.merger.Late
		merged, err := m.merger.Add(wr.Partition, ws, wr.ClosedThrough)
		if err != nil {
			return err
		}
		m.counters.lateWindows.Add(float64(m.merger.Late - late))
		m.through[wr.Partition] = max(m.through[wr.Partition], wr.ClosedThrough)
		if err := m.judge(b, merged); err != nil {
			return err
		}
		if err := m.closeIdle(b); err != nil {
			return err
		}
	}
	return m.store(b)
}

// noteVersion schedules a new reference capture from window idx on when a
// model version never seen before is served there (the first version seen
// only names the baseline).
func (m *MonitorProcessor) noteVersion(v string, idx int64) {
	if v == "" || slices.Contains(m.versions, v) {
		return
	}
	first := len(m.versions) == 0
	m.versions = append(m.versions, v)
	if len(m.versions) > maxVersions {
		m.versions = slices.Delete(m.versions, 0, len(m.versions)-maxVersions)
	}
	if first {
		return
	}
	m.log.Info("new model version served: a new drift reference will be captured", "model_version", v, "from_window", idx)
	m.promote, m.promoteAt = v, idx
}

// closeIdle treats partitions more than idle windows behind the leader as
// closed through leader−idle (event-time windows only: count windows of
// different partitions are not aligned in time).
func (m *MonitorProcessor) closeIdle(b *task.Batch) error {
	if m.idle <= 0 || m.schema.cfg.Window.Events > 0 {
		return nil
	}
	lead := int64(math.MinInt64)
	for _, t := range m.through {
		lead = max(lead, t)
	}
	if lead == math.MinInt64 {
		return nil
	}
	cut := lead - m.idle
	now := m.now()
	for p := range m.partitions {
		t, ok := m.through[p]
		if ok && t >= cut {
			continue
		}
		seen, ok := m.lastSeen[p]
		if !ok {
			m.lastSeen[p] = now // grace starts now
			continue
		}
		if now.Sub(seen) < m.idleAfter {
			continue // lagging, not idle: a partition catching up sends windows
		}
		m.through[p] = cut
		m.counters.idleAdvances.Inc()
		m.log.Info("partition idle: treating its windows as closed", "partition", p, "closed_through", cut)
		merged, err := m.merger.Add(p, nil, cut)
		if err != nil {
			return err
		}
		if err := m.judge(b, merged); err != nil {
			return err
		}
	}
	return nil
}

func (m *MonitorProcessor) judge(b *task.Batch, merged []*Window) error {
	for _, w := range merged {
		if m.promote != "" && w.Index >= m.promoteAt {
			m.monitor.Promote(m.promote)
			m.promote = ""
		}
		st, err := m.monitor.Process(w)
		if err != nil {
			return fmt.Errorf("drift: judge window %d: %w", w.Index, err)
		}
		rep, err := json.Marshal(st.Report)
		if err != nil {
			return fmt.Errorf("drift: encode report %s: %w", st.Report.ID, err)
		}
		b.EmitRecord(&kgo.Record{Topic: m.reports, Key: []byte(st.Report.ID), Value: rep,
			Headers: []kgo.RecordHeader{{Key: event.SchemaHeader, Value: []byte(ReportSchemaHeaderValue)}}})
		d := st.Decision
		attrs := []any{"report_id", st.Report.ID, "window_index", w.Index, "window_end", w.End,
			"events", w.Events, "lists", w.Lists, "drifted", st.Report.DriftedSignals, "action", d.Action}
		switch {
		case st.Captured != nil:
			m.log.Info("drift reference captured", append(attrs, "reference_id", st.Captured.ID)...)
		case d.Action == ActionNone && !st.Report.Drifted:
			m.log.Debug("drift window judged", attrs...)
		default:
			m.log.Info("drift window judged", append(attrs, "signals", d.Signals, "reason", d.Reason)...)
		}
		if st.Report.Drifted && m.alert != nil {
			m.alert(rep)
		}
		if rq := d.Request; rq != nil {
			v, err := json.Marshal(rq)
			if err != nil {
				return fmt.Errorf("drift: encode retrain request: %w", err)
			}
			b.EmitRecord(&kgo.Record{Topic: m.control, Key: []byte(rq.ID), Value: v,
				Headers: []kgo.RecordHeader{{Key: event.SchemaHeader, Value: []byte(ControlSchemaHeaderValue)}}})
			m.log.Info("retrain requested", "request_id", rq.ID, "signals", rq.Signals, "reason", rq.Reason)
			if m.alert != nil {
				m.alert(v)
			}
		}
	}
	return nil
}

// Monitor-stage state layout, version 1:
//
//	"EDRM" | ver u8 | partitions u32 | through u32 × (partition i32, i64)
//	| versions u8 × (len u16, version) | promote len u16, version | promote-at i64
//	| merger len u32, state | monitor len u32, state
func (m *MonitorProcessor) store(b *task.Batch) error {
	var e encoder
	e.b = append(e.b, monitorStateM...)
	e.u8(stateV1)
	e.u32(uint32(m.partitions))
	parts := make([]int32, 0, len(m.through))
	for p := range m.through {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	e.u32(uint32(len(parts)))
	for _, p := range parts {
		e.u32(uint32(p))
		e.i64(m.through[p])
	}
	e.u8(uint8(len(m.versions)))
	for _, v := range m.versions {
		if err := e.str16(v); err != nil {
			return err
		}
	}
	if err := e.str16(m.promote); err != nil {
		return err
	}
	e.i64(m.promoteAt)
	mb, err := m.merger.MarshalBinary()
	if err != nil {
		return err
	}
	e.blob(mb)
	nb, err := m.monitor.MarshalBinary()
	if err != nil {
		return err
	}
	e.blob(nb)
	return putBlob(b, keyMonitor, e.b)
}

func (m *MonitorProcessor) load(b *task.Batch) error {
	m.fresh()
	v, found, err := getBlob(b, keyMonitor)
	if err != nil || !found {
		return err
	}
	err = m.decode(v)
	switch {
	case errors.Is(err, ErrSchemaMismatch):
		m.log.Warn("drift monitor state was made under another signal configuration: capturing a new reference")
		m.fresh()
		return nil
	case err != nil:
		return fmt.Errorf("drift: restore monitor stage: %w", err)
	}
	ref := ""
	if r := m.monitor.Reference(); r != nil {
		ref = r.ID
	}
	m.log.Info("drift monitor state restored", "reference_id", ref, "capturing", m.monitor.Capturing(),
		"pending_windows", m.merger.Pending(), "retrain_requests", m.monitor.Policy().Requests())
	return nil
}

func (m *MonitorProcessor) decode(v []byte) error {
	d := &decoder{b: v}
	if mg := d.take(4); d.err != nil || string(mg) != monitorStateM {
		return corrupt("bad magic")
	}
	if ver := d.u8(); d.err == nil && ver != stateV1 {
		return corrupt("unsupported version %d", ver)
	}
	parts := int32(d.u32())
	n := int(d.u32())
	if d.err != nil {
		return d.err
	}
	if n > len(d.b)/12 {
		return corrupt("%d partitions", n)
	}
	through := map[int32]int64{}
	for range n {
		p := int32(d.u32())
		through[p] = d.i64()
	}
	nv := int(d.u8())
	var versions []string
	for range nv {
		versions = append(versions, d.str16())
	}
	promote := d.str16()
	promoteAt := d.i64()
	mb := d.blob()
	nb := d.blob()
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return corrupt("%d trailing bytes", len(d.b))
	}
	if parts != m.partitions {
		// The input topic's partition count changed since the state was
		// written: keep the reference and policy, restart the merge.
		m.log.Warn("input partitions changed: restarting the merge of partition windows", "was", parts, "now", m.partitions)
		mon, err := RestoreMonitor(m.schema, nb, m.metrics)
		if err != nil {
			return err
		}
		m.monitor, m.versions, m.promote, m.promoteAt = mon, versions, promote, promoteAt
		return nil
	}
	mg, err := RestoreMerger(m.schema, mb)
	if err != nil {
		return err
	}
	mon, err := RestoreMonitor(m.schema, nb, m.metrics)
	if err != nil {
		return err
	}
	m.merger, m.monitor, m.through, m.versions = mg, mon, through, versions
	m.promote, m.promoteAt = promote, promoteAt
	return nil
}
