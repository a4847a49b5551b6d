package drift

import (
	"math"
	"slices"
	"time"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/stream/task"
)

// Partition observes the records of one partition (of eddy.events and the
// co-partitioned eddy.recs, both keyed by user_id) and cuts them into
// windows. It is the drift role's per-partition state; everything it holds
// is bounded (see WindowConfig) and encodable (MarshalBinary,
// RestorePartition), so a restarted task continues where it stopped.
//
// Event-time mode: a record at time t belongs to window floor(t/Size). The
// partition's watermark is the largest record time seen; a window closes
// once the watermark passes its end by Lateness, and a record for a closed
// window is dropped and counted in Late. Count mode (Window.Events > 0):
// a window closes after that many events, whatever their times.
//
// The outcome join keeps each served list for Attribution after it was
// served (bounded by MaxRequests; the oldest is closed early when full):
// a click on one of its items with its request_id marks it clicked and
// observes the item's served score (clicked_score); when it expires its
// CTR observation (clicked or not) is made. An engagement (click, watch,
// like, purchase) is "unrecommended" unless its item is in the list its
// request_id names or in the user's latest list still held.
//
// A Partition is not safe for concurrent use.
type Partition struct {
	schema *Schema

	open          []*Window // ascending Index
	ready         []*Window // closed, not yet taken
	watermark     int64     // Unix ms; valid when hasWM
	hasWM         bool
	closedThrough int64 // every window with Index ≤ closedThrough is closed
	nextSeq       int64 // count mode: index of the next window
	curRecords    int64 // count mode: records in the open window

	// Late counts records dropped because their window had closed.
	Late int64
	// JoinEvicted counts served lists closed before their attribution
	// time because MaxRequests lists were held.
	JoinEvicted int64

	reqs     map[string]int32 // request id → entries index
	entries  []joinEntry
	free     []int32
	fifo     []fifoRef // serve order; stale refs are skipped
	fifoHead int
	lastList map[string]int32 // user → entries index of their latest held list
	seq      uint64

	sample task.KeySample
}

type joinEntry struct {
	id, user string
	expiry   int64 // Unix ms
	items    []string
	scores   []float64
	clicked  bool
	seq      uint64 // 0: free slot
}

type fifoRef struct {
	idx int32
	seq uint64
}

// NewPartition returns an empty partition processor for s.
func NewPartition(s *Schema) *Partition {
	return &Partition{schema: s, closedThrough: math.MinInt64, sample: task.NewKeySample(s.cfg.Window.Sample)}
}

func (p *Partition) countMode() bool { return p.schema.cfg.Window.Events > 0 }

func (p *Partition) sizeMs() int64 { return time.Duration(p.schema.cfg.Window.Size).Milliseconds() }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Watermark returns the largest record time seen (zero before any).
func (p *Partition) Watermark() time.Time {
	if !p.hasWM {
		return time.Time{}
	}
	return time.UnixMilli(p.watermark).UTC()
}

// ClosedThrough returns the index through which every window of this
// partition is closed (math.MinInt64 before any): a Merger uses it to
// know that a partition with no records in a window has nothing more for
// it.
func (p *Partition) ClosedThrough() int64 { return p.closedThrough }

// TakeClosed appends the windows closed since the last call to dst, in
// Index order, and forgets them.
func (p *Partition) TakeClosed(dst []*Window) []*Window {
	dst = append(dst, p.ready...)
	clear(p.ready)
	p.ready = p.ready[:0]
	return dst
}

// Advance moves the watermark to t without a record, as an idle partition's
// task does on a wall-clock tick, closing the windows (and expiring the
// served lists) it passes. It never moves the watermark backwards.
func (p *Partition) Advance(t time.Time) {
	p.advance(t.UnixMilli())
}

// Flush closes every open window, as at the end of a finite stream.
// Served lists still in the join stay there.
func (p *Partition) Flush() {
	for _, w := range p.open {
		p.closeWindow(w)
		p.closedThrough = max(p.closedThrough, w.Index)
	}
	p.open = p.open[:0]
	if p.countMode() {
		p.curRecords = 0
	}
}

func (p *Partition) advance(ms int64) {
	if p.hasWM && ms <= p.watermark {
		return
	}
	p.watermark, p.hasWM = ms, true
	if p.schema.needsJoin {
		p.expire(ms)
	}
	if p.countMode() {
		return
	}
	size := p.sizeMs()
	through := floorDiv(ms-time.Duration(p.schema.cfg.Window.Lateness).Milliseconds(), size) - 1
	if through <= p.closedThrough {
		return
	}
	n := 0
	for _, w := range p.open {
		if w.Index <= through {
			p.closeWindow(w)
			n++
		}
	}
	p.open = append(p.open[:0], p.open[n:]...)
	p.closedThrough = through
}

func (p *Partition) closeWindow(w *Window) {
	w.close()
	p.ready = append(p.ready, w)
	if p.countMode() {
		p.closedThrough = max(p.closedThrough, w.Index)
	}
}

// route returns the open window for a record at ms (opening it), or nil
// when that window has closed.
func (p *Partition) route(ms int64) *Window {
	if p.countMode() {
		if len(p.open) == 0 {
			w := newWindow(p.schema, p.nextSeq)
			w.countMd = true
			p.nextSeq++
			p.open = append(p.open, w)
		}
		return p.open[0]
	}
	idx := floorDiv(ms, p.sizeMs())
	if idx <= p.closedThrough {
		return nil
	}
	i, found := slices.BinarySearchFunc(p.open, idx, func(w *Window, idx int64) int {
		switch {
		case w.Index < idx:
			return -1
		case w.Index > idx:
			return 1
		}
		return 0
	})
	if found {
		return p.open[i]
	}
	w := newWindow(p.schema, idx)
	w.Start = time.UnixMilli(idx * p.sizeMs()).UTC()
	w.End = time.UnixMilli((idx + 1) * p.sizeMs()).UTC()
	p.open = slices.Insert(p.open, i, w)
	return w
}

// counted ends an event in count mode, closing the window when full.
func (p *Partition) counted() {
	if !p.countMode() {
		return
	}
	p.curRecords++
	if p.curRecords >= p.schema.cfg.Window.Events {
		p.Flush()
	}
}

var binaryKeys = [2]string{"0", "1"}

func boolKey(b bool) string {
	if b {
		return binaryKeys[1]
	}
	return binaryKeys[0]
}

// sampled reports whether a user is in the observed sample: FNV-1a of the
// id against the sample share (inline, so it costs no allocation).
func (p *Partition) sampled(user string) bool { return p.sample.KeepsString(user) }

// ObserveEvent adds one event of eddy.events.
func (p *Partition) ObserveEvent(e *event.Event) {
	ms := e.Time.UnixMilli()
	p.advance(ms)
	if !p.sampled(e.UserID) {
		return
	}
	w := p.route(ms)
	if w == nil {
		p.Late++
		return
	}
	w.Events++
	w.noteTS(ms)
	s := p.schema
	for _, i := range s.perEvent {
		sg := &s.signals[i]
		switch sg.field {
		case fType:
			w.cat(i, e.Type.String())
		case fWatchRatio:
			if r := e.WatchRatio(); r >= 0 {
				w.num(i, r)
			}
		case fDuration:
			if e.HasDuration {
				w.num(i, e.Duration)
			}
		case fRating:
			if e.Type == event.Rating && e.HasValue {
				w.num(i, e.Value)
			}
		case fContext:
			w.cat(i, e.Context[sg.key])
		case fConsumedRank:
			if consumed(e.Type) {
				w.cat(i, e.ItemID)
			}
		}
	}
	if s.needsUsers {
		w.noteUser(e.UserID, ms)
	}
	if s.needsJoin {
		p.joinEvent(w, e)
	}
	p.counted()
}

// consumed reports whether an event type is a consumption of the item.
func consumed(t event.Type) bool {
	switch t {
	case event.Click, event.Watch, event.Like, event.Purchase, event.Rating:
		return true
	}
	return false
}

// engagement reports whether an event type counts for the negative metric.
func engagement(t event.Type) bool {
	switch t {
	case event.Click, event.Watch, event.Like, event.Purchase:
		return true
	}
	return false
}

func (p *Partition) joinEvent(w *Window, e *event.Event) {
	if !engagement(e.Type) {
		return
	}
	s := p.schema
	var hit *joinEntry
	pos := -1
	if e.RequestID != "" {
		if j, ok := p.reqs[e.RequestID]; ok {
			hit = &p.entries[j]
			pos = slices.Index(hit.items, e.ItemID)
		}
	}
	if e.Type == event.Click && pos >= 0 {
		hit.clicked = true
		for _, i := range s.clicked {
			w.num(i, hit.scores[pos])
		}
	}
	recommended := pos >= 0
	if !recommended {
		if j, ok := p.lastList[e.UserID]; ok {
			recommended = slices.Contains(p.entries[j].items, e.ItemID)
		}
	}
	for _, i := range s.unrecommend {
		w.cat(i, boolKey(!recommended))
	}
}

// ObserveServedList adds one served list of eddy.recs.
func (p *Partition) ObserveServedList(l *ServedList) {
	ms := l.Time.UnixMilli()
	p.advance(ms)
	if !p.sampled(l.UserID) {
		return
	}
	s := p.schema
	if s.needsJoin {
		p.hold(l, ms)
	}
	w := p.route(ms)
	if w == nil {
		p.Late++
		return
	}
	w.Lists++
	w.noteTS(ms)
	for _, i := range s.perList {
		switch s.signals[i].field {
		case fFallback:
			w.cat(i, boolKey(l.Fallback))
		case fListSize:
			w.num(i, float64(len(l.Items)))
		case fVariant:
			w.cat(i, l.Variant)
		}
	}
	if len(s.perItem) > 0 || len(s.perFeature) > 0 {
		for k := range l.Items {
			it := &l.Items[k]
			for _, i := range s.perItem {
				switch s.signals[i].field {
				case fScore:
					w.num(i, it.Score)
				case fServedRank:
					w.cat(i, it.ItemID)
				}
			}
			// Both sorted by name: one walk instead of a lookup per signal.
			fs, j := it.Features, 0
			for _, i := range s.perFeature {
				key := s.signals[i].key
				for j < len(fs) && fs[j].Name < key {
					j++
				}
				if j == len(fs) {
					break
				}
				if fs[j].Name == key {
					w.num(i, fs[j].Value)
				}
			}
		}
	}
}

// hold registers a served list in the join. A repeated request id (a
// redelivered record) is ignored.
func (p *Partition) hold(l *ServedList, ms int64) {
	if p.reqs == nil {
		p.reqs = make(map[string]int32)
		p.lastList = make(map[string]int32)
	}
	if _, dup := p.reqs[l.RequestID]; dup {
		return
	}
	for len(p.reqs) >= p.schema.cfg.Window.MaxRequests && p.expireOldest() {
		p.JoinEvicted++
	}
	var j int32
	if n := len(p.free); n > 0 {
		j = p.free[n-1]
		p.free = p.free[:n-1]
	} else {
		p.entries = append(p.entries, joinEntry{})
		j = int32(len(p.entries) - 1)
	}
	p.seq++
	e := &p.entries[j]
	e.id, e.user, e.clicked, e.seq = l.RequestID, l.UserID, false, p.seq
	e.expiry = ms + time.Duration(p.schema.cfg.Window.Attribution).Milliseconds()
	e.items, e.scores = e.items[:0], e.scores[:0]
	for k := range l.Items {
		e.items = append(e.items, l.Items[k].ItemID)
		e.scores = append(e.scores, l.Items[k].Score)
	}
	p.reqs[e.id] = j
	p.lastList[e.user] = j
	p.fifo = append(p.fifo, fifoRef{idx: j, seq: e.seq})
}

// expire closes every held list whose attribution time has passed ms.
// Lists arrive in (nearly) serve order and share one attribution time, so
// the FIFO front is (nearly) the earliest expiry; a list served out of
// order waits at most until the lists ahead of it expire.
func (p *Partition) expire(ms int64) {
	for p.fifoHead < len(p.fifo) {
		ref := p.fifo[p.fifoHead]
		e := &p.entries[ref.idx]
		if e.seq == ref.seq && e.expiry > ms {
			break
		}
		p.expireOldest()
	}
}

// expireOldest closes the list at the FIFO front, skipping stale refs. It
// reports whether one was closed.
func (p *Partition) expireOldest() bool {
	for p.fifoHead < len(p.fifo) {
		ref := p.fifo[p.fifoHead]
		p.fifo[p.fifoHead] = fifoRef{}
		p.fifoHead++
		if p.fifoHead > 1024 && p.fifoHead*2 > len(p.fifo) {
			p.fifo = append(p.fifo[:0], p.fifo[p.fifoHead:]...)
			p.fifoHead = 0
		}
		e := &p.entries[ref.idx]
		if e.seq != ref.seq {
			continue
		}
		p.closeList(ref.idx)
		return true
	}
	return false
}

func (p *Partition) closeList(j int32) {
	e := &p.entries[j]
	if len(p.schema.ctr) > 0 {
		ts := e.expiry
		if p.hasWM && ts > p.watermark {
			ts = p.watermark // evicted early: observe now
		}
		w := p.route(ts)
		if w == nil {
			// Its window has closed (the watermark jumped): the list's
			// outcome still counts, in the oldest window open now.
			w = p.route(p.watermark)
		}
		if w != nil {
			for _, i := range p.schema.ctr {
				w.cat(i, boolKey(e.clicked))
			}
		}
	}
	delete(p.reqs, e.id)
	if k, ok := p.lastList[e.user]; ok && k == j {
		delete(p.lastList, e.user)
	}
	e.seq = 0
	e.id, e.user = "", ""
	clear(e.items)
	p.free = append(p.free, j)
}

// HeldLists returns how many served lists the join holds.
func (p *Partition) HeldLists() int { return len(p.reqs) }
