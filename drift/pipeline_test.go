package drift

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/eddyrec/eddy/event"
)

// pipeline is the drift role in miniature: partitions, merger, monitor.
type pipeline struct {
	schema  *Schema
	parts   []*Partition
	merger  *Merger
	monitor *Monitor
	out     []string // one line per report: id, verdict, decision
}

func newPipeline(t testing.TB, cfg Config, n int) *pipeline {
	s, err := NewSchema(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline{schema: s, monitor: NewMonitor(s, nil)}
	var ids []int32
	for i := range n {
		p.parts = append(p.parts, NewPartition(s))
		ids = append(ids, int32(i))
	}
	p.merger = NewMerger(s, ids)
	return p
}

func (p *pipeline) drain(t testing.TB, i int) {
	merged, err := p.merger.Add(int32(i), p.parts[i].TakeClosed(nil), p.parts[i].ClosedThrough())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range merged {
		st, err := p.monitor.Process(w)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(st.Report)
		if err != nil {
			t.Fatal(err)
		}
		line := fmt.Sprintf("%s %s", b, st.Decision.Action)
		if st.Decision.Request != nil {
			rb, _ := json.Marshal(st.Decision.Request)
			line += " " + string(rb)
		}
		p.out = append(p.out, line)
	}
}

// restart encodes every piece of state, decodes it into a new pipeline and
// checks that each re-encodes to the same bytes.
func (p *pipeline) restart(t testing.TB) *pipeline {
	q := &pipeline{schema: p.schema, out: p.out}
	for _, part := range p.parts {
		b, err := part.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		np, err := RestorePartition(p.schema, b)
		if err != nil {
			t.Fatal(err)
		}
		q.parts = append(q.parts, np)
	}
	mb, err := p.merger.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if q.merger, err = RestoreMerger(p.schema, mb); err != nil {
		t.Fatal(err)
	}
	nb, err := p.monitor.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if q.monitor, err = RestoreMonitor(p.schema, nb, nil); err != nil {
		t.Fatal(err)
	}
	again, _ := q.monitor.MarshalBinary()
	if string(again) != string(nb) {
		t.Fatal("monitor state does not round-trip")
	}
	return q
}

// streamGen makes a small random stream of events and served lists; after
// shiftAt records the watch ratios halve and item popularity reverses.
type streamGen struct {
	r       *rand.Rand
	t       time.Time
	n       int
	shiftAt int
	req     int
}

func (g *streamGen) next(p *pipeline, t testing.TB) {
	g.n++
	g.t = g.t.Add(time.Duration(g.r.IntN(40)) * time.Millisecond)
	user := fmt.Sprintf("u%d", g.r.IntN(300))
	h := fnv.New32a()
	h.Write([]byte(user))
	part := int(h.Sum32()) % len(p.parts)
	shifted := g.n > g.shiftAt
	item := func() string {
		k := int(g.r.ExpFloat64() * 20)
		if shifted {
			k = 400 - k
		}
		return fmt.Sprintf("i%d", k)
	}
	if g.r.IntN(8) == 0 {
		g.req++
		l := ServedList{RequestID: fmt.Sprintf("r%d", g.req), UserID: user, Time: g.t}
		for k := range 5 {
			l.Items = append(l.Items, ServedItem{ItemID: item(), Position: k, Score: g.r.NormFloat64()})
		}
		p.parts[part].ObserveServedList(&l)
	} else {
		e := event.Event{UserID: user, ItemID: item(), Time: g.t, RequestID: fmt.Sprintf("r%d", max(g.req-g.r.IntN(3), 1)),
			Context: map[string]string{"device": []string{"tv", "mobile", "desktop"}[g.r.IntN(3)]}}
		e.Type = []event.Type{event.Impression, event.Click, event.Watch}[g.r.IntN(3)]
		if e.Type == event.Watch {
			ratio := g.r.Float64()
			if shifted {
				ratio /= 2
			}
			e.Value, e.Duration, e.HasValue, e.HasDuration = ratio*100, 100, true, true
		}
		p.parts[part].ObserveEvent(&e)
	}
	p.drain(t, part)
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Window.Size = Duration(10 * time.Second)
	cfg.Window.Lateness = Duration(time.Second)
	cfg.Window.Attribution = Duration(5 * time.Second)
	cfg.ReferenceWindows = 4
	cfg.MinSamples = 50
	cfg.Trigger.Cooldown = Duration(time.Hour)
	return cfg
}

// TestRestartGivesIdenticalDecisions runs the same stream twice: once
// straight through and once with every piece of state encoded and decoded
// (what survives a SIGKILL of the drift role) at several points,
// including mid-capture and mid-episode. The reports and decisions must
// be byte-identical, and the shift must cause exactly one retrain request.
func TestRestartGivesIdenticalDecisions(t *testing.T) {
	const records, shiftAt = 20_000, 12_000
	run := func(restartEvery int) []string {
		p := newPipeline(t, testConfig(), 3)
		g := &streamGen{r: rand.New(rand.NewPCG(7, 7)), t: scriptBase, shiftAt: shiftAt}
		for i := range records {
			g.next(p, t)
			if restartEvery > 0 && i%restartEvery == restartEvery-1 {
				p = p.restart(t)
			}
		}
		return p.out
	}
	want := run(0)
	requests := 0
	for _, l := range want {
		if strings.Contains(l, " request {") {
			requests++
		}
	}
	if requests != 1 {
		t.Errorf("%d retrain requests, want exactly 1:\n%s", requests, strings.Join(want, "\n"))
	}
	if len(want) < 10 {
		t.Fatalf("only %d reports", len(want))
	}
	for _, every := range []int{997, 4999} {
		got := run(every)
		if len(got) != len(want) {
			t.Fatalf("restart every %d: %d reports, want %d", every, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("restart every %d: report %d differs:\n got %s\nwant %s", every, i, got[i], want[i])
			}
		}
	}
}

func TestStateRejectsOtherSchema(t *testing.T) {
	p := newPipeline(t, testConfig(), 1)
	g := &streamGen{r: rand.New(rand.NewPCG(1, 1)), t: scriptBase, shiftAt: 1 << 30}
	for range 3000 {
		g.next(p, t)
	}
	other := testConfig()
	other.Signals = other.Signals[1:]
	s2, err := NewSchema(other)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := p.parts[0].MarshalBinary()
	if _, err := RestorePartition(s2, pb); !errors.Is(err, ErrSchemaMismatch) {
		t.Errorf("partition: %v, want ErrSchemaMismatch", err)
	}
	mb, _ := p.monitor.MarshalBinary()
	if _, err := RestoreMonitor(s2, mb, nil); !errors.Is(err, ErrSchemaMismatch) {
		t.Errorf("monitor: %v, want ErrSchemaMismatch", err)
	}
	// Changing a threshold keeps the fingerprint: state survives tuning.
	tuned := testConfig()
	tuned.Signals[0].Threshold = 0.3
	s3, _ := NewSchema(tuned)
	if s3.Fingerprint() != p.schema.Fingerprint() {
		t.Error("a threshold change altered the fingerprint")
	}
}
