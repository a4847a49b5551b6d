package drift

import (
	"fmt"
	"math"
	"time"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/recs"
)

// aligner merges a partition's two input streams (events and served
// lists, copied by two independent forward stages) into event-time order
// before they reach the Partition. Without it, whichever forward stage runs
// ahead — the served-list one, with a twelfth of the records, finishes a
// backlog first — moves the partition's watermark past the other's records,
// which then arrive late and are dropped.
//
// A record is released when it is the oldest buffered one and the other
// source has passed its time (its newest record is at least as late) or has
// buffered records of its own. While the other source is silent, records
// wait, but at most maxSpan of event time (newest − oldest buffered) and
// maxRecords records: a source that stopped or never started (no scorer
// running) delays the other by maxSpan instead of stalling it. Release
// decisions depend only on the input order, so a replay of the same input
// releases the same records.
type aligner struct {
	maxSpan    int64 // ms
	maxRecords int
	q          [2][]alignedRec // by source index: 0 events, 1 recs
	head       [2]int
	newest     [2]int64 // largest time pushed per source, Unix ms
	seen       [2]bool
	// Forced counts records released while the other source was silent
	// for longer than maxSpan (or beyond maxRecords).
	Forced int64
	// recs decodes served lists, sharing feature names across them.
	recs recs.Decoder
	// Events are decoded into Events released by the Partition (free),
	// reusing their context maps, against recTime (decodeOpts).
	free       []*event.Event
	recTime    time.Time
	decodeOpts event.DecodeOptions
}

type alignedRec struct {
	ts  int64
	raw []byte
	// owned is false while raw aliases the caller's buffer (push).
	owned bool
	ev    *event.Event
	sl    *ServedList
}

func srcIndex(s Source) int {
	if s == SourceRecs {
		return 1
	}
	return 0
}

func newAligner(maxSpanMs int64, maxRecords int) *aligner {
	a := &aligner{maxSpan: maxSpanMs, maxRecords: maxRecords}
	a.decodeOpts.Now = func() time.Time { return a.recTime }
	return a
}

func (a *aligner) len(i int) int { return len(a.q[i]) - a.head[i] }

// push decodes and buffers one record; false when it is invalid. now is
// the clock of the events' future-skew rule: the record's timestamp, as
// the process role judges it, so that a replay judges alike; zero skips the
// rule, for records validated when first pushed. raw is not copied: the
// caller calls own before raw's buffer changes.
func (a *aligner) push(src Source, raw []byte, now time.Time) bool {
	r := alignedRec{raw: raw}
	switch src {
	case SourceEvents:
		e := a.newEvent()
		a.recTime = now
		if err := event.DecodeInto(e, raw, a.decodeOpts); err != nil {
			a.free = append(a.free, e)
			return false
		}
		r.ev, r.ts = e, e.Time.UnixMilli()
	case SourceRecs:
		l, err := decodeServedList(&a.recs, raw)
		if err != nil {
			return false
		}
		r.sl, r.ts = &l, l.Time.UnixMilli()
	default:
		return false
	}
	i := srcIndex(src)
	a.q[i] = append(a.q[i], r)
	if !a.seen[i] || r.ts > a.newest[i] {
		a.newest[i] = r.ts
	}
	a.seen[i] = true
	return true
}

// own copies the raw bytes of the records still buffered that alias a
// caller's buffer: only the newest of each source can (every push is
// followed by own), and most records are released before, so most are
// never copied.
func (a *aligner) own() {
	for i := range a.q {
		if a.len(i) == 0 {
			continue
		}
		if r := &a.q[i][len(a.q[i])-1]; !r.owned {
			r.raw, r.owned = append([]byte(nil), r.raw...), true
		}
	}
}

func (a *aligner) newEvent() *event.Event {
	if n := len(a.free); n > 0 {
		e := a.free[n-1]
		a.free = a.free[:n-1]
		return e
	}
	return new(event.Event)
}

// release takes back an Event that was released by next and observed:
// the Partition keeps none of its memory (strings are its own).
func (a *aligner) release(e *event.Event) {
	if len(a.free) < 64 {
		a.free = append(a.free, e)
	}
}

// next returns the next record to release, or false when the buffered
// records must wait.
func (a *aligner) next() (alignedRec, bool) {
	n0, n1 := a.len(0), a.len(1)
	var i int
	switch {
	case n0 > 0 && n1 > 0:
		i = 0
		if a.q[1][a.head[1]].ts < a.q[0][a.head[0]].ts {
			i = 1
		}
	case n0 == 0 && n1 == 0:
		return alignedRec{}, false
	default:
		i = 0
		if n1 > 0 {
			i = 1
		}
		o := 1 - i
		h := a.q[i][a.head[i]]
		if !a.seen[o] || a.newest[o] < h.ts {
			// The other source has not reached this time yet: wait for
			// it, within bounds.
			if a.newest[i]-h.ts < a.maxSpan && a.len(i) < a.maxRecords {
				return alignedRec{}, false
			}
			a.Forced++
		}
	}
	r := a.q[i][a.head[i]]
	a.q[i][a.head[i]] = alignedRec{}
	a.head[i]++
	if a.head[i] == len(a.q[i]) {
		a.q[i], a.head[i] = a.q[i][:0], 0
	} else if a.head[i] > 1024 && a.head[i]*2 > len(a.q[i]) {
		a.q[i] = append(a.q[i][:0], a.q[i][a.head[i]:]...)
		a.head[i] = 0
	}
	return r, true
}

// Aligner state layout (inside the partition snapshot):
//
//	forced u64 | per source ×2: (seen u8, newest ms i64,
//	  records u32 × (len u32, raw record))
func (a *aligner) encode(e *encoder) {
	e.u64(uint64(a.Forced))
	for i := range 2 {
		if a.seen[i] {
			e.u8(1)
		} else {
			e.u8(0)
		}
		e.i64(a.newest[i])
		e.u32(uint32(a.len(i)))
		for _, r := range a.q[i][a.head[i]:] {
			e.blob(r.raw)
		}
	}
}

func (a *aligner) decode(d *decoder) error {
	forced := d.u64()
	if d.err != nil {
		return d.err
	}
	if forced > math.MaxInt64 {
		return corrupt("aligner counter out of range")
	}
	a.Forced = int64(forced)
	for i := range 2 {
		seen := d.u8()
		newest := d.i64()
		n := int(d.u32())
		if d.err != nil {
			return d.err
		}
		if seen > 1 || n > len(d.b)/4 {
			return corrupt("aligner source %d: %d records", i, n)
		}
		src := SourceEvents
		if i == 1 {
			src = SourceRecs
		}
		for range n {
			raw := d.blob()
			if d.err != nil {
				return d.err
			}
			if !a.push(src, raw, time.Time{}) {
				return fmt.Errorf("aligner: buffered record does not decode")
			}
			a.own()
		}
		a.seen[i], a.newest[i] = seen == 1, newest
	}
	return nil
}
