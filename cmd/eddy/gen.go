package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/time/rate"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/ingest"
	"github.com/eddyrec/eddy/internal/synth"
	"github.com/eddyrec/eddy/stream"
)

// genFlags configure a synthetic stream and where it goes.
type genFlags struct {
	spec      string
	seed      uint64
	users     int
	items     int
	driftAt   int64
	driftKind string
	count     int64
	rate      float64
	to        string
	batch     int
	token     string

	recs            bool
	recsDriftSample float64
	recsDriftGroup  string
}

func (g *genFlags) register(fs *flag.FlagSet) {
	d := synth.DefaultConfig()
	fs.StringVar(&g.spec, "spec", "", "more generator options as key=value,... (keys: "+strings.Join(synth.SpecKeys(), ", ")+")")
	fs.Uint64Var(&g.seed, "seed", d.Seed, "random seed; the same flags give the same stream")
	fs.IntVar(&g.users, "users", d.Users, "number of users")
	fs.IntVar(&g.items, "items", d.Items, "number of items")
	fs.Int64Var(&g.driftAt, "drift-at", 0, "inject a distribution shift before this event index (0: none)")
	fs.StringVar(&g.driftKind, "drift-kind", "popularity", "kind of shift: popularity, taste or watch-ratio")
	fs.Int64Var(&g.count, "count", 0, "events to generate (0: until interrupted)")
	fs.Float64Var(&g.rate, "rate", 0, "events per second in wall-clock time (0: as fast as possible)")
	fs.IntVar(&g.batch, "batch", 500, "events per HTTP request or Kafka produce call")
}

// registerDestination adds the flags that say where `eddy gen` sends events.
func (g *genFlags) registerDestination(fs *flag.FlagSet) {
	fs.StringVar(&g.to, "to", "stdout", "destination: stdout (NDJSON), an ingest URL http(s)://host:port, or kafka")
	fs.StringVar(&g.token, "token", "", "bearer token for the ingest URL")
	fs.BoolVar(&g.recs, "recs", false, "with --to kafka, also produce each request's served list to <prefix>recs, as a scorer would log it (the default ranker's features from the generator's ground truth): drift's prediction and outcome signals without a scorer")
	fs.Float64Var(&g.recsDriftSample, "recs-drift-sample", 0, "with --recs, also copy the lists of this share of users to the drift role's input topic, as eddy serve --drift-sample does (for eddy drift --recs-from serve)")
	fs.StringVar(&g.recsDriftGroup, "recs-drift-group", "eddy-drift", "base group of the drift role fed by --recs-drift-sample")
}

// config builds the generator configuration: --spec first, then the named
// flags that were set explicitly on top.
func (g *genFlags) config(fs *flag.FlagSet) (synth.Config, error) {
	cfg, err := synth.ParseSpec(g.spec)
	if err != nil {
		return cfg, usageError{fmt.Errorf("--spec: %w", err)}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["seed"] {
		cfg.Seed = g.seed
	}
	if set["users"] {
		cfg.Users = g.users
	}
	if set["items"] {
		cfg.Items = g.items
	}
	if g.driftAt > 0 {
		kind, err := synth.ParseDriftKind(g.driftKind)
		if err != nil {
			return cfg, usageError{fmt.Errorf("--drift-kind: %w", err)}
		}
		cfg.DriftAt, cfg.DriftKind = g.driftAt, kind
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err}
	}
	if g.batch < 1 {
		return cfg, usageError{errors.New("--batch must be at least 1")}
	}
	if g.rate < 0 || g.count < 0 {
		return cfg, usageError{errors.New("--rate and --count must not be negative")}
	}
	return cfg, nil
}

// eventSink is where generated batches go.
type eventSink interface {
	send(ctx context.Context, events []event.Event) error
}

type writerSink struct{ w *bufio.Writer }

func (s writerSink) send(_ context.Context, events []event.Event) error {
	var buf []byte
	for i := range events {
		buf = events[i].AppendJSON(buf[:0])
		buf = append(buf, '\n')
		if _, err := s.w.Write(buf); err != nil {
			return err
		}
	}
	return s.w.Flush()
}

type httpSink struct {
	c   *ingest.Client
	log *slog.Logger
}

func (s httpSink) send(ctx context.Context, events []event.Event) error {
	resp, err := s.c.Post(ctx, events)
	if err != nil {
		return err
	}
	if len(resp.Rejected) > 0 {
		s.log.Warn("ingest rejected events", "rejected", len(resp.Rejected), "first", resp.Rejected[0].Error)
	}
	return nil
}

type kafkaSink struct {
	cl    *kgo.Client
	topic string
	buf   []byte
	recs  *genRecs // --recs: served lists go out with the batch of their first impression
}

func (s *kafkaSink) served(g *synth.Generator, first *event.Event, items []int32) {
	if s.recs != nil {
		s.recs.served(g, first, items)
	}
}

func (s *kafkaSink) send(ctx context.Context, events []event.Event) error {
	var lists []*kgo.Record
	if s.recs != nil {
		lists = s.recs.take()
	}
	recs := make([]*kgo.Record, len(events), len(events)+len(lists))
	ends := make([]int, len(events))
	s.buf = s.buf[:0]
	for i := range events {
		s.buf = events[i].AppendJSON(s.buf)
		ends[i] = len(s.buf)
	}
	// Values are sliced only after encoding: appends may move the buffer.
	start := 0
	for i := range events {
		recs[i] = &kgo.Record{
			Topic:   s.topic,
			Key:     []byte(events[i].UserID),
			Value:   s.buf[start:ends[i]:ends[i]],
			Headers: eventRecordHeaders,
		}
		start = ends[i]
	}
	recs = append(recs, lists...)
	err := s.cl.ProduceSync(ctx, recs...).FirstErr()
	s.buf = nil // the records own the bytes until acknowledged; start afresh
	return err
}

var eventRecordHeaders = []kgo.RecordHeader{{Key: event.SchemaHeader, Value: []byte(event.SchemaHeaderValue)}}

// runGen generates cfg's stream into sink at rate events/s (0: unpaced) until
// count events (0: forever) or ctx ends, and returns how many were sent.
func runGen(ctx context.Context, cfg synth.Config, sink eventSink, count int64, eventsPerSec float64, batch int, log *slog.Logger) (int64, error) {
	gen, err := synth.New(cfg)
	if err != nil {
		return 0, err
	}
	var lim *rate.Limiter
	if eventsPerSec > 0 {
		burst := batch
		if float64(burst) > eventsPerSec {
			burst = max(1, int(eventsPerSec))
		}
		batch = burst
		lim = rate.NewLimiter(rate.Limit(eventsPerSec), burst)
	}
	events := make([]event.Event, batch)
	lists, _ := sink.(listSink)
	var sent int64
	lastLog := time.Now()
	for count == 0 || sent < count {
		n := batch
		if count > 0 && count-sent < int64(n) {
			n = int(count - sent)
		}
		if lim != nil {
			if err := lim.WaitN(ctx, n); err != nil {
				return sent, nil // context ended: a normal stop
			}
		} else if ctx.Err() != nil {
			return sent, nil
		}
		for i := 0; i < n; i++ {
			gen.Next(&events[i])
			if lists != nil {
				if items := gen.Served(); items != nil {
					lists.served(gen, &events[i], items)
				}
			}
		}
		if err := sink.send(ctx, events[:n]); err != nil {
			if ctx.Err() != nil {
				return sent, nil
			}
			return sent, fmt.Errorf("gen: send after %d events: %w", sent, err)
		}
		sent += int64(n)
		if time.Since(lastLog) > 10*time.Second {
			log.Info("gen progress", "events", sent, "drifted", gen.Drifted())
			lastLog = time.Now()
		}
	}
	return sent, nil
}

func newGenCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy gen", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	kf := newKafkaFlags()
	kf.register(fs)
	var g genFlags
	g.register(fs)
	g.registerDestination(fs)
	return &ffcli.Command{
		Name:       "gen",
		ShortUsage: "eddy gen [flags]",
		ShortHelp:  "generate a seeded synthetic interaction stream",
		LongHelp: `Generates realistic interactions: users and items with latent tastes,
Zipf-like item popularity, sessions, impressions followed by clicks and watches
with durations, and optionally a distribution shift at --drift-at. The same
flags always give the same stream.

--to stdout writes NDJSON; --to http://host:port posts NDJSON batches to an
ingest server (retrying 503s); --to kafka produces straight to <prefix>events.

--recs (with --to kafka) also produces each request's served list to
<prefix>recs, as a scorer would have logged it: the items of the request's
impressions in order, at its first impression's time, with the default
ranker's five features from the generator's ground truth. It feeds the drift
role's prediction and outcome signals without a scorer. --recs-drift-sample S
also copies the lists of a share S of users to the drift role's input topic
(<prefix><--recs-drift-group>-input), as 'eddy serve --drift-sample' does.`,
		FlagSet:   fs,
		Options:   ffOptions(),
		UsageFunc: usage,
		Exec: func(ctx context.Context, _ []string) error {
			log, err := common.logger()
			if err != nil {
				return err
			}
			cfg, err := g.config(fs)
			if err != nil {
				return err
			}
			var sink eventSink
			switch {
			case g.to == "stdout" || g.to == "-":
				w := bufio.NewWriterSize(os.Stdout, 1<<16)
				sink = writerSink{w}
			case strings.HasPrefix(g.to, "http://") || strings.HasPrefix(g.to, "https://"):
				sink = httpSink{c: &ingest.Client{URL: g.to, Token: g.token, MaxRetries: 10}, log: log}
			case g.to == "kafka":
				if err := kf.validate(); err != nil {
					return err
				}
				closeBroker, err := kf.connect(log, false)
				if err != nil {
					return err
				}
				defer closeBroker()
				cl, err := kf.client.NewClient(kgo.RequiredAcks(kgo.AllISRAcks()))
				if err != nil {
					return err
				}
				defer cl.Close()
				ks := &kafkaSink{cl: cl, topic: kf.layout.Name(stream.TopicEvents)}
				if g.recs {
					r, err := g.newRecs(ctx, kf, log)
					if err != nil {
						return err
					}
					ks.recs = r
				}
				sink = ks
			default:
				return usageError{fmt.Errorf("--to %q: want stdout, an http(s):// URL or kafka", g.to)}
			}
			if g.recs && g.to != "kafka" {
				return usageError{errors.New("--recs needs --to kafka")}
			}
			start := time.Now()
			n, err := runGen(ctx, cfg, sink, g.count, g.rate, g.batch, log)
			if errors.Is(err, io.ErrClosedPipe) {
				err = nil
			}
			log.Info("gen done", "events", n, "seconds", time.Since(start).Seconds(), "to", g.to)
			return err
		},
	}
}
