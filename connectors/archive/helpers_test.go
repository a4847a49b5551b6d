package archive

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/synth"
	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/stream"
)

var quiet = slog.New(slog.DiscardHandler)

// produceSynthetic produces n seeded synthetic events to the events topic,
// keyed by user, and returns them by event id.
func produceSynthetic(t testing.TB, k *testkafka.Kafka, seed uint64, n int) map[string]event.Event {
	t.Helper()
	cfg := synth.DefaultConfig()
	cfg.Seed = seed
	cfg.Start = time.Now().Add(-4 * time.Hour).UTC()
	// About 3 hours of events (several hour folders), none in the future.
	cfg.MeanInterEvent = 3 * time.Hour / time.Duration(max(n, 1000))
	g, err := synth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cl := k.NewClient(t, kgo.ProducerLinger(5*time.Millisecond))
	topic := k.Layout.Name(stream.TopicEvents)
	out := make(map[string]event.Event, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var perr error
	for i := range n {
		var e event.Event
		g.Next(&e)
		e.EventID = e.EventID + "-" + string(rune('a'+seed%26))
		if i == 0 {
			e.Context = map[string]string{"device": "tv"}
		}
		ctxCopy := make(map[string]string, len(e.Context))
		for k, v := range e.Context {
			ctxCopy[k] = v
		}
		e.Context = ctxCopy
		out[e.EventID] = e
		wg.Add(1)
		cl.Produce(context.Background(), &kgo.Record{Topic: topic, Key: []byte(e.UserID), Value: e.AppendJSON(nil),
			Headers: []kgo.RecordHeader{{Key: event.SchemaHeader, Value: []byte(event.SchemaHeaderValue)}}},
			func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					perr = err
					mu.Unlock()
				}
				wg.Done()
			})
	}
	wg.Wait()
	if perr != nil {
		t.Fatal(perr)
	}
	return out
}

// runRole starts the archive role on k writing to st; stop stops it and
// waits.
func runRole(t testing.TB, k *testkafka.Kafka, st Store, cfg Config) (r *Role, stop func()) {
	t.Helper()
	cfg.EventsTopic = k.Layout.Name(stream.TopicEvents)
	cfg.RecsTopic = k.Layout.Name(stream.TopicRecs)
	if cfg.Group == "" || cfg.Group == DefaultConfig().Group {
		cfg.Group = k.Layout.Prefix + "archive"
	}
	c := k.Client()
	opts, err := c.Opts()
	if err != nil {
		t.Fatal(err)
	}
	r, err = New(cfg, st, opts, prometheus.NewRegistry(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("archive role: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return r, stop
}

// scanAll reads every archived event.
func scanAll(t testing.TB, st Store) []EventRow {
	t.Helper()
	var rows []EventRow
	_, err := Scan(context.Background(), st, time.Time{}, time.Time{}, func(r *EventRow) error {
		rows = append(rows, *r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// waitRows waits until the archive holds n events.
func waitRows(t testing.TB, st Store, n int, within time.Duration) []EventRow {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		rows := scanAll(t, st)
		if len(rows) >= n || time.Now().After(deadline) {
			return rows
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type eventWant = event.Event

func wrap(m map[string]event.Event) map[string]eventWant { return m }

// rowGen makes EventRows from the synthetic generator, without Kafka.
type rowGen struct {
	g *synth.Generator
	e event.Event
}

func newRowGen(seed uint64) *rowGen {
	cfg := synth.DefaultConfig()
	cfg.Seed = seed
	g, err := synth.New(cfg)
	if err != nil {
		panic(err)
	}
	return &rowGen{g: g}
}

func (r *rowGen) next() EventRow {
	r.g.Next(&r.e)
	row := eventRow(&r.e)
	row.RecordTs = row.Ts
	return row
}
