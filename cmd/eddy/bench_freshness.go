package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	dto "github.com/prometheus/client_model/go"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/ingest"
	"github.com/eddyrec/eddy/internal/synth"
)

// FreshnessBenchResult is what `eddy bench freshness --json` prints. A
// sample is the time from the 202 of a POST /v1/events (the event is
// acknowledged by Kafka) until the scorer's hot state holds the user's
// vector with that event learnt (its update counter reached it).
type FreshnessBenchResult struct {
	P50Ms  float64 `json:"p50_ms"`
	P95Ms  float64 `json:"p95_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
	MeanMs float64 `json:"mean_ms"`
	// Samples counts the samples that completed; Timeouts those whose
	// event the scorer did not reflect within --sample-timeout.
	Samples         int `json:"samples"`
	Timeouts        int `json:"timeouts"`
	EventsPerSample int `json:"events_per_sample"`
	// AckP50Ms and AckP99Ms are the probes' POST → 202 times (before the
	// clock starts; not part of the freshness figures).
	AckP50Ms float64 `json:"ack_p50_ms"`
	AckP99Ms float64 `json:"ack_p99_ms"`
	// UserStage* describe the learner's user stage during the samples,
	// from its eddy_stream_* histograms: mean records per batch (one Kafka
	// transaction), and the p50/p99 of a batch's processing and of its
	// commit (Kafka transaction, then the local write-back hand-off).
	UserStageBatches     uint64  `json:"user_stage_batches"`
	UserStageMeanRecords float64 `json:"user_stage_mean_batch_records"`
	UserStageApplyP99Ms  float64 `json:"user_stage_apply_p99_ms"`
	UserStageCommitP50Ms float64 `json:"user_stage_commit_p50_ms"`
	UserStageCommitP99Ms float64 `json:"user_stage_commit_p99_ms"`
	Partitions           int     `json:"partitions"`
	// BackgroundRate is the target rate of synthetic traffic posted
	// through the ingest API beside the probes (events/s), and
	// BackgroundEvents how many it posted while the samples ran.
	BackgroundRate   float64 `json:"background_rate"`
	BackgroundEvents int64   `json:"background_events"`
	WarmupEvents     int     `json:"warmup_events"`
	DurationSec      float64 `json:"duration_sec"`
	// ProcessCPUSec is the CPU time (user + system) of this process, which
	// runs broker, roles and load, during the sampling phase: compare it
	// with duration_sec × cpus to see how busy the machine was with Eddy.
	ProcessCPUSec float64 `json:"process_cpu_sec"`
	CPUs          int     `json:"cpus"`
	// LoadAvg1m is the machine's 1-minute load average at the end of the
	// run (0 where there is no /proc/loadavg).
	LoadAvg1m float64 `json:"load_avg_1m"`
	Broker    string  `json:"broker"`
}

// freshnessOptions configures benchFreshness.
type freshnessOptions struct {
	Samples         int
	Duration        time.Duration // bound on the sampling phase
	EventsPerSample int
	SampleTimeout   time.Duration
	// MaxGap bounds the random pause between two samples, so that samples
	// do not lock onto the period of a batch cycle.
	MaxGap         time.Duration
	BackgroundRate float64
	WarmupEvents   int
	// CPUProfile, when set, receives a CPU profile of the sampling phase.
	CPUProfile io.Writer
	Log        *slog.Logger
}

func newBenchFreshnessCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy bench freshness", flag.ContinueOnError)
	var uf upFlags
	uf.register(fs)
	uf.kf.embeddedAddr = "127.0.0.1:0"
	fs.Lookup("embedded-broker-addr").DefValue = uf.kf.embeddedAddr
	_ = fs.Set("embedded-broker-addr", uf.kf.embeddedAddr)
	var o freshnessOptions
	fs.IntVar(&o.Samples, "samples", 200, "freshness samples to take")
	fs.DurationVar(&o.Duration, "duration", 2*time.Minute, "stop sampling after this long even if fewer --samples were taken")
	fs.IntVar(&o.EventsPerSample, "events-per-sample", 1, "events posted in the one request of a sample (all for the sample's user)")
	fs.DurationVar(&o.SampleTimeout, "sample-timeout", 5*time.Second, "a sample whose event the scorer has not reflected after this long counts as a timeout")
	fs.DurationVar(&o.MaxGap, "max-gap", 50*time.Millisecond, "most random pause between two samples")
	fs.Float64Var(&o.BackgroundRate, "background-rate", 200, "synthetic events/s posted through the ingest API during the samples (0: none)")
	fs.IntVar(&o.WarmupEvents, "warmup-events", 20_000, "synthetic events posted before sampling, so that items, users and the ranker exist")
	asJSON := fs.Bool("json", false, "print one JSON object")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the sampling phase to this file")
	return &ffcli.Command{
		Name:       "freshness",
		ShortUsage: "eddy bench freshness [--samples 200] [--background-rate 200] [--json] [flags of eddy up]",
		ShortHelp:  "event acknowledged → scorer reflects it, all-in-one: p50/p99 ms",
		LongHelp: `Runs 'eddy up' in this process (embedded broker unless --brokers, state in a
temporary --data-dir, HTTP on a loopback port), waits for /readyz, posts
--warmup-events synthetic events through the ingest API and then, while a
background generator posts --background-rate events/s, takes --samples
samples: post --events-per-sample click events for one probe user to
/v1/events, start the clock when the 202 arrives (Kafka acknowledged
them), and stop it when the scorer's in-memory state holds that user's
vector with the events learnt (its update counter, polled every 0.5 ms).
The path measured is ingest → events topic → learner user stage (one Kafka
transaction per batch) → model.users (read_committed) → scorer.

Every flag of 'eddy up' applies (e.g. --learner-max-batch-records,
--partitions), so the effect of a setting on freshness can be measured.
Prints p50/p95/p99/max in ms, the samples and timeouts, and the user
stage's batch figures over the sampling phase. The DESIGN target is
p99 < 100 ms all-in-one.`,
		FlagSet:   fs,
		Options:   ffOptions(),
		UsageFunc: usage,
		Exec: func(ctx context.Context, _ []string) error {
			log, err := uf.common.logger()
			if err != nil {
				return err
			}
			if o.Samples < 1 || o.Duration <= 0 || o.EventsPerSample < 1 || o.EventsPerSample > 1000 || o.SampleTimeout <= 0 ||
				o.MaxGap < 0 || o.BackgroundRate < 0 || o.WarmupEvents < 0 {
				return usageError{errors.New("--samples, --duration and --sample-timeout must be positive, --events-per-sample 1–1000, --max-gap, --background-rate and --warmup-events ≥ 0")}
			}
			dir, err := os.MkdirTemp("", "eddy-bench-freshness-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			uf.kf.dataDir = dir
			roles, err := uf.roles(fs)
			if err != nil {
				return err
			}
			o.Log = log
			if *cpuProfile != "" {
				f, err := os.Create(*cpuProfile)
				if err != nil {
					return fmt.Errorf("bench freshness: %w", err)
				}
				defer f.Close()
				o.CPUProfile = f
			}
			res, err := benchFreshness(ctx, uf.kf, roles, o)
			if err != nil {
				return err
			}
			if *asJSON {
				return json.NewEncoder(os.Stdout).Encode(res)
			}
			fmt.Printf("freshness: p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms (%d samples, %d timeouts, %d events each, background %.0f events/s, %d partitions, %d CPUs, load %.2f); user stage: %.1f records/batch, commit p50 %.1f ms p99 %.1f ms\n",
				res.P50Ms, res.P95Ms, res.P99Ms, res.MaxMs, res.Samples, res.Timeouts, res.EventsPerSample, res.BackgroundRate,
				res.Partitions, res.CPUs, res.LoadAvg1m, res.UserStageMeanRecords, res.UserStageCommitP50Ms, res.UserStageCommitP99Ms)
			return nil
		},
	}
}

// benchFreshness starts `eddy up` with roles on kf (whose data dir must be
// fresh), warms it up and takes the samples. Progress goes to o.Log.
func benchFreshness(ctx context.Context, kf *kafkaFlags, roles upRoles, o freshnessOptions) (FreshnessBenchResult, error) {
	res := FreshnessBenchResult{EventsPerSample: o.EventsPerSample, Partitions: int(kf.layout.Partitions),
		BackgroundRate: o.BackgroundRate, WarmupEvents: o.WarmupEvents, CPUs: runtime.GOMAXPROCS(0)}
	log := o.Log
	quiet := slog.New(slog.DiscardHandler)
	up, err := startUp(ctx, kf, roles, "127.0.0.1:0", quiet)
	if err != nil {
		return res, err
	}
	defer up.close()
	res.Broker = kf.client.Brokers[0]
	sctx, stopServer := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- up.srv.Serve(sctx, 10*time.Second) }()
	defer func() { stopServer(); <-served }()
	url := "http://" + up.srv.Addr()
	transport := &http.Transport{MaxIdleConnsPerHost: 4}
	defer transport.CloseIdleConnections()
	hc := &http.Client{Transport: transport, Timeout: 30 * time.Second}

	log.Info("bench freshness: waiting for /readyz", "url", url, "broker", res.Broker, "partitions", res.Partitions)
	if err := waitReadyz(ctx, hc, url, 2*time.Minute); err != nil {
		return res, err
	}

	// Traffic of the synthetic generator, its event time starting now and
	// advancing with the wall clock at the background rate.
	gcfg := synth.DefaultConfig()
	gcfg.Start = time.Now().UTC().Truncate(time.Millisecond)
	if o.BackgroundRate > 0 {
		gcfg.MeanInterEvent = time.Duration(float64(time.Second) / o.BackgroundRate)
	}
	gen, err := synth.New(gcfg)
	if err != nil {
		return res, err
	}
	if o.WarmupEvents > 0 {
		log.Info("bench freshness: warm-up", "events", o.WarmupEvents)
		wc := &ingest.Client{URL: url, HTTP: hc, MaxRetries: 100}
		evs := make([]event.Event, 500)
		for sent := 0; sent < o.WarmupEvents; {
			n := min(len(evs), o.WarmupEvents-sent)
			for i := range n {
				gen.Next(&evs[i])
				evs[i].Time = time.Now() // the warm-up is compressed into now
			}
			if _, err := wc.Post(ctx, evs[:n]); err != nil {
				return res, fmt.Errorf("bench freshness: warm-up: %w", err)
			}
			sent += n
		}
	}

	// Background traffic: the same generator settings with another seed,
	// its event time from now on.
	bctx, stopBackground := context.WithCancel(ctx)
	var (
		bwg  sync.WaitGroup
		bErr error
	)
	defer func() { stopBackground(); bwg.Wait() }()
	sink := &countingSink{s: httpSink{c: &ingest.Client{URL: url, HTTP: hc, MaxRetries: 100}, log: quiet}, first: make(chan struct{})}
	if o.BackgroundRate > 0 {
		gcfg.Start = time.Now().UTC().Truncate(time.Millisecond)
		gcfg.Seed++
		// About 50 requests a second: a steady load, not bursts.
		batch := int(min(max(o.BackgroundRate/50, 1), 500))
		bwg.Go(func() {
			_, bErr = runGen(bctx, gcfg, sink, 0, o.BackgroundRate, batch, quiet)
		})
		// Let the generator set up (a second of CPU) before the clock
		// runs.
		select {
		case <-sink.first:
		case <-time.After(30 * time.Second):
			return res, errors.New("bench freshness: background traffic did not start within 30 s")
		}
	}

	p := newFreshnessProber(url, hc, up, gen, res.Partitions, o)
	// One unrecorded round over the probe users: when a probe is
	// reflected, its partition of the user stage has applied the warm-up
	// before it. The pool spans every partition with high probability.
	log.Info("bench freshness: settling", "probe_users", len(p.users))
	for i := range p.users {
		if _, _, err := p.sample(ctx, i); err != nil {
			return res, err
		}
	}

	log.Info("bench freshness: sampling", "samples", o.Samples, "background_rate", o.BackgroundRate)
	before, err := up.reg.Gather()
	if err != nil {
		return res, err
	}
	if o.CPUProfile != nil {
		if err := pprof.StartCPUProfile(o.CPUProfile); err != nil {
			return res, err
		}
		defer pprof.StopCPUProfile()
	}
	var lat, acks []time.Duration
	cpu0, bsent0 := processCPU(), sink.n.Load()
	sampling := time.Now()
	lastLog := sampling
	rng := rand.New(rand.NewPCG(uint64(sampling.UnixNano()), 7))
	for i := 0; len(lat)+res.Timeouts < o.Samples && time.Since(sampling) < o.Duration; i++ {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if o.MaxGap > 0 {
			time.Sleep(time.Duration(rng.Int64N(int64(o.MaxGap))))
		}
		d, ack, err := p.sample(ctx, i%len(p.users))
		switch {
		case errors.Is(err, errSampleTimeout):
			res.Timeouts++
		case err != nil:
			return res, err
		default:
			lat = append(lat, d)
			acks = append(acks, ack)
		}
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			log.Info("bench freshness: progress", "samples", len(lat), "timeouts", res.Timeouts)
		}
	}
	elapsed := time.Since(sampling)
	res.ProcessCPUSec = (processCPU() - cpu0).Seconds()
	res.BackgroundEvents = sink.n.Load() - bsent0
	after, err := up.reg.Gather()
	if err != nil {
		return res, err
	}
	stopBackground()
	bwg.Wait()
	if bErr != nil {
		return res, fmt.Errorf("bench freshness: background traffic: %w", bErr)
	}
	res.DurationSec = elapsed.Seconds()
	res.Samples = len(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	if len(lat) > 0 {
		res.MeanMs = float64(sum) / float64(len(lat)) / float64(time.Millisecond)
	}
	slices.Sort(lat)
	slices.Sort(acks)
	res.P50Ms, res.P95Ms = percentileMs(lat, 0.50), percentileMs(lat, 0.95)
	res.P99Ms, res.MaxMs = percentileMs(lat, 0.99), percentileMs(lat, 1)
	res.AckP50Ms, res.AckP99Ms = percentileMs(acks, 0.50), percentileMs(acks, 0.99)

	group := roles.learner.UsersGroup
	if h := histogramDelta(before, after, "eddy_stream_batch_records", group); h != nil && h.GetSampleCount() > 0 {
		res.UserStageBatches = h.GetSampleCount()
		res.UserStageMeanRecords = h.GetSampleSum() / float64(h.GetSampleCount())
	}
	if h := histogramDelta(before, after, "eddy_stream_apply_seconds", group); h != nil {
		res.UserStageApplyP99Ms = quantileOf(h, 0.99) * 1000
	}
	if h := histogramDelta(before, after, "eddy_stream_commit_seconds", group); h != nil {
		res.UserStageCommitP50Ms = quantileOf(h, 0.50) * 1000
		res.UserStageCommitP99Ms = quantileOf(h, 0.99) * 1000
	}
	res.LoadAvg1m = loadAvg1m()
	return res, nil
}

// countingSink counts the events its sink took and closes first after
// the first batch.
type countingSink struct {
	s     eventSink
	n     atomic.Int64
	first chan struct{}
}

func (c *countingSink) send(ctx context.Context, events []event.Event) error {
	if err := c.s.send(ctx, events); err != nil {
		return err
	}
	if c.n.Add(int64(len(events))) == int64(len(events)) {
		close(c.first)
	}
	return nil
}

var errSampleTimeout = errors.New("bench freshness: the scorer did not reflect the event in time")

// freshnessProber posts probe events and watches the scorer's state.
type freshnessProber struct {
	c       *ingest.Client
	up      *upSystem
	gen     *synth.Generator
	o       freshnessOptions
	users   []string // probe user ids, only ever written to by the prober
	retired int
	want    map[string]uint64 // update counter each probe user will reach
	evs     []event.Event
	seq     int
}

func newFreshnessProber(url string, hc *http.Client, up *upSystem, gen *synth.Generator, partitions int, o freshnessOptions) *freshnessProber {
	p := &freshnessProber{c: &ingest.Client{URL: url, HTTP: hc}, up: up, gen: gen, o: o,
		want: map[string]uint64{}, evs: make([]event.Event, o.EventsPerSample)}
	for i := range 4 * partitions {
		p.users = append(p.users, "freshness-probe-"+strconv.Itoa(i))
	}
	return p
}

// sample posts the probe events of pool slot i and returns the time from
// their acknowledgement until the scorer reflects them, and the time the
// POST took. A probe user that timed out is replaced by a new one: its
// late update must not count for the next sample.
func (p *freshnessProber) sample(ctx context.Context, i int) (time.Duration, time.Duration, error) {
	user := p.users[i]
	cfg := p.gen.Config()
	now := time.Now()
	for j := range p.evs {
		p.seq++
		p.evs[j] = event.Event{EventID: "freshness-" + strconv.Itoa(p.seq), UserID: user,
			// The synthetic catalogue's items, so that the item replica
			// knows them.
			ItemID: p.gen.ItemID(p.seq * 7919 % cfg.Items), Type: event.Click, Time: now}
	}
	sent := time.Now()
	r, err := p.c.Post(ctx, p.evs)
	if err != nil {
		return 0, 0, fmt.Errorf("bench freshness: post probe: %w", err)
	}
	acked := time.Now()
	if r.Accepted != len(p.evs) {
		return 0, 0, fmt.Errorf("bench freshness: %d of %d probe events accepted: %+v", r.Accepted, len(p.evs), r.Rejected)
	}
	want := p.want[user] + uint64(len(p.evs))
	p.want[user] = want
	st := p.up.scorer
	for {
		if n, ok := st.UserUpdates(user); ok && n >= want {
			return time.Since(acked), acked.Sub(sent), nil
		}
		if time.Since(acked) > p.o.SampleTimeout {
			p.retired++
			p.users[i] = "freshness-probe-r" + strconv.Itoa(p.retired)
			return 0, 0, errSampleTimeout
		}
		if ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
		time.Sleep(500 * time.Microsecond)
	}
}

// waitReadyz polls url/readyz until it answers 200.
func waitReadyz(ctx context.Context, hc *http.Client, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		resp, err := hc.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench freshness: not ready within %v (last: %s)", timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// histogramDelta returns the histogram name with label group=group as
// observed in after minus before (cumulative buckets subtract), or nil.
func histogramDelta(before, after []*dto.MetricFamily, name, group string) *dto.Histogram {
	find := func(mfs []*dto.MetricFamily) *dto.Histogram {
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "group" && l.GetValue() == group {
						return m.GetHistogram()
					}
				}
			}
		}
		return nil
	}
	a := find(after)
	if a == nil {
		return nil
	}
	b := find(before)
	if b == nil {
		return a
	}
	count, sum := a.GetSampleCount()-b.GetSampleCount(), a.GetSampleSum()-b.GetSampleSum()
	d := &dto.Histogram{SampleCount: &count, SampleSum: &sum}
	for i, ab := range a.GetBucket() {
		c := ab.GetCumulativeCount()
		if i < len(b.GetBucket()) {
			c -= b.GetBucket()[i].GetCumulativeCount()
		}
		ub := ab.GetUpperBound()
		d.Bucket = append(d.Bucket, &dto.Bucket{CumulativeCount: &c, UpperBound: &ub})
	}
	return d
}

// loadAvg1m is the 1-minute load average from /proc/loadavg (0 when
// unavailable).
func loadAvg1m() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
