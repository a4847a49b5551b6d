package drift

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eddyrec/eddy/event"
)

// bench50Config has 50 signals over every source: 12 on events (type,
// watch ratio, duration, consumed rank, events per user, session length and
// 6 context keys), 35 on served lists (score, fallback, served rank, list
// size and 31 ranker features) and 3 outcomes.
func bench50Config() Config {
	cfg := DefaultConfig()
	cfg.Signals = []SignalConfig{
		{Name: "type", Source: SourceEvents, Field: "type"},
		{Name: "wr", Source: SourceEvents, Field: "watch_ratio"},
		{Name: "dur", Source: SourceEvents, Field: "duration"},
		{Name: "rank", Source: SourceEvents, Field: "item_rank"},
		{Name: "epu", Source: SourceEvents, Field: "events_per_user"},
		{Name: "sess", Source: SourceEvents, Field: "session_length"},
		{Name: "score", Source: SourceRecs, Field: "score"},
		{Name: "fallback", Source: SourceRecs, Field: "fallback"},
		{Name: "srank", Source: SourceRecs, Field: "item_rank"},
		{Name: "size", Source: SourceRecs, Field: "list_size"},
		{Name: "ctr", Source: SourceOutcome, Field: "ctr"},
		{Name: "clicked", Source: SourceOutcome, Field: "clicked_score"},
		{Name: "unrec", Source: SourceOutcome, Field: "unrecommended"},
	}
	for k := range 6 {
		cfg.Signals = append(cfg.Signals, SignalConfig{Name: fmt.Sprintf("ctx%d", k), Source: SourceEvents, Field: fmt.Sprintf("context.k%d", k)})
	}
	for k := range 31 {
		cfg.Signals = append(cfg.Signals, SignalConfig{Name: fmt.Sprintf("f%d", k), Source: SourceRecs, Field: fmt.Sprintf("feature.f%d", k)})
	}
	return cfg
}

// benchRecords makes a stream of ~12 events per served list of 10 items
// (the synthetic funnel's ratio), 20 ms apart: 15,000 events per 5-minute
// window.
type benchRecord struct {
	e *event.Event
	l *ServedList
}

func benchRecords(n int) []benchRecord {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]benchRecord, 0, n)
	t := scriptBase
	types := []event.Type{event.Impression, event.Impression, event.Impression, event.Click, event.Watch, event.Like}
	ctxVals := []string{"a", "b", "c", "d"}
	req := 0
	for len(out) < n {
		t = t.Add(20 * time.Millisecond)
		user := fmt.Sprintf("u%d", r.IntN(5000))
		if len(out)%12 == 0 {
			req++
			l := &ServedList{RequestID: fmt.Sprintf("r%d", req), UserID: user, Time: t}
			for k := range 10 {
				f := make(Features, 31)
				for j := range f {
					f[j] = Feature{Name: fmt.Sprintf("f%d", j), Value: r.NormFloat64()}
				}
				slices.SortFunc(f, func(a, b Feature) int { return strings.Compare(a.Name, b.Name) })
				l.Items = append(l.Items, ServedItem{ItemID: fmt.Sprintf("i%d", int(r.ExpFloat64()*300)), Position: k, Score: r.NormFloat64(), Features: f})
			}
			out = append(out, benchRecord{l: l})
			continue
		}
		e := &event.Event{UserID: user, ItemID: fmt.Sprintf("i%d", int(r.ExpFloat64()*300)), Time: t,
			Type: types[r.IntN(len(types))], RequestID: fmt.Sprintf("r%d", max(1, req-r.IntN(4))), Context: map[string]string{}}
		for k := range 6 {
			e.Context[fmt.Sprintf("k%d", k)] = ctxVals[r.IntN(len(ctxVals))]
		}
		if e.Type == event.Watch {
			e.Value, e.Duration, e.HasValue, e.HasDuration = r.Float64()*200, 200, true, true
		}
		out = append(out, benchRecord{e: e})
	}
	return out
}

// BenchmarkObserve50Signals is the per-record cost of a partition with 50
// signals, including closing windows and expiring served lists. A served
// list record carries 10 items × 31 features.
func BenchmarkObserve50Signals(b *testing.B) {
	recs := benchRecords(1 << 17)
	for _, share := range []float64{1, 0.1, 0.01} {
		b.Run(fmt.Sprintf("sample=%g", share), func(b *testing.B) {
			cfg := bench50Config()
			cfg.Window.Sample = share
			benchObserve(b, cfg, recs)
		})
	}
}

func benchObserve(b *testing.B, cfg Config, recs []benchRecord) {
	s, err := NewSchema(cfg)
	if err != nil {
		b.Fatal(err)
	}
	p := NewPartition(s)
	var closed []*Window
	// Time keeps moving forward across loops so windows keep closing: at
	// each wrap every record moves by the stream's span (outside the
	// timed work's hot path, once per 131,072 records).
	span := recs[len(recs)-1].time().Sub(recs[0].time()) + time.Second
	b.ReportAllocs()
	i := 0
	events := 0
	for b.Loop() {
		rec := recs[i]
		if rec.e != nil {
			p.ObserveEvent(rec.e)
			events++
		} else {
			p.ObserveServedList(rec.l)
		}
		closed = p.TakeClosed(closed[:0])
		if i++; i == len(recs) {
			i = 0
			for _, r := range recs {
				if r.e != nil {
					r.e.Time = r.e.Time.Add(span)
				} else {
					r.l.Time = r.l.Time.Add(span)
				}
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(max(events, 1)), "ns/event")
}

func (r benchRecord) time() time.Time {
	if r.e != nil {
		return r.e.Time
	}
	return r.l.Time
}

// BenchmarkCompare50Signals is the per-window cost of judging a merged
// window of 50 signals against a 12-window reference, and of the merge.
func BenchmarkCompare50Signals(b *testing.B) {
	s, err := NewSchema(bench50Config())
	if err != nil {
		b.Fatal(err)
	}
	recs := benchRecords(15_000 * 14)
	p := NewPartition(s)
	var ws []*Window
	for _, rec := range recs {
		if rec.e != nil {
			p.ObserveEvent(rec.e)
		} else {
			p.ObserveServedList(rec.l)
		}
		ws = p.TakeClosed(ws)
	}
	if len(ws) < 13 {
		b.Fatalf("%d windows", len(ws))
	}
	ref, err := NewReference("ref", "", ws[:12])
	if err != nil {
		b.Fatal(err)
	}
	cur := ws[12]
	b.Run("compare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ref.Compare(cur); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("merge4", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := MergeWindows(cur, cur, cur, cur); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cur.MarshalBinary(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
