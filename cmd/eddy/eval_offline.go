package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/eddyrec/eddy/internal/datasets"
	"github.com/eddyrec/eddy/learner/offline"
	"github.com/eddyrec/eddy/learner/trainset"
)

// offlineFlags are the flags of `eddy eval offline`.
type offlineFlags struct {
	dataset        string
	events         int
	protocol       string
	negatives      int
	testFrac       float64
	maxUsers       int
	models         string
	jsonOut        bool
	sweep          bool
	validateEpochs bool
	export         string
	ials           ialsFlags
	csv            csvFlags
}

func (p *offlineFlags) register(fs *flag.FlagSet) {
	d := offline.DefaultConfig()
	fs.StringVar(&p.dataset, "dataset", "", "movielens:DIR, parquet:PATH (the archive's columns), csv:PATH (with --columns) or synthetic[:key=value,...]")
	fs.IntVar(&p.events, "events", 200000, "number of events of a synthetic dataset (unless its options set events=N)")
	fs.StringVar(&p.protocol, "protocol", d.Protocol, "leave-last-out, time-split or sampled")
	fs.IntVar(&p.negatives, "negatives", d.Negatives, "sampled protocol: items the user never touched ranked against each held-out one")
	fs.Float64Var(&p.testFrac, "test-frac", d.TestFrac, "time-split protocol: share of the events after the cut")
	fs.IntVar(&p.maxUsers, "max-test-users", d.MaxTestUsers, "test at most this many users (a seeded sample; 0 = all); full ranking costs users × items × dim")
	fs.StringVar(&p.models, "models", "", "comma-separated models (default all: "+strings.Join(offline.ModelNames, ",")+")")
	fs.BoolVar(&p.jsonOut, "json", false, `print {"ials":{...},"online_mf":{...},"popularity":{...}} instead of the table`)
	fs.BoolVar(&p.sweep, "sweep", false, "choose the iALS hyperparameters on a validation split carved from the training part, then test the best")
	fs.BoolVar(&p.validateEpochs, "validate-epochs", false, "also train iALS on a validation split and report its HR@10 after every epoch")
	fs.StringVar(&p.export, "export", "", "write the split to this directory (train.csv, test.csv, candidates.csv) for peer libraries (scripts/peer-implicit.py)")
	p.ials.register(fs)
	p.csv.register(fs, "for a csv: dataset, ", "click")
}

func (p *offlineFlags) config() (offline.Config, error) {
	cfg := offline.DefaultConfig()
	cfg.Protocol, cfg.Negatives, cfg.TestFrac, cfg.MaxTestUsers = p.protocol, p.negatives, p.testFrac, p.maxUsers
	cfg.ValidateEpochs = p.validateEpochs
	var err error
	if cfg.IALS, err = p.ials.config(); err != nil {
		return cfg, err
	}
	cfg.Seed = cfg.IALS.Seed
	if p.models != "" {
		cfg.Models = commaList(p.models)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err}
	}
	return cfg, nil
}

func newEvalOfflineCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy eval offline", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	var p offlineFlags
	p.register(fs)
	return &ffcli.Command{
		Name:       "offline",
		ShortUsage: "eddy eval offline --dataset DATASET [--protocol leave-last-out|time-split|sampled] [--sweep] [--json]",
		ShortHelp:  "split a dataset, train iALS, the online MF and popularity, and compare them",
		LongHelp: `Splits a dataset into a training and a test part, trains every model on the
training part and ranks for every test user:

  leave-last-out  each user's last positive is held out; the whole catalogue
                  minus the user's training items is ranked
  time-split      the last --test-frac of the events (by time) is the test
                  part; each user's positives there on items new to them
  sampled         as leave-last-out, but the held-out item is ranked against
                  --negatives items the user never touched (He et al., 2017)

Models: ials (the batch trainer, as eddy train runs it), online_mf (the
streaming learner replayed once over the training part) and popularity
(all-time positive counts). Reports HR@10, NDCG@10, Recall@20, catalogue
coverage and training time. A tie with a held-out item counts against it.

--sweep picks iALS's dimension, λ and α₀ on a validation split carved from
the training part with the same protocol (the test part is never looked at),
prints the grid, and tests the best point. Progress goes to stderr. Example:

  eddy eval offline --dataset movielens:../shared/data/ml-100k --protocol sampled --sweep`,
		FlagSet:   fs,
		Options:   ffOptions(),
		UsageFunc: usage,
		Exec: func(ctx context.Context, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			log, err := common.logger()
			if err != nil {
				return err
			}
			return runEvalOffline(ctx, &p, os.Stdout, log)
		},
	}
}

func runEvalOffline(ctx context.Context, p *offlineFlags, stdout io.Writer, log *slog.Logger) error {
	cfg, err := p.config()
	if err != nil {
		return err
	}
	o, err := p.csv.options(p.dataset)
	if err != nil {
		return err
	}
	o.Events = p.events
	ds, err := datasets.Load(p.dataset, o, log)
	if err != nil {
		return datasetError(err)
	}
	set := trainset.FromEvents(ds.Events, cfg.MF.Confidence)
	ds.Events = nil // the set holds what evaluation needs
	log.Info("eval offline: dataset", "dataset", ds.Name, "events", set.Len(), "duplicates", set.Duplicates,
		"users", set.Users.Len(), "items", set.Items.Len())
	if p.export != "" {
		start := time.Now()
		if err := offline.Export(p.export, set, cfg); err != nil {
			return err
		}
		log.Info("eval offline: split exported", "dir", p.export, "seconds", time.Since(start).Seconds())
	}
	if p.sweep {
		sw, err := offline.Sweep(ctx, set, cfg, offline.DefaultGrid(cfg.IALS), log)
		if err != nil {
			return evalError(ds.Name, err)
		}
		sw.Test.Dataset = ds.Name
		if p.jsonOut {
			return offline.WriteSweepJSON(stdout, sw)
		}
		return offline.WriteSweep(stdout, sw)
	}
	res, err := offline.Run(ctx, set, cfg, log)
	if err != nil {
		return evalError(ds.Name, err)
	}
	res.Dataset = ds.Name
	if p.jsonOut {
		return offline.WriteJSON(stdout, res)
	}
	return offline.WriteText(stdout, res)
}

func evalError(name string, err error) error {
	return fmt.Errorf("eval offline %s: %w", name, err)
}
