package drift

import (
	"errors"
	"fmt"
	"time"
)

// Window holds the summaries of every signal of a schema over one tumbling
// window of one partition, or, after Merge, of several partitions.
//
// Index identifies the window: in event-time mode it is floor(start/size)
// (so the same index means the same time span on every partition); in
// count mode it is the window's sequence number within its partition.
// Start and End are the span's bounds in event-time mode and the smallest
// and largest record times seen in count mode.
//
// Per-user signals (events_per_user, session_length) are aggregated per
// user while the window is open and observed when it closes; a closed
// window holds only mergeable summaries. Because eddy.events is keyed by
// user_id, all events of a user are in one partition, so per-partition user
// aggregates are complete and their summaries merge exactly.
type Window struct {
	Index int64
	Start time.Time
	End   time.Time

	// Counts of what went in. Partitions is 1 for a partition's window and
	// the number merged otherwise.
	Events       int64
	Lists        int64
	UsersDropped int64 // users beyond WindowConfig.MaxUsers, not in per-user signals
	Partitions   int

	schema   *Schema
	sketches []*Sketch    // per signal; nil until observed or for non-numeric signals
	tables   []*FreqTable // per signal; nil until observed or for numeric signals

	users   map[string]int32 // open windows only: user → index in agg
	agg     []userAgg
	closed  bool
	minTS   int64 // count mode: record-time bounds, Unix ms
	maxTS   int64
	hasTS   bool
	countMd bool
}

type userAgg struct {
	n           int64
	first, last int64 // Unix ms
}

func newWindow(s *Schema, index int64) *Window {
	return &Window{
		Index:      index,
		Partitions: 1,
		schema:     s,
		sketches:   make([]*Sketch, len(s.signals)),
		tables:     make([]*FreqTable, len(s.signals)),
	}
}

// Schema returns the schema the window belongs to.
func (w *Window) Schema() *Schema { return w.schema }

// Closed reports whether the window was closed (its per-user aggregates
// folded into summaries).
func (w *Window) Closed() bool { return w.closed }

// N returns how many observations signal i holds.
func (w *Window) N(i int) int64 {
	if sk := w.sketches[i]; sk != nil {
		return sk.Count()
	}
	if t := w.tables[i]; t != nil {
		return t.Total()
	}
	return 0
}

// Sketch returns signal i's sketch, or nil if it has none.
func (w *Window) Sketch(i int) *Sketch { return w.sketches[i] }

// Table returns signal i's table, or nil if it has none.
func (w *Window) Table(i int) *FreqTable { return w.tables[i] }

func (w *Window) num(i int, x float64) {
	sk := w.sketches[i]
	if sk == nil {
		sk, _ = NewSketch(w.schema.cfg.SketchK) // validated k
		w.sketches[i] = sk
	}
	sk.Insert(x)
}

func (w *Window) cat(i int, key string) {
	t := w.tables[i]
	if t == nil {
		t, _ = NewFreqTable(w.schema.cfg.TableCapacity) // validated capacity
		w.tables[i] = t
	}
	t.Insert(key)
}

func (w *Window) noteTS(ms int64) {
	if !w.hasTS || ms < w.minTS {
		w.minTS = ms
	}
	if !w.hasTS || ms > w.maxTS {
		w.maxTS = ms
	}
	w.hasTS = true
	if w.countMd {
		w.Start, w.End = time.UnixMilli(w.minTS).UTC(), time.UnixMilli(w.maxTS).UTC()
	}
}

// noteUser updates the per-user aggregate of an event at ms.
func (w *Window) noteUser(user string, ms int64) {
	if w.users == nil {
		w.users = make(map[string]int32)
	}
	if j, ok := w.users[user]; ok {
		a := &w.agg[j]
		a.n++
		a.first = min(a.first, ms)
		a.last = max(a.last, ms)
		return
	}
	if len(w.agg) >= w.schema.cfg.Window.MaxUsers {
		w.UsersDropped++
		return
	}
	w.users[user] = int32(len(w.agg))
	w.agg = append(w.agg, userAgg{n: 1, first: ms, last: ms})
}

// close folds per-user aggregates into their signals and drops them.
func (w *Window) close() {
	if w.closed {
		return
	}
	for _, a := range w.agg {
		for _, i := range w.schema.perUser {
			switch w.schema.signals[i].field {
			case fEventsPerUser:
				w.num(i, float64(a.n))
			case fSessionLength:
				w.num(i, float64(a.last-a.first)/1000)
			}
		}
	}
	w.users, w.agg = nil, nil
	w.closed = true
}

// Merge adds the summaries and counts of o (a closed window of the same
// schema) into w, which must be closed too. Index, Start and End of w are
// kept, widened to cover o's span. o is not modified.
func (w *Window) Merge(o *Window) error {
	if o.schema.fp != w.schema.fp {
		return fmt.Errorf("drift: merge window: %w", ErrSchemaMismatch)
	}
	if !w.closed || !o.closed {
		return errors.New("drift: merge window: both windows must be closed")
	}
	for i := range w.sketches {
		if o.sketches[i] != nil {
			if w.sketches[i] == nil {
				w.sketches[i] = o.sketches[i].Clone()
			} else if err := w.sketches[i].Merge(o.sketches[i]); err != nil {
				return fmt.Errorf("drift: merge window signal %s: %w", w.schema.signals[i].Name, err)
			}
		}
		if o.tables[i] != nil {
			if w.tables[i] == nil {
				w.tables[i] = o.tables[i].Clone()
			} else {
				w.tables[i].Merge(o.tables[i])
			}
		}
	}
	if !o.Start.IsZero() && (w.Start.IsZero() || o.Start.Before(w.Start)) {
		w.Start = o.Start
	}
	if o.End.After(w.End) {
		w.End = o.End
	}
	w.Events += o.Events
	w.Lists += o.Lists
	w.UsersDropped += o.UsersDropped
	w.Partitions += o.Partitions
	return nil
}

// Clone returns a deep copy of a closed window.
func (w *Window) Clone() *Window {
	c := *w
	c.sketches = make([]*Sketch, len(w.sketches))
	c.tables = make([]*FreqTable, len(w.tables))
	for i := range w.sketches {
		if w.sketches[i] != nil {
			c.sketches[i] = w.sketches[i].Clone()
		}
		if w.tables[i] != nil {
			c.tables[i] = w.tables[i].Clone()
		}
	}
	c.users, c.agg = nil, nil
	if w.users != nil {
		c.users = make(map[string]int32, len(w.users))
		for k, v := range w.users {
			c.users[k] = v
		}
		c.agg = append([]userAgg(nil), w.agg...)
	}
	return &c
}

// MergeWindows merges closed windows of one schema into a new window that
// takes the first one's Index.
func MergeWindows(ws ...*Window) (*Window, error) {
	if len(ws) == 0 {
		return nil, errors.New("drift: merge windows: none given")
	}
	out := newWindow(ws[0].schema, ws[0].Index)
	out.closed = true
	out.Partitions = 0
	for _, w := range ws {
		if err := out.Merge(w); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ErrSchemaMismatch means state or a window was made under a different
// signal configuration (another Fingerprint).
var ErrSchemaMismatch = errors.New("drift: signal schema mismatch")
