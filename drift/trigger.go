package drift

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// RetrainRequestSchemaVersion is the version of the RetrainRequest JSON.
const RetrainRequestSchemaVersion = 1

// RetrainRequest is the record the trigger policy sends to eddy.control.
// DataFrom–DataTo spans the windows whose drift caused it (the start of
// the earliest window of the triggering streaks to the end of the latest);
// ReferenceFrom–ReferenceTo is the reference they were judged against.
type RetrainRequest struct {
	Schema        int       `json:"schema"`
	Kind          string    `json:"kind"` // "retrain"
	ID            string    `json:"id"`
	Time          time.Time `json:"ts"`
	Reason        string    `json:"reason"`
	Signals       []string  `json:"signals"`
	ReportIDs     []string  `json:"report_ids"`
	DataFrom      time.Time `json:"data_from"`
	DataTo        time.Time `json:"data_to"`
	ReferenceID   string    `json:"reference_id"`
	ModelVersion  string    `json:"model_version,omitempty"`
	ReferenceFrom time.Time `json:"reference_from"`
	ReferenceTo   time.Time `json:"reference_to"`
}

// Action is what the policy decided for a report.
type Action string

// The actions. Every report gets exactly one.
const (
	ActionNone     Action = "none"      // no signal has drifted K windows in a row
	ActionRequest  Action = "request"   // a RetrainRequest is emitted
	ActionLatched  Action = "latched"   // this drift episode already asked (see TriggerConfig.Repeat)
	ActionCooldown Action = "cooldown"  // suppressed: within Cooldown of the last request
	ActionDailyMax Action = "daily_max" // suppressed: DailyMax requests in the last 24 h
)

// Actions lists every action, for metrics.
var Actions = []Action{ActionNone, ActionRequest, ActionLatched, ActionCooldown, ActionDailyMax}

// Decision is the policy's verdict on one report; log it and count it.
type Decision struct {
	Time     time.Time
	ReportID string
	Action   Action
	// Signals are those at or beyond K consecutive drifted windows.
	Signals []string
	Reason  string
	Request *RetrainRequest // set when Action is ActionRequest
}

// Policy is the retraining trigger: a signal drifted in Consecutive judged
// windows in a row asks for retraining, unless a request was made within
// Cooldown, DailyMax requests were made in the last 24 h, or this drift
// episode has already asked. All times are event times (the end of each
// report's window), so decisions are a pure function of the reports and
// replay identically after a restart (MarshalBinary / RestorePolicy).
//
// An episode starts with a request and ends when every signal has been
// judged clean for Consecutive windows in a row, or when Rebase installs
// a new reference. Windows where a signal could not be judged (too few
// samples, no reference data) neither extend nor break its streak.
type Policy struct {
	cfg TriggerConfig

	streak      map[string]*streak
	latched     bool
	clean       int   // consecutive windows with no drifted signal while latched
	lastRequest int64 // Unix ms; valid when requests > 0
	episodeAsk  int64 // Unix ms of the latest request of this episode
	recent      []int64
	requests    int64
}

type streak struct {
	n       int
	from    int64       // start of the streak's first window, Unix ms
	reports []reportRef // the last Consecutive reports
}

type reportRef struct {
	id  string
	end int64 // window end, Unix ms
}

// NewPolicy returns a policy with cfg (validated by Config.Validate).
func NewPolicy(cfg TriggerConfig) *Policy {
	return &Policy{cfg: cfg, streak: map[string]*streak{}}
}

// Requests returns how many requests the policy has emitted.
func (p *Policy) Requests() int64 { return p.requests }

// Latched reports whether a drift episode has asked and not yet ended.
func (p *Policy) Latched() bool { return p.latched }

// Rebase ends the current episode and forgets every streak: a new
// reference (a promoted model) makes earlier verdicts moot. Cooldown and
// the daily count still apply.
func (p *Policy) Rebase() {
	p.latched, p.clean = false, 0
	clear(p.streak)
}

// Observe takes the next report (in window order) and decides.
func (p *Policy) Observe(r *Report) Decision {
	k := p.cfg.Consecutive
	now := r.WindowEnd.UnixMilli()
	dec := Decision{Time: r.WindowEnd, ReportID: r.ID, Action: ActionNone}
	anyDrift := false
	for i := range r.Signals {
		s := &r.Signals[i]
		if s.Status != StatusOK {
			continue
		}
		st := p.streak[s.Name]
		if !s.Drifted {
			delete(p.streak, s.Name)
			continue
		}
		anyDrift = true
		if st == nil {
			st = &streak{from: r.WindowStart.UnixMilli()}
			p.streak[s.Name] = st
		}
		st.n++
		st.reports = append(st.reports, reportRef{r.ID, now})
		if len(st.reports) > k {
			st.reports = slices.Delete(st.reports, 0, len(st.reports)-k)
		}
		if st.n >= k {
			dec.Signals = append(dec.Signals, s.Name)
		}
	}
	slices.Sort(dec.Signals)
	if p.latched {
		if anyDrift {
			p.clean = 0
		} else if p.clean++; p.clean >= k {
			p.latched, p.clean = false, 0
		}
	}
	if len(dec.Signals) == 0 {
		return dec
	}
	day := (24 * time.Hour).Milliseconds()
	p.recent = slices.DeleteFunc(p.recent, func(t int64) bool { return t <= now-day })
	switch {
	case p.latched && (p.cfg.Repeat == 0 || now-p.episodeAsk < time.Duration(p.cfg.Repeat).Milliseconds()):
		dec.Action = ActionLatched
		dec.Reason = fmt.Sprintf("drift episode already asked for retraining at %s", time.UnixMilli(p.episodeAsk).UTC().Format(time.RFC3339))
	case p.requests > 0 && now-p.lastRequest < time.Duration(p.cfg.Cooldown).Milliseconds():
		dec.Action = ActionCooldown
		dec.Reason = fmt.Sprintf("cooldown: last request at %s, cooldown %s", time.UnixMilli(p.lastRequest).UTC().Format(time.RFC3339), time.Duration(p.cfg.Cooldown))
	case len(p.recent) >= p.cfg.DailyMax:
		dec.Action = ActionDailyMax
		dec.Reason = fmt.Sprintf("daily maximum: %d requests in the last 24h", len(p.recent))
	default:
		dec.Action = ActionRequest
		dec.Request = p.request(r, dec.Signals)
		dec.Reason = dec.Request.Reason
		p.latched, p.clean = true, 0
		p.lastRequest, p.episodeAsk = now, now
		p.recent = append(p.recent, now)
		p.requests++
	}
	return dec
}

func (p *Policy) request(r *Report, signals []string) *RetrainRequest {
	var parts []string
	var refs []reportRef
	from := int64(math.MaxInt64)
	for _, name := range signals {
		st := p.streak[name]
		from = min(from, st.from)
		refs = append(refs, st.reports...)
		for _, s := range r.Signals {
			if s.Name == name {
				parts = append(parts, fmt.Sprintf("%s %s %.4g vs threshold %.4g", name, s.Method, s.Score, s.Threshold))
			}
		}
	}
	slices.SortFunc(refs, func(a, b reportRef) int { return cmp.Or(cmp.Compare(a.end, b.end), strings.Compare(a.id, b.id)) })
	refs = slices.Compact(refs)
	ids := make([]string, len(refs))
	for k, rf := range refs {
		ids[k] = rf.id
	}
	return &RetrainRequest{
		Schema:      RetrainRequestSchemaVersion,
		Kind:        "retrain",
		ID:          fmt.Sprintf("retrain-%d", r.WindowEnd.UnixMilli()),
		Time:        r.WindowEnd,
		Reason:      fmt.Sprintf("drift for %d consecutive windows: %s", p.cfg.Consecutive, strings.Join(parts, "; ")),
		Signals:     signals,
		ReportIDs:   ids,
		DataFrom:    time.UnixMilli(from).UTC(),
		DataTo:      r.WindowEnd,
		ReferenceID: r.ReferenceID, ModelVersion: r.ModelVersion,
	}
}

// Policy state binary layout, version 1:
//
//	"EDTP" | ver u8 | latched u8 | clean u32 | last request ms i64 | episode ask ms i64
//	| requests u64 | recent u16 × ms i64 | streaks u16 × (name len u16, name,
//	  n u32, from ms i64, reports u16 × (len u16, id, end ms i64)), names ascending
const policyMagic = "EDTP"

// MarshalBinary encodes the policy's state (not its configuration).
func (p *Policy) MarshalBinary() ([]byte, error) {
	var e encoder
	e.b = append(e.b, policyMagic...)
	e.u8(stateV1)
	if p.latched {
		e.u8(1)
	} else {
		e.u8(0)
	}
	e.u32(uint32(p.clean))
	e.i64(p.lastRequest)
	e.i64(p.episodeAsk)
	e.u64(uint64(p.requests))
	e.u16(uint16(len(p.recent)))
	for _, t := range p.recent {
		e.i64(t)
	}
	names := make([]string, 0, len(p.streak))
	for n := range p.streak {
		names = append(names, n)
	}
	slices.Sort(names)
	e.u16(uint16(len(names)))
	for _, n := range names {
		st := p.streak[n]
		if err := e.str16(n); err != nil {
			return nil, err
		}
		e.u32(uint32(st.n))
		e.i64(st.from)
		e.u16(uint16(len(st.reports)))
		for _, rf := range st.reports {
			if err := e.str16(rf.id); err != nil {
				return nil, err
			}
			e.i64(rf.end)
		}
	}
	return e.b, nil
}

// RestorePolicy decodes state written by MarshalBinary into a policy with
// configuration cfg.
func RestorePolicy(cfg TriggerConfig, data []byte) (*Policy, error) {
	p, err := restorePolicy(cfg, data)
	if err != nil {
		return nil, fmt.Errorf("drift: restore policy: %w", err)
	}
	return p, nil
}

func restorePolicy(cfg TriggerConfig, data []byte) (*Policy, error) {
	d := &decoder{b: data}
	if m := d.take(4); d.err != nil || string(m) != policyMagic {
		return nil, corrupt("bad magic")
	}
	if v := d.u8(); v != stateV1 {
		return nil, corrupt("unsupported version %d", v)
	}
	p := NewPolicy(cfg)
	latched := d.u8()
	clean := d.u32()
	p.lastRequest, p.episodeAsk = d.i64(), d.i64()
	reqs := d.u64()
	nrecent := int(d.u16())
	if d.err != nil {
		return nil, d.err
	}
	if latched > 1 || clean > math.MaxInt32 || reqs > math.MaxInt64 || nrecent > 1000 || uint64(nrecent) > reqs {
		return nil, corrupt("policy header out of range")
	}
	p.latched, p.clean, p.requests = latched == 1, int(clean), int64(reqs)
	for range nrecent {
		p.recent = append(p.recent, d.i64())
	}
	nstreak := int(d.u16())
	if d.err != nil {
		return nil, d.err
	}
	if nstreak > MaxSignals {
		return nil, corrupt("%d streaks", nstreak)
	}
	prev := ""
	for i := range nstreak {
		name := d.str16()
		n := d.u32()
		from := d.i64()
		nrep := int(d.u16())
		if d.err != nil {
			return nil, d.err
		}
		if name == "" || (i > 0 && name <= prev) || n == 0 || n > math.MaxInt32 || nrep > 1000 || uint64(nrep) > uint64(n) {
			return nil, corrupt("streak %d invalid", i)
		}
		st := &streak{n: int(n), from: from}
		for range nrep {
			st.reports = append(st.reports, reportRef{d.str16(), d.i64()})
		}
		if d.err != nil {
			return nil, d.err
		}
		p.streak[name] = st
		prev = name
	}
	if len(d.b) != 0 {
		return nil, corrupt("%d trailing bytes", len(d.b))
	}
	return p, nil
}
