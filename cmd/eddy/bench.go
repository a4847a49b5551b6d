package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/ingest"
	"github.com/eddyrec/eddy/internal/httpserver"
	"github.com/eddyrec/eddy/internal/synth"
)

func newBenchCommand() *ffcli.Command {
	return newGroupCommand("bench", "eddy bench <ingest|serve|process|freshness> [flags]",
		"measure whole pipelines (ingest, ...) on this machine",
		newBenchIngestCommand(), newBenchServeCommand(), newBenchProcessCommand(), newBenchFreshnessCommand())
}

// IngestBenchResult is what `eddy bench ingest --json` prints.
type IngestBenchResult struct {
	EventsPerSec float64 `json:"events_per_sec"`
	P50Ms        float64 `json:"p50_ms"`
	P99Ms        float64 `json:"p99_ms"`
	MaxMs        float64 `json:"max_ms"`
	Requests     int     `json:"requests"`
	Events       int64   `json:"events"`
	Errors       int64   `json:"errors"`
	Batch        int     `json:"batch"`
	Concurrency  int     `json:"concurrency"`
	DurationSec  float64 `json:"duration_sec"`
	CPUs         int     `json:"cpus"`
	Broker       string  `json:"broker"`
}

func newBenchIngestCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy bench ingest", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	kf := newKafkaFlags()
	kf.register(fs)
	kf.embeddedAddr = "127.0.0.1:0"
	fs.Lookup("embedded-broker-addr").DefValue = kf.embeddedAddr
	_ = fs.Set("embedded-broker-addr", kf.embeddedAddr)
	duration := fs.Duration("duration", 10*time.Second, "how long to drive load")
	concurrency := fs.Int("concurrency", 4, "concurrent HTTP clients")
	batch := fs.Int("batch", 500, "events per request")
	asJSON := fs.Bool("json", false, "print one JSON object")
	return &ffcli.Command{
		Name:       "ingest",
		ShortUsage: "eddy bench ingest [--duration 10s] [--json] [flags]",
		ShortHelp:  "batched HTTP ingest into Kafka: events/s and request latency",
		LongHelp: `Starts an embedded broker in a temporary directory (or uses --brokers), an
ingest server on a loopback port, and --concurrency clients that post NDJSON
batches of --batch synthetic events for --duration. Every request waits for
Kafka's acknowledgement (acks=all), as in production. Prints events/s and
request latency percentiles.`,
		FlagSet:   fs,
		Options:   ffOptions(),
		UsageFunc: usage,
		Exec: func(ctx context.Context, _ []string) error {
			log, err := common.logger()
			if err != nil {
				return err
			}
			if *concurrency < 1 || *batch < 1 || *duration <= 0 {
				return usageError{errors.New("--concurrency, --batch and --duration must be positive")}
			}
			if len(kf.client.Brokers) == 0 {
				dir, err := os.MkdirTemp("", "eddy-bench-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				kf.dataDir = dir
			}
			if err := kf.validate(); err != nil {
				return err
			}
			res, err := benchIngest(ctx, kf, *duration, *concurrency, *batch, log)
			if err != nil {
				return err
			}
			if *asJSON {
				return json.NewEncoder(os.Stdout).Encode(res)
			}
			fmt.Printf("ingest: %.0f events/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms per request of %d events (%d requests, %d errors, %d clients, %d CPUs)\n",
				res.EventsPerSec, res.P50Ms, res.P99Ms, res.MaxMs, res.Batch, res.Requests, res.Errors, res.Concurrency, res.CPUs)
			return nil
		},
	}
}

func benchIngest(ctx context.Context, kf *kafkaFlags, duration time.Duration, concurrency, batch int, log *slog.Logger) (IngestBenchResult, error) {
	res := IngestBenchResult{Batch: batch, Concurrency: concurrency, CPUs: runtime.GOMAXPROCS(0)}
	quiet := slog.New(slog.DiscardHandler)
	closeBroker, err := kf.connect(quiet, true)
	if err != nil {
		return res, err
	}
	defer closeBroker()
	res.Broker = kf.client.Brokers[0]
	if _, err := kf.ensureTopics(ctx, quiet); err != nil {
		return res, err
	}
	cfg := ingest.DefaultConfig()
	cfg.MaxBodyBytes = 16 << 20
	cfg.MaxInflightBytes = int64(concurrency+1) * cfg.MaxBodyBytes
	reg := newRegistry()
	srv := httpserver.New("127.0.0.1:0", reg, quiet)
	closeIngest, err := startIngest(kf, cfg, srv, reg, quiet)
	if err != nil {
		return res, err
	}
	defer closeIngest()
	if err := srv.Listen(); err != nil {
		return res, err
	}
	sctx, stopServer := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, 10*time.Second) }()
	defer func() { stopServer(); <-served }()

	// Pre-encode request bodies so that the clients measure the server, not
	// the generator.
	gen, err := synth.New(synth.DefaultConfig())
	if err != nil {
		return res, err
	}
	bodies := make([][]byte, 64)
	var ev event.Event
	for i := range bodies {
		var b []byte
		for range batch {
			gen.Next(&ev)
			b = ev.AppendJSON(b)
			b = append(b, '\n')
		}
		bodies[i] = b
	}
	url := "http://" + srv.Addr() + "/v1/events"
	log.Info("bench ingest", "broker", res.Broker, "url", url, "duration", duration, "clients", concurrency, "batch", batch)

	transport := &http.Transport{MaxIdleConnsPerHost: concurrency}
	hc := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	defer transport.CloseIdleConnections()
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		latencies []time.Duration
		events    atomic.Int64
		errs      atomic.Int64
	)
	lctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	start := time.Now()
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &ingest.Client{URL: "http://" + srv.Addr(), HTTP: hc}
			var local []time.Duration
			for i := w; lctx.Err() == nil; i++ {
				t := time.Now()
				r, err := c.PostBody(lctx, "application/x-ndjson", bodies[i%len(bodies)])
				if err != nil {
					if lctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				local = append(local, time.Since(t))
				events.Add(int64(r.Accepted))
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(latencies)
	res.Requests = len(latencies)
	res.Events = events.Load()
	res.Errors = errs.Load()
	res.DurationSec = elapsed.Seconds()
	res.EventsPerSec = float64(res.Events) / elapsed.Seconds()
	res.P50Ms = percentileMs(latencies, 0.50)
	res.P99Ms = percentileMs(latencies, 0.99)
	res.MaxMs = percentileMs(latencies, 1)
	return res, nil
}

// percentileMs is the nearest-rank percentile of sorted durations, in ms.
func percentileMs(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i]) / float64(time.Millisecond)
}
