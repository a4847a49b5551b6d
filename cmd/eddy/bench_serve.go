package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/internal/httpserver"
	"github.com/eddyrec/eddy/scorer"
	"github.com/eddyrec/eddy/scorer/topk"
)

// ServeBenchResult is what `eddy bench serve --json` prints.
type ServeBenchResult struct {
	QPS          float64 `json:"qps"`
	P50Ms        float64 `json:"p50_ms"`
	P99Ms        float64 `json:"p99_ms"`
	MaxMs        float64 `json:"max_ms"`
	AllocPerReq  float64 `json:"alloc_per_req"`
	BytesPerReq  float64 `json:"alloc_bytes_per_req"`
	Requests     int     `json:"requests"`
	Errors       int64   `json:"errors"`
	Fallbacks    int64   `json:"fallbacks"`
	Items        int     `json:"items"`
	Users        int     `json:"users"`
	Dim          int     `json:"dim"`
	K            int     `json:"k"`
	Concurrency  int     `json:"concurrency"`
	TargetRate   float64 `json:"target_rate,omitempty"`
	Kernel       string  `json:"kernel"`
	Ranker       bool    `json:"ranker"`
	DurationSec  float64 `json:"duration_sec"`
	CPUs         int     `json:"cpus"`
	StateBytes   int     `json:"state_matrix_bytes"`
	LoadSec      float64 `json:"load_sec"`
	ServedListed int64   `json:"served_lists"`
}

// newBenchServeCommand is `eddy bench serve`; the lead adds it to `eddy
// bench`'s subcommands.
func newBenchServeCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy bench serve", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	cfg := scorer.DefaultConfig()
	cfg.RegisterFlags(fs)
	items := fs.Int("items", 100000, "synthetic items")
	users := fs.Int("users", 100000, "synthetic users")
	dim := fs.Int("dim", 64, "vector dimension")
	seen := fs.Int("seen", 20, "seen items per user (excluded from results)")
	k := fs.Int("k", 10, "items per request")
	duration := fs.Duration("duration", 10*time.Second, "how long to drive load")
	concurrency := fs.Int("concurrency", 16, "concurrent HTTP clients")
	rate := fs.Float64("rate", 0, "open-loop target requests/s over all clients (0: closed loop, as fast as answers come)")
	ranker := fs.Bool("ranker", true, "load a ranker, so every request re-scores --candidates items")
	portable := fs.Bool("portable-kernel", false, "use the portable Go kernel even when a SIMD one is available")
	asJSON := fs.Bool("json", false, "print one JSON object")
	return &ffcli.Command{
		Name:       "serve",
		ShortUsage: "eddy bench serve [--items 100000 --users 100000 --dim 64 --duration 10s] [--json] [flags]",
		ShortHelp:  "recommendation serving: loads synthetic state, drives HTTP on loopback",
		LongHelp: `Loads a synthetic model (--items, --users, --dim; random vectors, Zipf
popularity, --seen seen items per user, a ranker) into a scorer through the
same record decoding the Kafka consumer uses, serves GET /v1/recommendations
on a loopback port, and drives it with --concurrency clients for --duration.
Without --rate each client sends its next request when the previous one is
answered (closed loop: the maximum throughput); with --rate the clients send
on a fixed schedule and latency is measured from the scheduled send time, so
a slow server cannot hide its queueing (open loop).

alloc_per_req counts every heap allocation of the process (clients
included) divided by the requests. Served lists are encoded as for the recs
topic and discarded. No Kafka is needed.`,
		FlagSet:   fs,
		Options:   ffOptions(),
		UsageFunc: usage,
		Exec: func(ctx context.Context, _ []string) error {
			log, err := common.logger()
			if err != nil {
				return err
			}
			if *concurrency < 1 || *duration <= 0 || *k < 1 || *k > scorer.MaxK || *rate < 0 || *seen < 0 {
				return usageError{errors.New("--concurrency, --duration and --k must be positive, --k ≤ 1000, --rate and --seen ≥ 0")}
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			if *portable {
				topk.UsePortableKernel()
			}
			res, err := benchServe(ctx, cfg, scorer.SyntheticSpec{Items: *items, Users: *users, Dim: *dim, Seen: *seen, Seed: 1, Ranker: *ranker},
				*k, *duration, *concurrency, *rate, log)
			if err != nil {
				return err
			}
			if *asJSON {
				return json.NewEncoder(os.Stdout).Encode(res)
			}
			fmt.Printf("serve: %.0f req/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms, %.1f allocs/req (%d requests, %d errors, %d clients, kernel %s, %d CPUs)\n",
				res.QPS, res.P50Ms, res.P99Ms, res.MaxMs, res.AllocPerReq, res.Requests, res.Errors, res.Concurrency, res.Kernel, res.CPUs)
			return nil
		},
	}
}

// discardProducer accepts served lists without a broker.
type discardProducer struct{ n atomic.Int64 }

func (d *discardProducer) Produce(_ context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	d.n.Add(1)
	promise(r, nil)
}

func benchServe(ctx context.Context, cfg scorer.Config, spec scorer.SyntheticSpec, k int, duration time.Duration, concurrency int, rate float64, log *slog.Logger) (ServeBenchResult, error) {
	res := ServeBenchResult{Items: spec.Items, Users: spec.Users, Dim: spec.Dim, K: k, Concurrency: concurrency,
		TargetRate: rate, Kernel: topk.KernelName(), Ranker: spec.Ranker, CPUs: runtime.GOMAXPROCS(0)}
	quiet := slog.New(slog.DiscardHandler)
	st := scorer.NewState(cfg)
	t0 := time.Now()
	if err := scorer.LoadSynthetic(st, spec); err != nil {
		return res, err
	}
	res.LoadSec = time.Since(t0).Seconds()
	_, _, res.StateBytes = st.Sizes()
	reg := newRegistry()
	sc, err := scorer.New(cfg, st, reg)
	if err != nil {
		return res, err
	}
	defer sc.Close()
	dp := &discardProducer{}
	sc.PublishServedLists(dp, "bench.recs")
	defer sc.StopPublishing()
	srv := httpserver.New("127.0.0.1:0", reg, quiet)
	sc.Register(srv.Mux)
	if err := srv.Listen(); err != nil {
		return res, err
	}
	sctx, stopServer := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, 10*time.Second) }()
	defer func() { stopServer(); <-served }()

	base := "http://" + srv.Addr() + "/v1/recommendations?k=" + strconv.Itoa(k) + "&user_id=u"
	urls := make([]string, 4096)
	for i := range urls {
		urls[i] = base + strconv.Itoa((i*7919)%spec.Users)
	}
	log.Info("bench serve", "url", base, "duration", duration, "clients", concurrency, "rate", rate, "kernel", res.Kernel, "load_sec", res.LoadSec)
	transport := &http.Transport{MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency}
	hc := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	defer transport.CloseIdleConnections()

	// Warm up connections and caches.
	for i := range concurrency {
		if r, err := hc.Get(urls[i]); err == nil {
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
	}
	runtime.GC()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		latencies []time.Duration
		errs      atomic.Int64
		fallbacks atomic.Int64
	)
	lctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	start := time.Now()
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(concurrency) / rate)
	}
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1<<14)
			buf := make([]byte, 0, 4096)
			next := start.Add(time.Duration(w) * interval / time.Duration(concurrency))
			for i := w; lctx.Err() == nil; i += concurrency {
				t := time.Now()
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						time.Sleep(d)
					}
					t = next
					next = next.Add(interval)
					if lctx.Err() != nil {
						break
					}
				}
				r, err := hc.Get(urls[i%len(urls)])
				if err != nil {
					if lctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				buf = buf[:0]
				for {
					if len(buf) == cap(buf) {
						buf = append(buf, 0)[:len(buf)]
					}
					n, err := r.Body.Read(buf[len(buf):cap(buf)])
					buf = buf[:len(buf)+n]
					if err != nil {
						break
					}
				}
				r.Body.Close()
				if r.StatusCode != http.StatusOK {
					errs.Add(1)
					continue
				}
				local = append(local, time.Since(t))
				if len(buf) > 0 && containsFallback(buf) {
					fallbacks.Add(1)
				}
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&ms1)
	slices.Sort(latencies)
	res.Requests = len(latencies)
	res.Errors = errs.Load()
	res.Fallbacks = fallbacks.Load()
	res.DurationSec = elapsed.Seconds()
	res.QPS = float64(res.Requests) / elapsed.Seconds()
	res.P50Ms = percentileMs(latencies, 0.50)
	res.P99Ms = percentileMs(latencies, 0.99)
	res.MaxMs = percentileMs(latencies, 1)
	if n := res.Requests + int(res.Errors); n > 0 {
		res.AllocPerReq = float64(ms1.Mallocs-ms0.Mallocs) / float64(n)
		res.BytesPerReq = float64(ms1.TotalAlloc-ms0.TotalAlloc) / float64(n)
	}
	sc.StopPublishing()
	res.ServedListed = dp.n.Load()
	return res, nil
}

func containsFallback(b []byte) bool {
	const pat = `"fallback":true`
	for i := 0; i+len(pat) <= len(b); i++ {
		if string(b[i:i+len(pat)]) == pat {
			return true
		}
	}
	return false
}
