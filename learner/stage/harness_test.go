package stage

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/synth"
	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/modelrec"
)

// memBatch is an in-memory batch: state writes apply at once, outputs are
// collected in order.
type memBatch struct {
	state map[string][]byte
	out   []*kgo.Record
}

func newMemBatch() *memBatch { return &memBatch{state: map[string][]byte{}} }

func (b *memBatch) Get(key []byte) ([]byte, bool, error) {
	v, ok := b.state[string(key)]
	return v, ok, nil
}

func (b *memBatch) Put(key, value []byte) error {
	b.state[string(key)] = slices.Clone(value)
	return nil
}

func (b *memBatch) Emit(topic string, key, value []byte) {
	b.out = append(b.out, &kgo.Record{Topic: topic, Key: slices.Clone(key), Value: slices.Clone(value)})
}

func (b *memBatch) EmitRecord(r *kgo.Record) { b.out = append(b.out, r) }

// take returns and forgets the outputs to topic.
func (b *memBatch) take(topic string) []*kgo.Record {
	var got, rest []*kgo.Record
	for _, r := range b.out {
		if r.Topic == topic {
			got = append(got, r)
		} else {
			rest = append(rest, r)
		}
	}
	b.out = rest
	return got
}

// mapItems is a replica that is always up to date: the in-memory
// composition's view of items.
type mapItems map[string]learner.Row

func (m mapItems) read(id string, row *learner.Row) bool {
	r, ok := m[id]
	if ok {
		copy(row.Vec, r.Vec)
		row.Bias, row.Count = r.Bias, r.Count
	}
	return ok
}

func (m mapItems) count(id string) (uint32, bool) {
	r, ok := m[id]
	return r.Count, ok
}

func (m mapItems) apply(t testing.TB, recs []*kgo.Record) {
	t.Helper()
	for _, r := range recs {
		var v modelrec.Vector
		if err := modelrec.DecodeVector(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		m[string(r.Key)] = learner.Row{Vec: v.Vec, Bias: v.Bias, Count: uint32(v.Updates)}
	}
}

func testConfig() Config {
	c := DefaultConfig()
	c.MF.Dim = 32
	c.Topics = Topics{Events: "ev", ItemGrads: "grads", ModelUsers: "users", ModelItems: "items"}
	return c
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// pipeline runs a user processor and an item processor over in-memory
// batches, feeding the item stage's output back to the user stage's
// replica after every user batch.
type pipeline struct {
	t      testing.TB
	cfg    Config
	m      *metrics
	user   *userProc
	item   *itemProc
	ub, ib *memBatch
	items  mapItems
	users  map[string]modelrec.Vector // last published per user
	pub    map[string]modelrec.Vector // last published per item
	grads  []*kgo.Record              // every gradient record produced
	offset int64
}

func newPipeline(t testing.TB, cfg Config) *pipeline {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	mf, err := learner.NewMF(cfg.MF)
	if err != nil {
		t.Fatal(err)
	}
	m := newMetrics()
	p := &pipeline{t: t, cfg: cfg, m: m, ub: newMemBatch(), ib: newMemBatch(), items: mapItems{},
		users: map[string]modelrec.Vector{}, pub: map[string]modelrec.Vector{}}
	p.user = newUserProc(&p.cfg, mf, p.items, m, quietLog())
	p.item = newItemProc(&p.cfg, mf, m, quietLog())
	return p
}

// restartUser replaces the user processor by a new one over the same
// state, as the runtime does after a crash.
func (p *pipeline) restartUser() {
	mf, _ := learner.NewMF(p.cfg.MF)
	p.user = newUserProc(&p.cfg, mf, p.items, p.m, quietLog())
}

func eventRecord(t testing.TB, ev *event.Event, offset int64) *kgo.Record {
	t.Helper()
	return &kgo.Record{Topic: "ev", Key: []byte(ev.UserID), Value: ev.AppendJSON(nil), Offset: offset, Timestamp: time.UnixMilli(1)}
}

// run feeds evs in user batches of size batch.
func (p *pipeline) run(evs []event.Event, batch int) {
	t := p.t
	t.Helper()
	for len(evs) > 0 {
		n := min(batch, len(evs))
		recs := make([]*kgo.Record, n)
		for i := range n {
			recs[i] = eventRecord(t, &evs[i], p.offset)
			p.offset++
		}
		p.feed(recs)
		evs = evs[n:]
	}
}

// feed runs one user batch of raw records and the item batch it causes.
func (p *pipeline) feed(recs []*kgo.Record) {
	t := p.t
	t.Helper()
	if err := p.user.process(recs, p.ub); err != nil {
		t.Fatal(err)
	}
	for _, r := range p.ub.take(p.cfg.Topics.ModelUsers) {
		var v modelrec.Vector
		if err := modelrec.DecodeVector(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		p.users[string(r.Key)] = v
	}
	g := p.ub.take(p.cfg.Topics.ItemGrads)
	if len(p.ub.out) != 0 {
		t.Fatalf("user stage wrote to unexpected topics: %v", p.ub.out[0].Topic)
	}
	p.grads = append(p.grads, g...)
	if err := p.item.process(g, p.ib); err != nil {
		t.Fatal(err)
	}
	out := p.ib.take(p.cfg.Topics.ModelItems)
	for _, r := range out {
		var v modelrec.Vector
		if err := modelrec.DecodeVector(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		p.pub[string(r.Key)] = v
	}
	p.items.apply(t, out)
}

func synthEvents(t testing.TB, spec string, n int) []event.Event {
	t.Helper()
	cfg, err := synth.ParseSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	g, err := synth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]event.Event, n)
	for i := range evs {
		g.Next(&evs[i])
	}
	return evs
}

func fmtVec(v []float32) string {
	if len(v) > 4 {
		return fmt.Sprint(v[:4], "…")
	}
	return fmt.Sprint(v)
}

func timeMs(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func testutilCounter(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}
