package ranker

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/modelrec"
	"github.com/eddyrec/eddy/stream/task"
)

// SourceHeader is the header the forward stages put on every record of the
// input topic: its value is SourceEvents or SourceRecs.
const SourceHeader = "eddy-ranker-source"

// Values of SourceHeader.
const (
	SourceEvents = "events"
	SourceRecs   = "recs"
)

// batch is the part of *task.Batch the processors use, so tests can drive
// them with an in-memory batch.
type batch interface {
	Get(key []byte) ([]byte, bool, error)
	Put(key, value []byte) error
	Delete(key []byte) error
	Emit(topic string, key, value []byte)
	EmitRecord(r *kgo.Record)
}

// farFuture disables the event contract's future-skew rule when the joiner
// decodes: events in Kafka were validated at ingest, and a rule that depends
// on the wall clock would make a replay decide differently.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// answer is what an engagement says about a served item.
type answer int8

const (
	answerNone      answer = iota // not an answer (impression, no signal)
	answerPositive                // label 1
	answerNegative                // label 0, explicit
	answerAmbiguous               // decides the item, teaches nothing
)

// answerOf classifies an event with the confidence's thresholds: the first
// decisive answer to a served item decides its label (see doc.go).
func answerOf(c *learner.Confidence, ev *event.Event) answer {
	switch ev.Type {
	case event.Click, event.Like, event.Purchase:
		return answerPositive
	case event.Dislike, event.Skip:
		return answerNegative
	case event.Watch:
		r := ev.WatchRatio()
		switch {
		case r < 0 || float32(r) >= c.WatchPositiveAt:
			return answerPositive
		case float32(r) < c.WatchNegativeBelow:
			return answerNegative
		}
		return answerAmbiguous
	case event.Rating:
		if !ev.HasValue {
			return answerNone
		}
		switch v := float32(ev.Value); {
		case v >= c.RatingPositiveAt:
			return answerPositive
		case v < c.RatingWeakAt:
			return answerNegative
		}
		return answerAmbiguous
	}
	return answerNone
}

// Joiner state: per user, key 'u' + user_id, the user's pending served
// lists and orphan engagements; the partition's meta under 0x00 'm'; the
// two deadline queues under 0x00 'q' (fifo).
var joinMetaKey = []byte{0, 'm'}

const userStateVersion = 1

type pendingItem struct {
	id    string
	pos   int
	done  bool
	feats []NamedValue // sorted by name
}

type pendingList struct {
	req   string
	ts    int64
	items []pendingItem
}

type orphan struct {
	req, item string
	ts        int64
	ans       answer
}

type userState struct {
	key     string
	lists   []pendingList // arrival order
	orphans []orphan      // arrival order
	dirty   bool
}

func (u *userState) list(req string) int {
	for i := range u.lists {
		if u.lists[i].req == req {
			return i
		}
	}
	return -1
}

func (u *userState) encode(e *enc) {
	e.b = e.b[:0]
	e.byte1(userStateVersion)
	e.u64(uint64(len(u.lists)))
	for i := range u.lists {
		l := &u.lists[i]
		e.str(l.req)
		e.i64(l.ts)
		e.u64(uint64(len(l.items)))
		for j := range l.items {
			it := &l.items[j]
			e.str(it.id)
			e.u64(uint64(it.pos))
			done := byte(0)
			if it.done {
				done = 1
			}
			e.byte1(done)
			e.u64(uint64(len(it.feats)))
			for _, f := range it.feats {
				e.str(f.Name)
				e.f64(f.Value)
			}
		}
	}
	e.u64(uint64(len(u.orphans)))
	for _, o := range u.orphans {
		e.str(o.req)
		e.str(o.item)
		e.i64(o.ts)
		e.byte1(byte(o.ans))
	}
}

func decodeUserState(key string, v []byte) (*userState, error) {
	d := dec{b: v}
	u := &userState{key: key}
	if d.byte1() != userStateVersion {
		d.fail("user state version")
	}
	n := d.count()
	u.lists = make([]pendingList, 0, n)
	for range n {
		l := pendingList{req: d.str(), ts: d.i64()}
		m := d.count()
		l.items = make([]pendingItem, 0, m)
		for range m {
			it := pendingItem{id: d.str(), pos: int(d.u64()), done: d.byte1() == 1}
			k := d.count()
			it.feats = make([]NamedValue, 0, k)
			for range k {
				it.feats = append(it.feats, NamedValue{Name: d.str(), Value: d.f64()})
			}
			l.items = append(l.items, it)
		}
		u.lists = append(u.lists, l)
	}
	n = d.count()
	u.orphans = make([]orphan, 0, n)
	for range n {
		u.orphans = append(u.orphans, orphan{req: d.str(), item: d.str(), ts: d.i64(), ans: answer(d.byte1())})
	}
	return u, d.done()
}

// joinMeta is a partition's clocks and counts.
type joinMeta struct {
	evWM, recsWM     int64 // newest event time seen per source, unix ms
	pending, orphans int   // lists and orphan engagements held
}

// joinProc is the joiner's processor for one partition of the input
// topic.
type joinProc struct {
	cfg    *Config
	m      *metrics
	log    *slog.Logger
	window int64
	dec    event.DecodeOptions
	recs   servedListDecoder

	loaded        bool
	meta          joinMeta
	lists, orphq  *fifo
	users         map[string]*userState
	ev            event.Event
	ex            Example
	e             enc
	out           []byte
	trig          *kgo.Record // the record being processed (its timestamp stamps the examples)
	reported      joinMeta    // what the gauges hold of this partition
	examplesTopic string
}

func newJoinProc(cfg *Config, m *metrics, log *slog.Logger) *joinProc {
	return &joinProc{
		cfg: cfg, m: m, log: log, window: cfg.LabelWindow.Milliseconds(),
		dec:   event.DecodeOptions{Now: func() time.Time { return farFuture }},
		lists: newFifo('l'), orphq: newFifo('o'), users: map[string]*userState{},
		examplesTopic: cfg.Topics.Examples,
	}
}

// Process implements task.Processor.
func (p *joinProc) Process(_ context.Context, recs []*kgo.Record, b *task.Batch) error {
	return p.process(recs, b)
}

// Close implements task.Closer: the partition's counts leave the gauges.
func (p *joinProc) Close() error {
	p.m.pendingLists.Sub(float64(p.reported.pending))
	p.m.orphans.Sub(float64(p.reported.orphans))
	p.reported = joinMeta{}
	return nil
}

func (p *joinProc) load(b batch) error {
	p.meta = joinMeta{evWM: math.MinInt64, recsWM: math.MinInt64}
	v, ok, err := b.Get(joinMetaKey)
	if err != nil {
		return err
	}
	if ok {
		d := dec{b: v}
		p.meta.evWM, p.meta.recsWM = d.i64(), d.i64()
		p.meta.pending, p.meta.orphans = int(d.u64()), int(d.u64())
		p.lists.decodePos(&d)
		p.orphq.decodePos(&d)
		if err := d.done(); err != nil {
			return err
		}
	}
	p.loaded = true
	return nil
}

func (p *joinProc) process(recs []*kgo.Record, b batch) error {
	if !p.loaded {
		if err := p.load(b); err != nil {
			return err
		}
	}
	for _, r := range recs {
		p.trig = r
		var err error
		switch source(r) {
		case SourceEvents:
			err = p.onEvent(b, r)
		case SourceRecs:
			err = p.onList(b, r)
		default:
			p.m.joinRecords.WithLabelValues("invalid").Inc()
		}
		if err != nil {
			return err
		}
	}
	p.trig = nil
	return p.flush(b)
}

func source(r *kgo.Record) string {
	for _, h := range r.Headers {
		if h.Key == SourceHeader {
			return string(h.Value)
		}
	}
	return ""
}

// user returns the state of user id, loading it once per batch.
func (p *joinProc) user(b batch, id string) (*userState, error) {
	if u, ok := p.users[id]; ok {
		return u, nil
	}
	key := "u" + id
	v, ok, err := b.Get([]byte(key))
	if err != nil {
		return nil, err
	}
	u := &userState{key: key}
	if ok {
		if u, err = decodeUserState(key, v); err != nil {
			return nil, err
		}
	}
	p.users[id] = u
	return u, nil
}

// listWM is the event time up to which served lists are decided: the
// newest event time of the forwarded events. Only the events' clock can
// say that no answer within a window is still to come; the lists' clock
// cannot (in a backlog the lists' forwarder may be far ahead of the
// events'), so a partition whose users send no events keeps its lists
// until one does, within the bounds.
func (p *joinProc) listWM() int64 { return p.meta.evWM }

func (p *joinProc) onEvent(b batch, r *kgo.Record) error {
	ev := &p.ev
	var err error
	if *ev, err = event.Decode(r.Value, p.dec); err != nil {
		p.m.joinRecords.WithLabelValues("invalid").Inc()
		return nil
	}
	ts := ev.Time.UnixMilli()
	if ts > p.meta.evWM {
		p.meta.evWM = ts
		if err := p.expire(b); err != nil {
			return err
		}
	}
	if ev.RequestID == "" {
		p.m.joinRecords.WithLabelValues("event_other").Inc()
		return nil
	}
	ans := answerOf(&p.cfg.Confidence, ev)
	if ans == answerNone {
		p.m.joinRecords.WithLabelValues("event_other").Inc()
		return nil
	}
	u, err := p.user(b, ev.UserID)
	if err != nil {
		return err
	}
	if i := u.list(ev.RequestID); i >= 0 {
		return p.resolve(b, u, i, ev.ItemID, ans, ts)
	}
	// An engagement before its served list (the two sources are copied
	// by separate stages), or for a list that is gone or was never logged.
	if p.meta.recsWM != math.MinInt64 && p.meta.recsWM-p.window > ts {
		p.m.joinRecords.WithLabelValues("engagement_unknown").Inc()
		return nil
	}
	for _, o := range u.orphans {
		if o.req == ev.RequestID && o.item == ev.ItemID {
			p.m.joinRecords.WithLabelValues("engagement_duplicate").Inc()
			return nil
		}
	}
	u.orphans = append(u.orphans, orphan{req: ev.RequestID, item: ev.ItemID, ts: ts, ans: ans})
	u.dirty = true
	p.meta.orphans++
	p.m.joinRecords.WithLabelValues("engagement_orphan").Inc()
	if err := p.orphq.push(b, qentry{user: ev.UserID, req: ev.RequestID, deadline: ts + p.window}); err != nil {
		return err
	}
	if len(u.orphans) > p.cfg.MaxOrphansPerUser {
		u.orphans = slices.Delete(u.orphans, 0, 1)
		p.meta.orphans--
		p.m.evicted.WithLabelValues("orphan").Inc()
	}
	for p.meta.orphans > p.cfg.MaxOrphans || p.orphq.n > 2*p.cfg.MaxOrphans {
		e, ok, err := p.orphq.peek(b)
		if err != nil || !ok {
			return err
		}
		p.orphq.pop()
		if err := p.dropOrphans(b, e.user, e.req, math.MaxInt64, "evicted"); err != nil {
			return err
		}
	}
	return nil
}

// resolve applies an answer of time ts to item of u's list i.
func (p *joinProc) resolve(b batch, u *userState, i int, item string, ans answer, ts int64) error {
	l := &u.lists[i]
	if ts > l.ts+p.window {
		p.m.joinRecords.WithLabelValues("engagement_late").Inc()
		return nil
	}
	j := slices.IndexFunc(l.items, func(it pendingItem) bool { return it.id == item })
	if j < 0 {
		p.m.joinRecords.WithLabelValues("engagement_unknown_item").Inc()
		return nil
	}
	it := &l.items[j]
	if it.done {
		p.m.joinRecords.WithLabelValues("engagement_duplicate").Inc()
		return nil
	}
	it.done, u.dirty = true, true
	switch ans {
	case answerPositive:
		p.m.joinRecords.WithLabelValues("engagement").Inc()
		return p.emit(b, l, it, 1, ReasonEngaged, ts)
	case answerNegative:
		p.m.joinRecords.WithLabelValues("engagement").Inc()
		return p.emit(b, l, it, 0, ReasonRejected, ts)
	}
	p.m.joinRecords.WithLabelValues("engagement_ambiguous").Inc()
	return nil
}

func (p *joinProc) emit(b batch, l *pendingList, it *pendingItem, label uint8, why Reason, at int64) error {
	x := &p.ex
	*x = Example{Label: label, Reason: why, Position: it.pos, ServedMs: l.ts, LabelMs: at, Features: it.feats}
	var err error
	p.out, err = AppendExample(p.out[:0], x)
	if err != nil {
		return err
	}
	rec := &kgo.Record{Topic: p.examplesTopic, Key: []byte(p.cfg.Name), Value: slices.Clone(p.out)}
	if p.trig != nil {
		rec.Timestamp = p.trig.Timestamp
	}
	b.EmitRecord(rec)
	if label == 1 {
		p.m.examples.WithLabelValues("positive").Inc()
	} else {
		p.m.examples.WithLabelValues("negative").Inc()
	}
	return nil
}

func (p *joinProc) onList(b batch, r *kgo.Record) error {
	l, err := decodeServedList(&p.recs, r.Value)
	if err != nil {
		p.m.joinRecords.WithLabelValues("invalid").Inc()
		return nil
	}
	if l.TsMillis > p.meta.recsWM {
		p.meta.recsWM = l.TsMillis
		if err := p.expire(b); err != nil {
			return err
		}
	}
	if l.Fallback || l.Policy == policyPopularity || len(l.Items) == 0 {
		// A fallback list, or an experiment's popularity arm, is ranked
		// by popularity, without the ranker's features: it says nothing
		// about the ranker (and its score is no retrieval score).
		p.m.joinRecords.WithLabelValues("list_skipped").Inc()
		return nil
	}
	u, err := p.user(b, l.UserID)
	if err != nil {
		return err
	}
	if u.list(l.RequestID) >= 0 {
		p.m.joinRecords.WithLabelValues("list_duplicate").Inc()
		return nil
	}
	pl := pendingList{req: l.RequestID, ts: l.TsMillis, items: make([]pendingItem, len(l.Items))}
	for i, it := range l.Items {
		pi := pendingItem{id: it.ItemID, pos: it.Position}
		if len(it.Features) == 0 {
			// A scorer without a ranker record logs no features; its
			// score is then the retrieval score. This is how the first
			// ranker is learnt (see doc.go).
			pi.feats = []NamedValue{{Name: modelrec.FeatureMFScore, Value: it.Score}}
		} else {
			// Sorted by name, as the decoder returns them.
			pi.feats = make([]NamedValue, len(it.Features))
			for k, f := range it.Features {
				pi.feats[k] = NamedValue{Name: f.Name, Value: f.Value}
			}
		}
		pl.items[i] = pi
	}
	u.lists = append(u.lists, pl)
	u.dirty = true
	p.meta.pending++
	p.m.joinRecords.WithLabelValues("list").Inc()
	if err := p.lists.push(b, qentry{user: l.UserID, req: l.RequestID, deadline: l.TsMillis + p.window}); err != nil {
		return err
	}
	// Engagements that arrived first.
	kept := u.orphans[:0]
	for _, o := range u.orphans {
		if o.req != l.RequestID {
			kept = append(kept, o)
			continue
		}
		p.meta.orphans--
		p.m.joinRecords.WithLabelValues("orphan_matched").Inc()
		if err := p.resolve(b, u, len(u.lists)-1, o.item, o.ans, o.ts); err != nil {
			return err
		}
	}
	u.orphans = kept
	if l.TsMillis+p.window < p.listWM() {
		// Already decided: the events have moved past its window.
		p.m.joinRecords.WithLabelValues("list_late").Inc()
		if err := p.expireList(b, u, len(u.lists)-1); err != nil {
			return err
		}
	}
	if len(u.lists) > p.cfg.MaxListsPerUser {
		u.lists = slices.Delete(u.lists, 0, 1)
		p.meta.pending--
		p.m.evicted.WithLabelValues("list").Inc()
	}
	for p.meta.pending > p.cfg.MaxPendingLists || p.lists.n > 2*p.cfg.MaxPendingLists {
		e, ok, err := p.lists.peek(b)
		if err != nil || !ok {
			return err
		}
		p.lists.pop()
		v, err := p.user(b, e.user)
		if err != nil {
			return err
		}
		if i := v.list(e.req); i >= 0 {
			v.lists = slices.Delete(v.lists, i, i+1)
			v.dirty = true
			p.meta.pending--
			p.m.evicted.WithLabelValues("list").Inc()
		}
	}
	return nil
}

// expireList turns the undecided items of u's list i into negatives and
// drops the list.
func (p *joinProc) expireList(b batch, u *userState, i int) error {
	l := &u.lists[i]
	for j := range l.items {
		if it := &l.items[j]; !it.done {
			it.done = true
			if err := p.emit(b, l, it, 0, ReasonExpired, l.ts+p.window); err != nil {
				return err
			}
		}
	}
	u.lists = slices.Delete(u.lists, i, i+1)
	u.dirty = true
	p.meta.pending--
	p.m.expired.Inc()
	return nil
}

// expire decides the lists and drops the orphans the clocks have passed.
func (p *joinProc) expire(b batch) error {
	wm := p.listWM()
	for {
		e, ok, err := p.lists.peek(b)
		if err != nil {
			return err
		}
		if !ok || e.deadline >= wm {
			break
		}
		p.lists.pop()
		u, err := p.user(b, e.user)
		if err != nil {
			return err
		}
		if i := u.list(e.req); i >= 0 && u.lists[i].ts+p.window < wm {
			if err := p.expireList(b, u, i); err != nil {
				return err
			}
		}
	}
	if p.meta.recsWM == math.MinInt64 {
		return nil
	}
	owm := p.meta.recsWM - p.window
	for {
		e, ok, err := p.orphq.peek(b)
		if err != nil {
			return err
		}
		if !ok || e.deadline >= p.meta.recsWM {
			break
		}
		p.orphq.pop()
		if err := p.dropOrphans(b, e.user, e.req, owm, "orphan_dropped"); err != nil {
			return err
		}
	}
	return nil
}

// dropOrphans removes user's orphans for req older than before.
func (p *joinProc) dropOrphans(b batch, user, req string, before int64, result string) error {
	u, err := p.user(b, user)
	if err != nil {
		return err
	}
	kept := u.orphans[:0]
	for _, o := range u.orphans {
		if o.req == req && o.ts < before {
			p.meta.orphans--
			if result == "evicted" {
				p.m.evicted.WithLabelValues("orphan").Inc()
			} else {
				p.m.joinRecords.WithLabelValues(result).Inc()
			}
			continue
		}
		kept = append(kept, o)
	}
	if len(kept) != len(u.orphans) {
		u.dirty = true
	}
	u.orphans = kept
	return nil
}

// flush writes the batch's changed users, queues and meta.
func (p *joinProc) flush(b batch) error {
	for id, u := range p.users {
		delete(p.users, id)
		if !u.dirty {
			continue
		}
		if len(u.lists) == 0 && len(u.orphans) == 0 {
			if err := b.Delete([]byte(u.key)); err != nil {
				return err
			}
			continue
		}
		u.encode(&p.e)
		if err := b.Put([]byte(u.key), p.e.b); err != nil {
			return err
		}
	}
	if err := p.lists.flush(b); err != nil {
		return err
	}
	if err := p.orphq.flush(b); err != nil {
		return err
	}
	e := &p.e
	e.b = e.b[:0]
	e.i64(p.meta.evWM)
	e.i64(p.meta.recsWM)
	e.u64(uint64(p.meta.pending))
	e.u64(uint64(p.meta.orphans))
	p.lists.encodePos(e)
	p.orphq.encodePos(e)
	if err := b.Put(joinMetaKey, e.b); err != nil {
		return err
	}
	p.m.pendingLists.Add(float64(p.meta.pending - p.reported.pending))
	p.m.orphans.Add(float64(p.meta.orphans - p.reported.orphans))
	p.reported = p.meta
	return nil
}
