package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/datasets"
	"github.com/eddyrec/eddy/learner/prequential"
)

// newEvalCommand is `eddy eval`, the home of the built-in evaluations.
func newEvalCommand() *ffcli.Command {
	return newGroupCommand("eval", "eddy eval <subcommand> [flags]", "evaluate the models on a dataset",
		newEvalPrequentialCommand(), newEvalOfflineCommand(), newEvalDriftCommand())
}

// prequentialFlags are the flags of `eddy eval prequential`.
type prequentialFlags struct {
	dataset     string
	events      int
	k           int
	window      int
	jsonOut     bool
	plot        string
	csv         string
	models      string
	dim         int
	seed        uint64
	lr          float64
	reg         float64
	negatives   int
	frozenFrac  float64
	popHalfLife float64
	candidates  int
	tail        int
}

func (p *prequentialFlags) register(fs *flag.FlagSet) {
	d := prequential.DefaultConfig()
	fs.StringVar(&p.dataset, "dataset", "", "movielens:DIR (u.data, ratings.csv or ratings.dat) or synthetic[:key=value,...] (generator options, see eddy gen --spec; plus events=N)")
	fs.IntVar(&p.events, "events", 200000, "number of events of a synthetic dataset (unless its options set events=N)")
	fs.IntVar(&p.k, "k", d.K, "length of each recommended list (HR@K, NDCG@K)")
	fs.IntVar(&p.window, "window", d.Window, "scored positive events per curve window and per pair in the significance tests")
	fs.BoolVar(&p.jsonOut, "json", false, "print one JSON object with a key per model instead of the table")
	fs.StringVar(&p.plot, "plot", "", "write a PNG plot of HR@K per window to this file")
	fs.StringVar(&p.csv, "csv", "", "write the per-window curves as CSV to this file")
	fs.StringVar(&p.models, "models", "", "comma-separated models to run (default all: "+strings.Join(prequential.ModelNames, ",")+"); popularity always runs")
	fs.IntVar(&p.dim, "dim", d.MF.Dim, "MF dimension (32–128)")
	fs.Uint64Var(&p.seed, "seed", d.MF.Seed, "random seed; the same flags give the same result")
	fs.Float64Var(&p.lr, "lr", float64(d.MF.LearnRate), "MF base learning rate")
	fs.Float64Var(&p.reg, "reg", float64(d.MF.Reg), "MF L2 regularisation")
	fs.IntVar(&p.negatives, "negatives", d.MF.Negatives, "popularity-sampled negatives per positive")
	fs.Float64Var(&p.frozenFrac, "frozen-frac", d.FrozenFrac, "share of events the frozen model learns from")
	fs.Float64Var(&p.popHalfLife, "pop-half-life", d.PopHalfLife, "half-life of the decayed-popularity baseline, in positive events")
	fs.IntVar(&p.candidates, "candidates", d.Candidates, "MF candidates the ranker re-ranks")
	fs.IntVar(&p.tail, "recovery-tail", d.RecoveryTail, "windows at the end of a drifting synthetic stream that measure each model's recovered HR (0 = the later half of the windows after the drift)")
}

func (p *prequentialFlags) config() (prequential.Config, error) {
	cfg := prequential.DefaultConfig()
	cfg.K, cfg.Window = p.k, p.window
	cfg.MF.Dim, cfg.MF.Seed = p.dim, p.seed
	cfg.MF.LearnRate, cfg.MF.Reg = float32(p.lr), float32(p.reg)
	cfg.MF.Negatives = p.negatives
	cfg.FrozenFrac, cfg.PopHalfLife, cfg.Candidates = p.frozenFrac, p.popHalfLife, p.candidates
	cfg.RecoveryTail = p.tail
	if p.models != "" {
		cfg.Models = commaList(p.models)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err}
	}
	return cfg, nil
}

func newEvalPrequentialCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy eval prequential", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	var p prequentialFlags
	p.register(fs)
	return &ffcli.Command{
		Name:       "prequential",
		ShortUsage: "eddy eval prequential --dataset DATASET [--k 10] [--json] [--plot out.png] [--csv out.csv]",
		ShortHelp:  "replay a dataset test-then-train and report HR@K, NDCG@K, coverage",
		LongHelp: `Replays a time-ordered dataset through the models. For each positive event
(rating ≥ 4, click, like, purchase, watch of ratio ≥ 0.3) it first asks every
model for the user's top-K, excluding items the user already consumed, records
the hit and NDCG, and then lets the model learn from the event.

Models: online_mf (the streaming learner's own update code), online_mf_ranker
(its candidates re-ranked by the online FTRL ranker), popularity (decayed
popularity baseline) and frozen_mf (the MF trained on the first --frozen-frac
of the stream, then frozen). It reports paired Wilcoxon signed-rank and t tests
over windows against the popularity baseline. Progress goes to stderr.

A synthetic dataset with drift (drift-at=N,drift-kind=taste) also reports each
model's HR before the drift, its dip, its level over the last windows, and how
many windows it took to get back to 90 % of its pre-drift HR; the plot marks
the drift and the point where frozen_mf stopped learning. Put drift-at after
the frozen prefix (--frozen-frac of the events). Example:

  eddy eval prequential --lr 0.1 --plot taste.png --csv taste.csv \
    --dataset synthetic:users=2000,items=500,dim=4,explore=0.7,zipf-s=0.8,popularity-weight=0.5,affinity-weight=3,events=600000,drift-at=300000,drift-kind=taste`,
		FlagSet:   fs,
		Options:   ffOptions(),
		UsageFunc: usage,
		Exec: func(ctx context.Context, _ []string) error {
			log, err := common.logger()
			if err != nil {
				return err
			}
			return runPrequential(ctx, &p, os.Stdout, log)
		},
	}
}

func runPrequential(ctx context.Context, p *prequentialFlags, stdout io.Writer, log *slog.Logger) error {
	cfg, err := p.config()
	if err != nil {
		return err
	}
	events, name, shift, err := loadDataset(p.dataset, p.events, log)
	if err != nil {
		return err
	}
	cfg.Shift = shift
	res, err := prequential.Run(ctx, events, cfg, log)
	if err != nil {
		return fmt.Errorf("eval prequential %s: %w", name, err)
	}
	if p.csv != "" {
		if err := writeFile(p.csv, func(w io.Writer) error { return prequential.WriteCSV(w, res) }); err != nil {
			return err
		}
	}
	if p.plot != "" {
		title := fmt.Sprintf("prequential HR@%d per window — %s", res.K, name)
		if err := writeFile(p.plot, func(w io.Writer) error { return prequential.WritePlot(w, res, title) }); err != nil {
			return err
		}
	}
	for _, m := range res.Models {
		log.Info("eval prequential: result", "model", m.Name, "hr_at_k", m.HR, "ndcg_at_k", m.NDCG,
			"coverage", m.Coverage, "events_per_sec", m.EventsPerSec)
	}
	if p.jsonOut {
		return prequential.WriteJSON(stdout, res)
	}
	return prequential.WriteText(stdout, res)
}

// writeFile creates path and writes it with fn, reporting close errors.
func writeFile(path string, fn func(io.Writer) error) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", path, cerr)
		}
	}()
	return fn(f)
}

// loadDataset resolves --dataset into a time-ordered event slice, a short
// name for titles and, for a synthetic stream with drift, the index of the
// first drifted event (0 otherwise). Prequential replays keep the dataset
// as given, so only movielens and synthetic specs apply.
func loadDataset(spec string, events int, log *slog.Logger) ([]event.Event, string, int, error) {
	if kind, _, _ := strings.Cut(spec, ":"); kind != "" && kind != "movielens" && kind != "synthetic" {
		return nil, "", 0, usageError{fmt.Errorf("--dataset %q: want movielens:DIR or synthetic[:options]", spec)}
	}
	ds, err := datasets.Load(spec, datasets.Options{Events: events}, log)
	if err != nil {
		return nil, "", 0, datasetError(err)
	}
	return ds.Events, ds.Name, ds.DriftAt, nil
}

// datasetError makes a malformed spec a usage error (exit 2).
func datasetError(err error) error {
	if errors.Is(err, datasets.ErrSpec) {
		return usageError{err}
	}
	return err
}
