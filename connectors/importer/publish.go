package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/ingest"
)

// Sink is where imported events go.
type Sink interface {
	// Send hands events over; it may return before they are
	// acknowledged.
	Send(ctx context.Context, events []event.Event) error
	// Flush waits until everything sent so far is acknowledged.
	Flush(ctx context.Context) error
	// Close waits until everything sent is acknowledged (or fails) and
	// returns how many events were accepted and rejected.
	Close(ctx context.Context) (accepted, rejected int64, err error)
}

// KafkaSink produces events to a topic, keyed by user_id, with the
// idempotent producer and acks=all (franz-go's defaults). The record
// timestamp is the time of import; the event's own time is in ts.
type KafkaSink struct {
	cl       *kgo.Client
	topic    string
	acked    atomic.Int64
	failed   atomic.Int64
	mu       sync.Mutex
	firstErr error
}

// NewKafkaSink produces to topic with cl.
func NewKafkaSink(cl *kgo.Client, topic string) *KafkaSink { return &KafkaSink{cl: cl, topic: topic} }

var schemaHeaders = []kgo.RecordHeader{{Key: event.SchemaHeader, Value: []byte(event.SchemaHeaderValue)}}

func (s *KafkaSink) Send(ctx context.Context, events []event.Event) error {
	now := time.Now()
	// A record handed to the producer is delivered even if ctx ends (an
	// interrupted import): franz-go fails the buffered records of a
	// cancelled context, which lost the tail of an interrupted run.
	// Publish stops between batches instead.
	pctx := context.WithoutCancel(ctx)
	for i := range events {
		e := &events[i]
		r := &kgo.Record{Topic: s.topic, Key: []byte(e.UserID), Value: e.AppendJSON(nil), Timestamp: now, Headers: schemaHeaders}
		s.cl.Produce(pctx, r, s.done)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.firstErr
}

func (s *KafkaSink) done(_ *kgo.Record, err error) {
	if err == nil {
		s.acked.Add(1)
		return
	}
	s.failed.Add(1)
	s.mu.Lock()
	if s.firstErr == nil {
		s.firstErr = fmt.Errorf("importer: produce: %w", err)
	}
	s.mu.Unlock()
}

func (s *KafkaSink) Flush(ctx context.Context) error {
	if err := s.cl.Flush(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.firstErr
}

func (s *KafkaSink) Close(ctx context.Context) (int64, int64, error) {
	err := s.cl.Flush(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked.Load(), s.failed.Load(), errors.Join(s.firstErr, err)
}

// HTTPSink posts NDJSON batches to an ingest URL (POST /v1/events),
// retrying 503s as the server asks.
type HTTPSink struct {
	c                  *ingest.Client
	accepted, rejected int64
	log                *slog.Logger
	reported           int
}

// NewHTTPSink posts to c.
func NewHTTPSink(c *ingest.Client, log *slog.Logger) *HTTPSink { return &HTTPSink{c: c, log: log} }

func (s *HTTPSink) Send(ctx context.Context, events []event.Event) error {
	resp, err := s.c.Post(ctx, events)
	s.accepted += int64(resp.Accepted)
	s.rejected += int64(len(resp.Rejected))
	for _, r := range resp.Rejected {
		if s.reported < MaxBadRowsKept {
			s.reported++
			s.log.Warn("import: the server rejected an event", "error", r.Error)
		}
	}
	return err
}

// Flush is a no-op: Send returns once the server has acknowledged.
func (s *HTTPSink) Flush(context.Context) error { return nil }

func (s *HTTPSink) Close(context.Context) (int64, int64, error) { return s.accepted, s.rejected, nil }

// Options tune Publish.
type Options struct {
	// TimeCompress, if ≥ 1, moves history to end at the import's start with
	// every gap divided by it (1 shifts it only); 0 keeps the times.
	TimeCompress float64
	// BatchSize is the events per Send (default 1000).
	BatchSize int
	// Progress gets a progress line: rewritten in place on a terminal
	// (Terminal), one line every 5 s otherwise. nil for none.
	Progress io.Writer
	Terminal bool
	// Ledger, if set, records progress: a re-run resumes after what was
	// acknowledged, and a completed import is skipped unless Force.
	Ledger *Ledger
	Force  bool
	// CheckpointEvery is how many events go between two ledger
	// checkpoints (each waits for the sink to acknowledge; default 50k).
	CheckpointEvery int
}

// Summary is what an import did.
type Summary struct {
	Files       int     `json:"files"`
	Rows        int64   `json:"rows"`
	BadRows     int64   `json:"bad_rows"`
	Events      int     `json:"events"`
	Sent        int64   `json:"sent"`
	Accepted    int64   `json:"accepted"`
	Rejected    int64   `json:"rejected"`
	Seconds     float64 `json:"seconds"`
	Interrupted bool    `json:"interrupted"`
	// Resumed is how many events an earlier, interrupted run had sent
	// (skipped now); AlreadyImported says a completed import was skipped.
	Resumed         int  `json:"resumed"`
	AlreadyImported bool `json:"already_imported"`
}

// Publish sends b's events to sink in order. A cancelled ctx stops it
// between batches; what was sent is still flushed (for up to 30 s) and
// counted.
func Publish(ctx context.Context, b *Batch, sink Sink, o Options) (Summary, error) {
	sum := Summary{Files: b.Files, Rows: b.Rows, BadRows: b.BadRows, Events: len(b.Events)}
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.TimeCompress != 0 && o.TimeCompress < 1 {
		return sum, fmt.Errorf("importer: time compression %v: want 0 (keep the times) or ≥ 1", o.TimeCompress)
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = 50_000
	}
	var entry LedgerEntry
	from := 0
	if o.Ledger != nil {
		var err error
		if entry, err = o.Ledger.load(b.Fingerprint); err != nil {
			return sum, err
		}
		switch {
		case entry.Completed && !o.Force:
			sum.AlreadyImported, sum.Resumed, sum.Sent = true, entry.Done, int64(entry.Done)
			return sum, nil
		case entry.Completed || entry.Events != len(b.Events):
			entry = LedgerEntry{V: 1, Fingerprint: b.Fingerprint}
		}
		entry.Source, entry.Events = b.Source, len(b.Events)
		from = entry.Done
		sum.Resumed = from
	}
	start := time.Now()
	if o.TimeCompress >= 1 && len(b.Events) > 0 {
		compress(b.Events, start.Truncate(time.Millisecond), o.TimeCompress)
	}
	p := progress{w: o.Progress, terminal: o.Terminal, total: len(b.Events), done0: from, start: start}
	var sendErr error
	checkpoint := func(done int) error {
		if o.Ledger == nil {
			return nil
		}
		if err := sink.Flush(ctx); err != nil {
			return err
		}
		entry.Done, entry.Completed = done, done == len(b.Events)
		return o.Ledger.save(entry)
	}
	sum.Sent = int64(from)
	next := from + o.CheckpointEvery
	for i := from; i < len(b.Events); i += o.BatchSize {
		if ctx.Err() != nil {
			sum.Interrupted = true
			break
		}
		j := min(i+o.BatchSize, len(b.Events))
		if err := sink.Send(ctx, b.Events[i:j]); err != nil {
			if ctx.Err() != nil {
				sum.Interrupted = true
			} else {
				sendErr = err
			}
			break
		}
		sum.Sent = int64(j)
		p.update(j)
		if j >= next || j == len(b.Events) {
			next = j + o.CheckpointEvery
			if err := checkpoint(j); err != nil && ctx.Err() == nil {
				sendErr = err
				break
			}
		}
	}
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	acc, rej, err := sink.Close(cctx)
	sum.Accepted, sum.Rejected = acc, rej
	if o.Ledger != nil && err == nil && sendErr == nil && int(sum.Sent) > entry.Done {
		// Everything sent is acknowledged now (Close waited): an
		// interrupted run's re-run starts after it.
		entry.Done, entry.Completed = int(sum.Sent), int(sum.Sent) == len(b.Events)
		err = o.Ledger.save(entry)
	}
	sum.Seconds = time.Since(start).Seconds()
	p.finish(int(sum.Sent))
	return sum, errors.Join(sendErr, err)
}

// compress maps events (sorted by time) so the last is at end and every
// gap is divided by f.
func compress(events []event.Event, end time.Time, f float64) {
	last := events[len(events)-1].Time
	for i := range events {
		back := time.Duration(float64(last.Sub(events[i].Time)) / f)
		events[i].Time = end.Add(-back).Truncate(time.Millisecond)
	}
}

type progress struct {
	w        io.Writer
	terminal bool
	total    int
	done0    int // events sent by an earlier run
	start    time.Time
	last     time.Time
}

func (p *progress) update(done int) {
	if p.w == nil {
		return
	}
	now := time.Now()
	every := 5 * time.Second
	if p.terminal {
		every = 200 * time.Millisecond
	}
	if now.Sub(p.last) < every {
		return
	}
	p.last = now
	p.print(done, now)
}

func (p *progress) print(done int, now time.Time) {
	el := now.Sub(p.start).Seconds()
	rate := float64(done-p.done0) / max(el, 1e-9)
	eta := "-"
	if rate > 0 {
		eta = (time.Duration(float64(p.total-done)/rate) * time.Second).Round(time.Second).String()
	}
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(done) / float64(p.total)
	}
	line := fmt.Sprintf("import: %d / %d events (%.1f%%), %.0f events/s, ETA %s", done, p.total, pct, rate, eta)
	if p.terminal {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) finish(done int) {
	if p.w == nil {
		return
	}
	p.print(done, time.Now())
	if p.terminal {
		fmt.Fprintln(p.w)
	}
}
