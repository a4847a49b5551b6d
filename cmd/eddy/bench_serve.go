package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/internal/httpserver"
	"github.com/eddyrec/eddy/scorer"
	"github.com/eddyrec/eddy/scorer/topk"
	"github.com/eddyrec/eddy/stream"
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
	Candidates   int     `json:"candidates"`
	Concurrency  int     `json:"concurrency"`
	TargetRate   float64 `json:"target_rate,omitempty"`
	Kernel       string  `json:"kernel"`
	Index        string  `json:"index"`
	Ranker       bool    `json:"ranker"`
	DurationSec  float64 `json:"duration_sec"`
	CPUs         int     `json:"cpus"`
	StateBytes   int     `json:"state_matrix_bytes"`
	LoadSec      float64 `json:"load_sec"`
	ServedListed int64   `json:"served_lists"`
	// LoadGen says where the load generator ran: "process" (a child
	// process, so the CPU and allocation figures split exactly) or
	// "inproc" (goroutines of the server's process: allocations and
	// server CPU then include the generator).
	LoadGen string `json:"loadgen"`
	// ServerCPUSec and LoadGenCPUSec are user+system CPU seconds of the
	// server process and of the load generator process during the run
	// (LoadGenCPUSec only with loadgen "process").
	ServerCPUSec  float64 `json:"server_cpu_sec"`
	LoadGenCPUSec float64 `json:"loadgen_cpu_sec,omitempty"`
	// ServerCPUPerReqUs is server CPU per answered request, in µs.
	ServerCPUPerReqUs float64 `json:"server_cpu_us_per_req"`
	// SearchPasses and MeanBatch describe the coalescer: passes over the
	// item matrix and queries scored per pass.
	SearchPasses uint64  `json:"search_passes"`
	MeanBatch    float64 `json:"search_mean_batch"`
	// GCCycles counts the server process's garbage collections during the
	// run and GCPauseMs their total stop-the-world pause.
	GCCycles  uint32  `json:"gc_cycles"`
	GCPauseMs float64 `json:"gc_pause_ms"`
	// Recs says where served lists went: "discard" (encoded as for the
	// recs topic, then dropped) or "kafka" (produced to an embedded broker).
	Recs string `json:"recs"`
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
	concurrency := fs.Int("concurrency", 16, "concurrent HTTP clients (keep-alive connections)")
	rate := fs.Float64("rate", 0, "open-loop target requests/s over all clients (0: closed loop, as fast as answers come)")
	ranker := fs.Bool("ranker", true, "load a ranker, so every request re-scores --candidates items")
	portable := fs.Bool("portable-kernel", false, "use the portable Go kernel even when a SIMD one is available")
	loadProcess := fs.Bool("load-process", true, "run the load generator as a child process (exact CPU split); false: goroutines in this process")
	target := fs.String("target", "", "only drive load against this host:port (a running eddy serve, or the parent of --load-process); no state is loaded")
	recs := fs.String("recs", "discard", "served-list sink: discard (encode, then drop) or kafka (produce to an embedded broker in this process)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the load phase (this process) to this file")
	asJSON := fs.Bool("json", false, "print one JSON object")
	return &ffcli.Command{
		Name:       "serve",
		ShortUsage: "eddy bench serve [--items 100000 --users 100000 --dim 64 --duration 10s] [--json] [flags]",
		ShortHelp:  "recommendation serving: loads synthetic state, drives HTTP on loopback",
		LongHelp: `Loads a synthetic model (--items, --users, --dim; random vectors, Zipf
popularity, --seen seen items per user, a ranker) into a scorer through the
same record decoding the Kafka consumer uses, serves GET /v1/recommendations
on a loopback port, and drives it with --concurrency keep-alive clients for
--duration. Without --rate each client sends its next request when the
previous one is answered (closed loop: the maximum throughput); with --rate
the clients send on a fixed schedule and latency is measured from the
scheduled send time, so a slow server cannot hide its queueing (open loop).

The load generator writes pre-built HTTP/1.1 requests on raw TCP
connections and parses only the status line, Content-Length and the
"fallback" flag, so that it costs little of the CPUs it shares with the
server. By default it runs as a child process (this binary with --target),
so server_cpu_sec, loadgen_cpu_sec and alloc_per_req (server process only)
split exactly; --load-process=false runs it as goroutines of this process.
--target alone drives an already running scorer (user ids u0…u<users-1>).

Served lists are encoded as for the recs topic and then, with --recs
discard (the default), dropped; --recs kafka produces them to an embedded
broker in this process (whose CPU then counts as the server's).`,
		FlagSet:   fs,
		Options:   ffOptions(),
		UsageFunc: usage,
		Exec: func(ctx context.Context, _ []string) error {
			log, err := common.logger()
			if err != nil {
				return err
			}
			if *concurrency < 1 || *duration <= 0 || *k < 1 || *k > scorer.MaxK || *rate < 0 || *seen < 0 || *users < 1 {
				return usageError{errors.New("--concurrency, --duration, --users and --k must be positive, --k ≤ 1000, --rate and --seen ≥ 0")}
			}
			if *recs != "discard" && *recs != "kafka" {
				return usageError{fmt.Errorf("--recs %q: want discard or kafka", *recs)}
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			load := loadSpec{Addr: *target, Users: *users, K: *k, Concurrency: *concurrency, Rate: *rate, Duration: *duration}
			var res ServeBenchResult
			if *target != "" {
				lr, err := driveLoad(ctx, load)
				if err != nil {
					return err
				}
				res = lr.result(load)
			} else {
				if *portable {
					topk.UsePortableKernel()
				}
				opts := benchServeOptions{Config: cfg, Spec: scorer.SyntheticSpec{Items: *items, Users: *users, Dim: *dim, Seen: *seen, Seed: 1, Ranker: *ranker},
					K: *k, Duration: *duration, Concurrency: *concurrency, Rate: *rate, Recs: *recs, Log: log}
				if *loadProcess {
					exe, err := os.Executable()
					if err != nil {
						return fmt.Errorf("bench serve: find this binary for the load process: %w", err)
					}
					opts.LoadCommand = []string{exe, "bench", "serve"}
				}
				if *cpuProfile != "" {
					f, err := os.Create(*cpuProfile)
					if err != nil {
						return fmt.Errorf("bench serve: %w", err)
					}
					defer f.Close()
					opts.CPUProfile = f
				}
				res, err = benchServe(ctx, opts)
				if err != nil {
					return err
				}
			}
			if *asJSON {
				return json.NewEncoder(os.Stdout).Encode(res)
			}
			fmt.Printf("serve: %.0f req/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms, %.1f allocs/req, server %.0f µs CPU/req, load generator %.1f CPU s (%d requests, %d errors, %d clients, kernel %s, index %s, mean batch %.1f, %d CPUs)\n",
				res.QPS, res.P50Ms, res.P99Ms, res.MaxMs, res.AllocPerReq, res.ServerCPUPerReqUs, res.LoadGenCPUSec, res.Requests, res.Errors, res.Concurrency, res.Kernel, res.Index, res.MeanBatch, res.CPUs)
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

// countingProducer forwards to a real client and counts acknowledged lists.
type countingProducer struct {
	p scorer.Producer
	n atomic.Int64
}

func (c *countingProducer) Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	c.p.Produce(ctx, r, func(r *kgo.Record, err error) {
		if err == nil {
			c.n.Add(1)
		}
		promise(r, err)
	})
}

// benchServeOptions configures one benchServe run.
type benchServeOptions struct {
	Config      scorer.Config
	Spec        scorer.SyntheticSpec
	K           int
	Duration    time.Duration
	Concurrency int
	Rate        float64
	// Recs is the served-list sink: "discard" or "kafka".
	Recs string
	// LoadCommand, when set, runs the load generator as a child process:
	// the command (this binary's `bench serve`) gets --target and the load
	// flags appended and must print a ServeBenchResult. Empty: goroutines.
	LoadCommand []string
	// CPUProfile, when set, receives a CPU profile of the load phase.
	CPUProfile io.Writer
	Log        *slog.Logger
}

func benchServe(ctx context.Context, o benchServeOptions) (ServeBenchResult, error) {
	cfg, spec := o.Config, o.Spec
	res := ServeBenchResult{Items: spec.Items, Users: spec.Users, Dim: spec.Dim, K: o.K, Candidates: cfg.Candidates, Concurrency: o.Concurrency,
		TargetRate: o.Rate, Kernel: cfg.IndexKernel(), Index: cfg.Index, Ranker: spec.Ranker, CPUs: runtime.GOMAXPROCS(0), LoadGen: "inproc", Recs: o.Recs}
	if res.Recs == "" {
		res.Recs = "discard"
	}
	if len(o.LoadCommand) > 0 {
		res.LoadGen = "process"
	}
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
	var published func() int64
	switch res.Recs {
	case "discard":
		dp := &discardProducer{}
		sc.PublishServedLists(dp, "bench.recs")
		published = dp.n.Load
	case "kafka":
		cl, closeKafka, err := benchRecsProducer(ctx, quiet)
		if err != nil {
			return res, err
		}
		defer closeKafka()
		cp := &countingProducer{p: cl}
		sc.PublishServedLists(cp, benchRecsTopic)
		published = func() int64 {
			fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_ = cl.Flush(fctx)
			return cp.n.Load()
		}
	default:
		return res, fmt.Errorf("bench serve: recs sink %q: want discard or kafka", res.Recs)
	}
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

	load := loadSpec{Addr: srv.Addr(), Users: spec.Users, K: o.K, Concurrency: o.Concurrency, Rate: o.Rate, Duration: o.Duration}
	o.Log.Info("bench serve", "addr", load.Addr, "duration", o.Duration, "clients", o.Concurrency, "rate", o.Rate,
		"kernel", res.Kernel, "index", res.Index, "loadgen", res.LoadGen, "load_sec", res.LoadSec)

	// Warm the caches and the search path before measuring.
	warm := load
	warm.Duration, warm.Rate = 300*time.Millisecond, 0
	if _, err := driveLoad(ctx, warm); err != nil {
		return res, err
	}
	runtime.GC()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	passes0, queries0 := sc.SearchStats()
	cpu0 := processCPU()
	if o.CPUProfile != nil {
		if err := pprof.StartCPUProfile(o.CPUProfile); err != nil {
			return res, fmt.Errorf("bench serve: cpu profile: %w", err)
		}
	}
	var lr loadResult
	if len(o.LoadCommand) > 0 {
		lr, err = driveLoadProcess(ctx, o.LoadCommand, load)
	} else {
		lr, err = driveLoad(ctx, load)
	}
	if o.CPUProfile != nil {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return res, err
	}
	cpu := processCPU() - cpu0
	runtime.ReadMemStats(&ms1)
	passes1, queries1 := sc.SearchStats()

	lres := lr.result(load)
	res.QPS, res.P50Ms, res.P99Ms, res.MaxMs = lres.QPS, lres.P50Ms, lres.P99Ms, lres.MaxMs
	res.Requests, res.Errors, res.Fallbacks, res.DurationSec = lres.Requests, lres.Errors, lres.Fallbacks, lres.DurationSec
	res.LoadGenCPUSec = lres.LoadGenCPUSec
	res.ServerCPUSec = cpu.Seconds()
	if res.LoadGen == "inproc" {
		res.LoadGenCPUSec = 0 // not separable: it is inside server_cpu_sec
	}
	if n := res.Requests + int(res.Errors); n > 0 {
		res.AllocPerReq = float64(ms1.Mallocs-ms0.Mallocs) / float64(n)
		res.BytesPerReq = float64(ms1.TotalAlloc-ms0.TotalAlloc) / float64(n)
		res.ServerCPUPerReqUs = cpu.Seconds() * 1e6 / float64(n)
	}
	res.GCCycles = ms1.NumGC - ms0.NumGC
	res.GCPauseMs = float64(ms1.PauseTotalNs-ms0.PauseTotalNs) / 1e6
	res.SearchPasses = passes1 - passes0
	if res.SearchPasses > 0 {
		res.MeanBatch = float64(queries1-queries0) / float64(res.SearchPasses)
	}
	sc.StopPublishing()
	res.ServedListed = published()
	return res, nil
}

// processCPU is the user+system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadSpec is what the load generator drives.
type loadSpec struct {
	Addr        string
	Users       int
	K           int
	Concurrency int
	Rate        float64
	Duration    time.Duration
}

// loadResult is what one load run measured.
type loadResult struct {
	latencies []time.Duration // sorted
	requests  int
	errors    int64
	fallbacks int64
	elapsed   time.Duration
	cpu       time.Duration // the generator's process CPU during the run
	// child holds a child process's own summary (latencies stay there).
	child *ServeBenchResult
}

func (lr loadResult) result(l loadSpec) ServeBenchResult {
	if lr.child != nil {
		return *lr.child
	}
	r := ServeBenchResult{Requests: lr.requests, Errors: lr.errors, Fallbacks: lr.fallbacks, DurationSec: lr.elapsed.Seconds(),
		Users: l.Users, K: l.K, Concurrency: l.Concurrency, TargetRate: l.Rate, CPUs: runtime.GOMAXPROCS(0), LoadGen: "target",
		LoadGenCPUSec: lr.cpu.Seconds()}
	if lr.elapsed > 0 {
		r.QPS = float64(lr.requests) / lr.elapsed.Seconds()
	}
	r.P50Ms = percentileMs(lr.latencies, 0.50)
	r.P99Ms = percentileMs(lr.latencies, 0.99)
	r.MaxMs = percentileMs(lr.latencies, 1)
	return r
}

// driveLoadProcess runs the load generator as a child process and reads
// its JSON summary.
func driveLoadProcess(ctx context.Context, command []string, l loadSpec) (loadResult, error) {
	args := append(slices.Clone(command[1:]), "--target", l.Addr, "--users", strconv.Itoa(l.Users), "--k", strconv.Itoa(l.K),
		"--concurrency", strconv.Itoa(l.Concurrency), "--rate", strconv.FormatFloat(l.Rate, 'g', -1, 64),
		"--duration", l.Duration.String(), "--json", "--log-level", "warn")
	cmd := exec.CommandContext(ctx, command[0], args...)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return loadResult{}, fmt.Errorf("bench serve: load process %v: %w", args, err)
	}
	var r ServeBenchResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return loadResult{}, fmt.Errorf("bench serve: load process output %q: %w", stdout.Bytes(), err)
	}
	return loadResult{child: &r}, nil
}

// driveLoad sends GET /v1/recommendations for users u0…u<Users-1> (a fixed
// permutation) on Concurrency keep-alive connections for Duration.
func driveLoad(ctx context.Context, l loadSpec) (loadResult, error) {
	// Pre-built requests: the generator only writes bytes.
	reqs := make([][]byte, min(4096, l.Users))
	for i := range reqs {
		reqs[i] = fmt.Appendf(nil, "GET /v1/recommendations?k=%d&user_id=u%d HTTP/1.1\r\nHost: %s\r\n\r\n", l.K, (i*7919)%l.Users, l.Addr)
	}
	clients := make([]*rawClient, l.Concurrency)
	for i := range clients {
		clients[i] = &rawClient{addr: l.Addr}
		// One request per connection before the clock starts: connects
		// and fails early when the target is wrong.
		if _, _, err := clients[i].do(reqs[i%len(reqs)]); err != nil {
			for _, c := range clients[:i+1] {
				c.close()
			}
			return loadResult{}, fmt.Errorf("bench serve: warm-up request to %s: %w", l.Addr, err)
		}
	}
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		latencies []time.Duration
		errs      atomic.Int64
		fallbacks atomic.Int64
	)
	lctx, cancel := context.WithTimeout(ctx, l.Duration)
	defer cancel()
	cpu0 := processCPU()
	start := time.Now()
	var interval time.Duration
	if l.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(l.Concurrency) / l.Rate)
	}
	for w, c := range clients {
		wg.Go(func() {
			local := make([]time.Duration, 0, 1<<14)
			next := start.Add(time.Duration(w) * interval / time.Duration(l.Concurrency))
			for i := w; lctx.Err() == nil; i += l.Concurrency {
				t := time.Now()
				if interval > 0 {
					if d := next.Sub(t); d > 0 {
						time.Sleep(d)
					}
					t = next
					next = next.Add(interval)
					if lctx.Err() != nil {
						break
					}
				}
				code, body, err := c.do(reqs[i%len(reqs)])
				if err != nil || code != 200 {
					if lctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				local = append(local, time.Since(t))
				if bytes.Contains(body, []byte(`"fallback":true`)) {
					fallbacks.Add(1)
				}
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	lr := loadResult{elapsed: time.Since(start), cpu: processCPU() - cpu0, errors: errs.Load(), fallbacks: fallbacks.Load()}
	slices.Sort(latencies)
	lr.latencies, lr.requests = latencies, len(latencies)
	return lr, nil
}

// rawClient is a minimal HTTP/1.1 keep-alive client for the load
// generator: it writes a pre-built request and reads one response with a
// Content-Length body, reusing its buffers, so that it allocates nothing
// per request. It is not a general HTTP client.
type rawClient struct {
	addr string
	conn net.Conn
	br   *bufio.Reader
	body []byte
}

func (c *rawClient) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// do sends req and returns the status code and the body (valid until the
// next call). After an error the connection is closed and the next call
// dials again.
func (c *rawClient) do(req []byte) (int, []byte, error) {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
		if err != nil {
			return 0, nil, err
		}
		c.conn = conn
		if c.br == nil {
			c.br = bufio.NewReaderSize(conn, 16<<10)
		} else {
			c.br.Reset(conn)
		}
	}
	code, body, err := c.roundTrip(req)
	if err != nil {
		c.close()
	}
	return code, body, err
}

func (c *rawClient) roundTrip(req []byte) (int, []byte, error) {
	if err := c.conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return 0, nil, err
	}
	if _, err := c.conn.Write(req); err != nil {
		return 0, nil, err
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, nil, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	n, keep := -1, true
	for {
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return 0, nil, err
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := headerValue(line, "content-length"); ok {
			if n, err = strconv.Atoi(string(v)); err != nil || n < 0 {
				return 0, nil, fmt.Errorf("bad Content-Length %q", v)
			}
		} else if v, ok := headerValue(line, "connection"); ok && bytes.EqualFold(v, []byte("close")) {
			keep = false
		}
	}
	if n < 0 {
		return 0, nil, errors.New("response without Content-Length")
	}
	if cap(c.body) < n {
		c.body = make([]byte, n)
	}
	body := c.body[:n]
	if _, err := io.ReadFull(c.br, body); err != nil {
		return 0, nil, err
	}
	if !keep {
		c.close()
	}
	return code, body, nil
}

// headerValue returns the trimmed value of line if it is header name
// (case-insensitive).
func headerValue(line []byte, name string) ([]byte, bool) {
	if len(line) <= len(name) || line[len(name)] != ':' || !bytes.EqualFold(line[:len(name)], []byte(name)) {
		return nil, false
	}
	return bytes.TrimSpace(line[len(name)+1:]), true
}

// benchRecsTopic is the served-list topic on the bench's embedded broker.
const benchRecsTopic = "bench.recs"

// benchRecsProducer starts an in-memory embedded broker with the recs topic
// (8 partitions, as `eddy up` lays out) and returns a producer configured as
// `eddy serve` configures its own (franz-go defaults: acks=all, idempotent).
func benchRecsProducer(ctx context.Context, log *slog.Logger) (*kgo.Client, func(), error) {
	b, err := stream.StartEmbedded(stream.EmbeddedConfig{Addr: "127.0.0.1:0", DefaultPartitions: 8, Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("bench serve: embedded broker: %w", err)
	}
	cc := stream.DefaultClientConfig()
	cc.Brokers = []string{b.Addr()}
	cl, err := cc.NewClient()
	if err != nil {
		b.Close()
		return nil, nil, err
	}
	spec := stream.TopicSpec{Name: benchRecsTopic, Partitions: 8, ReplicationFactor: 1}
	if _, err := stream.EnsureTopics(ctx, kadm.NewClient(cl), []stream.TopicSpec{spec}); err != nil {
		cl.Close()
		b.Close()
		return nil, nil, err
	}
	return cl, func() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = cl.Flush(fctx)
		cancel()
		cl.Close()
		b.Close()
	}, nil
}
