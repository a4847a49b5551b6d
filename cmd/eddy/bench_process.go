package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/features"
	"github.com/eddyrec/eddy/internal/synth"
	"github.com/eddyrec/eddy/stream"
)

// ProcessBenchResult is what `eddy bench process --json` prints.
type ProcessBenchResult struct {
	// EventsPerSec is events through both stages (user stage applied and
	// committed, item stage applied) per second of processing, from the
	// start of the stages until the item stage applied the last update.
	EventsPerSec float64 `json:"events_per_sec"`
	// P99BatchMs is the 99th percentile of the user stage's batch cycle
	// (compute + Kafka transaction + local write-back hand-off), from the
	// eddy_features_user_batch_cycle_seconds histogram (interpolated within
	// its bucket, as histogram_quantile does).
	P99BatchMs float64 `json:"p99_batch_ms"`
	// P99ItemBatchMs is the same for the item stage.
	P99ItemBatchMs float64 `json:"p99_item_batch_ms"`
	// StateBytes is the disk space of both stages' state stores after the
	// run (allocated blocks).
	StateBytes int64 `json:"state_bytes"`
	// PeakRSSBytes is the process's peak resident memory (VmHWM): broker,
	// producer and stages together.
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	Events       int     `json:"events"`
	Users        int     `json:"users"`
	Items        int     `json:"items"`
	Partitions   int     `json:"partitions"`
	BatchRecords int     `json:"batch_records"`
	DurationSec  float64 `json:"duration_sec"`
	ProduceSec   float64 `json:"produce_sec"`
	Snapshots    uint64  `json:"snapshots"`
	// ChangelogRecords counts state changes written to both stages'
	// changelogs (one per changed key per batch).
	ChangelogRecords float64 `json:"changelog_records"`
	CPUs             int     `json:"cpus"`
	Broker           string  `json:"broker"`
	// CPUSeconds is the user + system CPU time of this process (stages and
	// the embedded broker, when it runs here) during processing, from the
	// start of the stages until the item stage applied the last update
	// (getrusage); CPUMicrosPerEvent divides it by Events.
	CPUSeconds        float64 `json:"cpu_seconds"`
	CPUMicrosPerEvent float64 `json:"cpu_us_per_event"`
	// DriftSample is --drift-sample; DriftCopies the events the user stage
	// copied to the drift input topic.
	DriftSample float64 `json:"drift_sample"`
	DriftCopies uint64  `json:"drift_copies"`
}

func newBenchProcessCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy bench process", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	kf := newKafkaFlags()
	kf.register(fs)
	kf.embeddedAddr = "127.0.0.1:0"
	fs.Lookup("embedded-broker-addr").DefValue = kf.embeddedAddr
	_ = fs.Set("embedded-broker-addr", kf.embeddedAddr)
	cfg := features.DefaultConfig()
	cfg.RegisterFlags(fs)
	events := fs.Int("events", 1_000_000, "synthetic events to produce and process")
	users := fs.Int("users", 10_000, "synthetic users")
	items := fs.Int("items", 5_000, "synthetic items")
	seed := fs.Uint64("seed", 1, "generator seed")
	asJSON := fs.Bool("json", false, "print one JSON object")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the processing phase to this file")
	spec := fs.String("spec", "", "more generator options as key=value,... (as eddy gen --spec; e.g. inter-event=2.5us for event times at the processing pace)")
	driftSample := fs.Float64("drift-sample", 0, "also copy the events of this share of users to a drift input topic, as eddy process --drift-sample does (0: off)")
	return &ffcli.Command{
		Name:       "process",
		ShortUsage: "eddy bench process [--events 1000000] [--json] [flags]",
		ShortHelp:  "features user + item stages end to end: events/s, batch latency, state and memory",
		LongHelp: `Starts an embedded broker in a temporary directory (or uses --brokers with a
fresh --topic-prefix, which also prefixes the stages' default consumer groups
and so their changelogs), produces --events synthetic events to the events
topic, then runs the process role (user stage, item stage, both exactly
once with Kafka transactions and Badger state) until the item stage has
applied every event. Prints events/s through both stages, the p99 batch
cycle, the state's disk size and the process's peak RSS. --cpuprofile
profiles the processing phase; EDDY_BENCH_HEAPPROFILE=<file> writes a heap
profile when the last event has been applied. --drift-sample adds the copy of
the drift sample's events to the drift role's input topic (what eddy up does),
so that the CPU per event (cpu_us_per_event, getrusage over the processing
phase, broker included) of runs with and without it measures the copy's cost.
--spec sets more generator options: inter-event=2.5us gives event times at
about the processing pace, so that a drift role reading the copies sees
windows as long as in production instead of hours of event time in seconds.`,
		FlagSet:   fs,
		Options:   ffOptions(),
		UsageFunc: usage,
		Exec: func(ctx context.Context, _ []string) error {
			log, err := common.logger()
			if err != nil {
				return err
			}
			if *events < 1 || *users < 1 || *items < 10 {
				return usageError{errors.New("--events and --users must be positive, --items at least 10")}
			}
			dir, err := os.MkdirTemp("", "eddy-bench-process-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			kf.dataDir = dir
			if err := kf.validate(); err != nil {
				return err
			}
			// A stage's changelog is <group>-<store>-changelog, whatever
			// the topic prefix: runs on one broker with fresh prefixes but
			// the default groups restored the previous run's state (and
			// stopped on its offsets). The bench's groups take the prefix.
			if p := kf.client.TopicPrefix; p != "" {
				if cfg.UserGroup == features.DefaultUserGroup {
					cfg.UserGroup = p + cfg.UserGroup
				}
				if cfg.ItemGroup == features.DefaultItemGroup {
					cfg.ItemGroup = p + cfg.ItemGroup
				}
			}
			if *driftSample != 0 {
				setDriftCopy(&cfg, kf, *driftSample, "eddy-drift")
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			gcfg, err := synth.ParseSpec(*spec)
			if err != nil {
				return usageError{fmt.Errorf("--spec: %w", err)}
			}
			gcfg.Users, gcfg.Items, gcfg.Seed = *users, *items, *seed
			if err := gcfg.Validate(); err != nil {
				return usageError{err}
			}
			res, err := benchProcess(ctx, kf, cfg, gcfg, *events, *cpuProfile, log)
			if err != nil {
				return err
			}
			if *asJSON {
				return json.NewEncoder(os.Stdout).Encode(res)
			}
			fmt.Printf("process: %.0f events/s through both stages (%d events, %d users, %d items, %d partitions, %.1f s), p99 batch %.1f ms (item stage %.1f ms), state %.1f MiB, peak RSS %.0f MiB, %d CPUs, CPU %.2f s (%.2f µs/event), drift copies %d\n",
				res.EventsPerSec, res.Events, res.Users, res.Items, res.Partitions, res.DurationSec, res.P99BatchMs, res.P99ItemBatchMs,
				float64(res.StateBytes)/(1<<20), float64(res.PeakRSSBytes)/(1<<20), res.CPUs, res.CPUSeconds, res.CPUMicrosPerEvent, res.DriftCopies)
			return nil
		},
	}
}

func benchProcess(ctx context.Context, kf *kafkaFlags, cfg features.Config, gcfg synth.Config, n int, cpuProfile string, log *slog.Logger) (ProcessBenchResult, error) {
	res := ProcessBenchResult{Events: n, Users: gcfg.Users, Items: gcfg.Items, Partitions: int(kf.layout.Partitions),
		BatchRecords: cfg.Task.MaxBatchRecords, CPUs: runtime.GOMAXPROCS(0), DriftSample: cfg.DriftSample}
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
	gen, err := synth.New(gcfg)
	if err != nil {
		return res, err
	}
	log.Info("bench process: producing", "events", n, "users", gcfg.Users, "items", gcfg.Items, "broker", res.Broker)
	start := time.Now()
	if err := produceSynthetic(ctx, kf, gen, n); err != nil {
		return res, err
	}
	res.ProduceSec = time.Since(start).Seconds()

	if cfg.DriftSample > 0 {
		if err := ensureDriftInput(ctx, kf, cfg.DriftInput, quiet); err != nil {
			return res, err
		}
	}
	reg := prometheus.NewRegistry()
	dir := filepath.Join(kf.dataDir, "state")
	p, err := features.New(cfg, kf.client, processTopics(kf), dir, reg, quiet)
	if err != nil {
		return res, err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	log.Info("bench process: processing")
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return res, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return res, err
		}
		defer pprof.StopCPUProfile()
	}
	start = time.Now()
	cpu0 := processCPU()
	go func() { done <- p.Run(rctx) }()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	lastLog := time.Now()
	for p.Stats().ItemUpdates < uint64(n) || p.Stats().Events+p.Stats().Duplicates+p.Stats().Invalid < uint64(n) {
		select {
		case err := <-done:
			return res, fmt.Errorf("stages stopped early: %w", err)
		case <-ctx.Done():
			cancel()
			<-done
			return res, ctx.Err()
		case <-tick.C:
		}
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			st := p.Stats()
			log.Info("bench process: progress", "user_events", st.Events, "item_updates", st.ItemUpdates)
		}
	}
	elapsed := time.Since(start)
	res.CPUSeconds = (processCPU() - cpu0).Seconds()
	res.CPUMicrosPerEvent = res.CPUSeconds * 1e6 / float64(n)
	if path := os.Getenv("EDDY_BENCH_HEAPPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	cancel()
	if err := <-done; err != nil {
		return res, err
	}
	st := p.Stats()
	if st.Events != uint64(n) || st.ItemUpdates != uint64(n) || st.Replays != 0 {
		return res, fmt.Errorf("bench: applied %d events and %d item updates (%d replays), want %d each", st.Events, st.ItemUpdates, st.Replays, n)
	}
	res.DurationSec = elapsed.Seconds()
	res.EventsPerSec = float64(n) / elapsed.Seconds()
	res.Snapshots = st.Snapshots
	res.DriftCopies = st.DriftCopies
	res.StateBytes = features.DirBytes(dir)
	res.PeakRSSBytes = peakRSS()
	mfs, err := reg.Gather()
	if err != nil {
		return res, err
	}
	for _, mf := range mfs {
		if mf.GetName() == "eddy_stream_changelog_records_total" {
			for _, m := range mf.GetMetric() {
				res.ChangelogRecords += m.GetCounter().GetValue()
			}
		}
	}
	res.P99BatchMs = histogramQuantile(mfs, "eddy_features_user_batch_cycle_seconds", 0.99) * 1000
	res.P99ItemBatchMs = histogramQuantile(mfs, "eddy_features_item_batch_cycle_seconds", 0.99) * 1000
	return res, nil
}

// produceSynthetic produces n generator events to the events topic, keyed
// by user id, and waits for the acknowledgements.
func produceSynthetic(ctx context.Context, kf *kafkaFlags, gen *synth.Generator, n int) error {
	cl, err := kf.client.NewClient(kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100_000),
		kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return err
	}
	defer cl.Close()
	topic := kf.layout.Name(stream.TopicEvents)
	hdr := []kgo.RecordHeader{{Key: event.SchemaHeader, Value: []byte(event.SchemaHeaderValue)}}
	var ev event.Event
	var first error
	errc := make(chan error, 1)
	for range n {
		gen.Next(&ev)
		r := &kgo.Record{Topic: topic, Key: []byte(ev.UserID), Value: ev.AppendJSON(nil), Headers: hdr}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("bench: produce events: %w", err)
	}
	select {
	case first = <-errc:
	default:
	}
	if first != nil {
		return fmt.Errorf("bench: produce events: %w", first)
	}
	return nil
}

// histogramQuantile estimates quantile q of a gathered histogram, linearly
// within the bucket that holds it (Prometheus' histogram_quantile).
func histogramQuantile(mfs []*dto.MetricFamily, name string, q float64) float64 {
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		return quantileOf(mf.GetMetric()[0].GetHistogram(), q)
	}
	return 0
}

// quantileOf estimates quantile q of histogram h as histogramQuantile does.
func quantileOf(h *dto.Histogram, q float64) float64 {
	total := float64(h.GetSampleCount())
	if total == 0 {
		return 0
	}
	rank := q * total
	prevBound, prevCount := 0.0, 0.0
	for _, b := range h.GetBucket() {
		c := float64(b.GetCumulativeCount())
		if c >= rank {
			if c == prevCount {
				return b.GetUpperBound()
			}
			return prevBound + (b.GetUpperBound()-prevBound)*(rank-prevCount)/(c-prevCount)
		}
		prevBound, prevCount = b.GetUpperBound(), c
	}
	return prevBound // beyond the last finite bucket: report its bound
}

// peakRSS returns VmHWM from /proc/self/status in bytes (0 where there is
// no /proc).
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) >= 2 && string(f[0]) == "VmHWM:" {
			kb, err := strconv.ParseInt(string(f[1]), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
