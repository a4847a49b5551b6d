package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/eddyrec/eddy/drift"
	"github.com/eddyrec/eddy/drift/drifteval"
	"github.com/eddyrec/eddy/internal/synth"
)

// evalDriftFlags are the flags of `eddy eval drift`.
type evalDriftFlags struct {
	synthetic    bool
	driftAt      int
	kind         string
	windows      int
	windowEvents int64
	window       time.Duration
	seed         uint64
	spec         string
	partitions   int
	driftConfig  string
	reports      string
	jsonOut      bool
}

func (f *evalDriftFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.synthetic, "synthetic", false, "run over a generated stream (required; the only source so far)")
	fs.IntVar(&f.driftAt, "drift-at", 0, "inject the shift at the start of this judged window (1-based, after the reference windows); 0: stationary stream")
	fs.StringVar(&f.kind, "kind", "popularity", "kind of shift: popularity, taste or watch-ratio")
	fs.IntVar(&f.windows, "windows", 288, "windows judged after the reference capture (288 = a day of 5-minute windows)")
	fs.Int64Var(&f.windowEvents, "window-events", 0, "count-based windows of this many events instead of event-time windows")
	fs.DurationVar(&f.window, "window", 5*time.Minute, "event-time window length (overrides the drift config's window.size)")
	fs.Uint64Var(&f.seed, "seed", synth.DefaultConfig().Seed, "generator seed; the same flags give the same result")
	fs.StringVar(&f.spec, "spec", "", "more generator options as key=value,... (see eddy gen --spec)")
	fs.IntVar(&f.partitions, "partitions", 0, "partitions the stream is spread over by user id, windows merged across them (0: 4 with event-time windows, 1 with --window-events)")
	fs.StringVar(&f.driftConfig, "drift-config", "", "YAML drift configuration (signals, thresholds, trigger); default: the built-in defaults")
	fs.StringVar(&f.reports, "reports", "", "write every DriftReport (and decision) as NDJSON to this file")
	fs.BoolVar(&f.jsonOut, "json", false, "print the result as one JSON object")
}

func (f *evalDriftFlags) config(fs *flag.FlagSet) (drifteval.Config, error) {
	if !f.synthetic {
		return drifteval.Config{}, usageError{errors.New("--synthetic is required (drift evaluation runs over a generated stream)")}
	}
	scfg, err := synth.ParseSpec(f.spec)
	if err != nil {
		return drifteval.Config{}, usageError{fmt.Errorf("--spec: %w", err)}
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if set["seed"] || !strings.Contains(f.spec, "seed=") {
		scfg.Seed = f.seed
	}
	dcfg := drift.DefaultConfig()
	if f.driftConfig != "" {
		if dcfg, err = drift.LoadConfig(f.driftConfig); err != nil {
			return drifteval.Config{}, usageError{err}
		}
	}
	if f.driftConfig == "" || set["window"] {
		dcfg.Window.Size = drift.Duration(f.window)
	}
	if err := dcfg.Validate(); err != nil {
		return drifteval.Config{}, usageError{err}
	}
	kind, err := synth.ParseDriftKind(f.kind)
	if err != nil {
		return drifteval.Config{}, usageError{fmt.Errorf("--kind: %w", err)}
	}
	if f.windows < 1 || f.driftAt < 0 || f.driftAt > f.windows || f.partitions < 0 || f.windowEvents < 0 {
		return drifteval.Config{}, usageError{errors.New("--windows ≥ 1, 0 ≤ --drift-at ≤ --windows, --partitions ≥ 0, --window-events ≥ 0")}
	}
	return drifteval.Config{
		Synth: scfg, Drift: dcfg, Windows: f.windows, DriftAt: f.driftAt, Kind: kind,
		Partitions: f.partitions, WindowEvents: f.windowEvents,
	}, nil
}

// newEvalDriftCommand is `eddy eval drift`.
func newEvalDriftCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy eval drift", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	var f evalDriftFlags
	f.register(fs)
	return &ffcli.Command{
		Name:       "drift",
		ShortUsage: "eddy eval drift --synthetic [--drift-at N] [--kind popularity|taste|watch-ratio] [flags]",
		ShortHelp:  "check drift detection on a synthetic stream with a known shift",
		LongHelp: `Generates a synthetic stream (as eddy gen does), spreads it over partitions by
user id, and runs the drift role's code on it: per-partition windows, the
merge, the reference capture (the first reference_windows windows), every
signal's distance and the retraining trigger policy. Served lists are
synthesised from each request's impressions and scored by a snapshot of the
generator's true model taken at the start, so prediction and outcome signals
are exercised too.

With --drift-at N the shift starts at judged window N. The result:
detected_after_windows (1 = caught in the first shifted window), false_alarms
(windows before the shift in which any signal crossed its threshold),
windows and retrain_requests, plus the largest score/threshold ratio each
signal reached before the shift.`,
		FlagSet:   fs,
		Options:   ffOptions(),
		UsageFunc: usage,
		Exec: func(ctx context.Context, _ []string) error {
			if _, err := common.logger(); err != nil {
				return err
			}
			cfg, err := f.config(fs)
			if err != nil {
				return err
			}
			return runEvalDrift(ctx, cfg, f.reports, f.jsonOut, os.Stdout)
		},
	}
}

func runEvalDrift(ctx context.Context, cfg drifteval.Config, reportsPath string, jsonOut bool, out io.Writer) error {
	var onReport func(drift.Step)
	var rw *bufio.Writer
	var werr error
	if reportsPath != "" {
		file, err := os.Create(reportsPath)
		if err != nil {
			return fmt.Errorf("eval drift: %w", err)
		}
		defer file.Close()
		rw = bufio.NewWriter(file)
		enc := json.NewEncoder(rw)
		onReport = func(st drift.Step) {
			line := struct {
				Report   *drift.Report         `json:"report"`
				Action   drift.Action          `json:"action"`
				Reason   string                `json:"reason,omitempty"`
				Request  *drift.RetrainRequest `json:"retrain_request,omitempty"`
				Captured string                `json:"reference_captured,omitempty"`
			}{Report: st.Report, Action: st.Decision.Action, Reason: st.Decision.Reason, Request: st.Decision.Request}
			if st.Captured != nil {
				line.Captured = st.Captured.ID
			}
			if err := enc.Encode(line); err != nil && werr == nil {
				werr = err
			}
		}
	}
	res, err := drifteval.Run(ctx, cfg, onReport)
	if err != nil {
		return err
	}
	if rw != nil {
		if err := rw.Flush(); err != nil || werr != nil {
			return fmt.Errorf("eval drift: write reports: %w", errors.Join(err, werr))
		}
	}
	if jsonOut {
		enc := json.NewEncoder(out)
		return enc.Encode(res)
	}
	detected := "-"
	if res.DetectedAfterWindows != nil {
		detected = fmt.Sprint(*res.DetectedAfterWindows)
	}
	fmt.Fprintf(out, "shift %s at window %d (seed %d, %d partitions, %d reference windows)\n", res.Kind, res.DriftAt, res.Seed, res.Partitions, res.ReferenceWindows)
	fmt.Fprintf(out, "windows %d  events %d  lists %d\n", res.Windows, res.Events, res.Lists)
	fmt.Fprintf(out, "detected_after_windows %s  false_alarms %d  retrain_requests %d %v\n", detected, res.FalseAlarms, res.RetrainRequests, res.RequestWindows)
	if len(res.DetectedSignals) > 0 {
		fmt.Fprintf(out, "detected by %s\n", strings.Join(res.DetectedSignals, ", "))
	}
	names := make([]string, 0, len(res.MaxRatio))
	for n := range res.MaxRatio {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(out, "largest score/threshold before the shift:")
	for _, n := range names {
		fmt.Fprintf(out, "  %-26s %.3f\n", n, res.MaxRatio[n])
	}
	return nil
}
