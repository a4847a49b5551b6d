package ranker

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/event"
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

func (b *memBatch) Delete(key []byte) error {
	delete(b.state, string(key))
	return nil
}

func (b *memBatch) Emit(topic string, key, value []byte) {
	b.out = append(b.out, &kgo.Record{Topic: topic, Key: slices.Clone(key), Value: slices.Clone(value)})
}

func (b *memBatch) EmitRecord(r *kgo.Record) { b.out = append(b.out, r) }

func (b *memBatch) take() []*kgo.Record {
	out := b.out
	b.out = nil
	return out
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testConfig() Config {
	c := DefaultConfig()
	c.Topics = Topics{Events: "ev", Recs: "recs", Input: "in", Examples: "ex", Ranker: "rk"}
	return c
}

const t0 = int64(1_760_000_000_000)

func minutes(m float64) int64 { return t0 + int64(m*60_000) }

// item is a served item for listRec: its id and features ("name=value,...").
type item struct{ id, feats string }

func listRec(t testing.TB, user, req string, ts int64, items ...item) *kgo.Record {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `{"request_id":%q,"user_id":%q,"model_version":"1","fallback":false,"ts":%d,"items":[`, req, user, ts)
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"item_id":%q,"position":%d,"score":%g`, it.id, i, 0.5+float64(i)/10)
		if it.feats != "" {
			b.WriteString(`,"features":{`)
			for j, kv := range strings.Split(it.feats, ",") {
				k, v, _ := strings.Cut(kv, "=")
				if j > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "%q:%s", k, v)
			}
			b.WriteByte('}')
		}
		b.WriteByte('}')
	}
	b.WriteString("]}")
	return &kgo.Record{Key: []byte(user), Value: []byte(b.String()), Timestamp: time.UnixMilli(ts),
		Headers: []kgo.RecordHeader{{Key: SourceHeader, Value: []byte(SourceRecs)}}}
}

var evSeq int

func evRec(t testing.TB, user, req, itemID string, typ event.Type, ts int64, opt ...func(*event.Event)) *kgo.Record {
	t.Helper()
	evSeq++
	e := event.Event{EventID: fmt.Sprint("e", evSeq), UserID: user, ItemID: itemID, Type: typ, Time: time.UnixMilli(ts).UTC(), RequestID: req}
	for _, o := range opt {
		o(&e)
	}
	return &kgo.Record{Key: []byte(user), Value: e.AppendJSON(nil), Timestamp: time.UnixMilli(ts),
		Headers: []kgo.RecordHeader{{Key: SourceHeader, Value: []byte(SourceEvents)}}}
}

func watchRatio(r float64) func(*event.Event) {
	return func(e *event.Event) { e.Value, e.HasValue, e.Duration, e.HasDuration = r*100, true, 100, true }
}

// joinHarness drives a joiner over an in-memory batch.
type joinHarness struct {
	t   testing.TB
	cfg Config
	m   *metrics
	p   *joinProc
	b   *memBatch
	out []Example
	raw [][]byte
}

func newJoinHarness(t testing.TB, cfg Config) *joinHarness {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := &joinHarness{t: t, cfg: cfg, m: newMetrics(), b: newMemBatch()}
	h.p = newJoinProc(&h.cfg, h.m, quietLog())
	return h
}

// restart replaces the processor by a new one over the same state.
func (h *joinHarness) restart() {
	_ = h.p.Close()
	h.p = newJoinProc(&h.cfg, h.m, quietLog())
}

// feed runs one batch and decodes its examples.
func (h *joinHarness) feed(recs ...*kgo.Record) []Example {
	h.t.Helper()
	if err := h.p.process(recs, h.b); err != nil {
		h.t.Fatal(err)
	}
	var got []Example
	for _, r := range h.b.take() {
		if r.Topic != h.cfg.Topics.Examples || string(r.Key) != h.cfg.Name {
			h.t.Fatalf("output to %s key %q", r.Topic, r.Key)
		}
		var x Example
		if err := DecodeExample(r.Value, &x); err != nil {
			h.t.Fatal(err)
		}
		got = append(got, x)
		h.raw = append(h.raw, r.Value)
	}
	h.out = append(h.out, got...)
	return got
}

func counter(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	if m.Counter != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

func (h *joinHarness) result(r string) float64 { return counter(h.m.joinRecords.WithLabelValues(r)) }

// labels renders examples as "item:label:reason" in order, the item taken
// from the position in lists built by listRec (a=0, b=1, ...).
func labels(xs []Example) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprintf("%c:%d:%s", 'a'+x.Position, x.Label, x.Reason))
	}
	return strings.Join(s, " ")
}
