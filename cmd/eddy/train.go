package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/eddyrec/eddy/connectors/archive"
	"github.com/eddyrec/eddy/internal/datasets"
	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/ials"
	"github.com/eddyrec/eddy/learner/offline"
	"github.com/eddyrec/eddy/learner/snapshot"
	"github.com/eddyrec/eddy/learner/trainset"
)

// trainFlags are the flags of `eddy train`.
type trainFlags struct {
	common   commonFlags
	dataDir  string
	where    archiveFlags
	from, to string
	window   string
	dataset  string
	csv      csvFlags
	ials     ialsFlags
	out      string
	seen     int
	validate bool
	asJSON   bool
}

func (f *trainFlags) register(fs *flag.FlagSet) {
	f.common.register(fs)
	fs.StringVar(&f.dataDir, "data-dir", "./data", "data directory (the archive, and the snapshots in its models/ folder, default to <data-dir>/archive)")
	f.where.register(fs, "")
	fs.StringVar(&f.from, "from", "", "first event time to train on (RFC 3339 or YYYY-MM-DD; default: --window before --to)")
	fs.StringVar(&f.to, "to", "", "end of the training range, exclusive (default: now)")
	fs.StringVar(&f.window, "window", "30d", "length of the training range when --from is not given (e.g. 30d, 36h)")
	fs.StringVar(&f.dataset, "dataset", "", "train on a dataset instead of the archive: movielens:DIR, parquet:PATH, csv:PATH (with --columns) or synthetic[:...]")
	f.csv.register(fs, "for a csv: dataset, ", "click")
	f.ials.register(fs)
	fs.StringVar(&f.out, "out", "", "write the model snapshot (Parquet) to this local file instead of <archive>/models/ials-<time>.parquet")
	fs.IntVar(&f.seen, "seen-items", 100, "recently consumed item ids stored with each user (the scorer excludes them), as the online user stage keeps")
	fs.BoolVar(&f.validate, "validate", false, "first train on a leave-last-out validation split and report its HR@10 after every epoch (one extra run)")
	fs.BoolVar(&f.asJSON, "json", false, "print the summary as JSON")
}

// trainSummary is what `eddy train` prints.
type trainSummary struct {
	Snapshot     string    `json:"snapshot"`
	Source       string    `json:"source"`
	From         string    `json:"from,omitempty"`
	To           string    `json:"to,omitempty"`
	Events       int       `json:"events"`
	Duplicates   int       `json:"duplicates"`
	Users        int       `json:"users"`
	Items        int       `json:"items"`
	Pairs        int       `json:"pairs"`
	Epochs       int       `json:"epochs"`
	Loss         float64   `json:"loss"`
	TrainSeconds float64   `json:"train_seconds"`
	Seconds      float64   `json:"seconds"`
	Kernel       string    `json:"kernel"`
	Threads      int       `json:"threads"`
	MatrixBytes  int64     `json:"matrix_bytes"`
	FactorBytes  int64     `json:"factor_bytes"`
	Validation   []float64 `json:"validation_hr_at_10,omitempty"`
}

func newTrainCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy train", flag.ContinueOnError)
	var f trainFlags
	f.register(fs)
	return &ffcli.Command{
		Name:       "train",
		ShortUsage: "eddy train [--from T] [--to T | --window 30d] [--dataset SPEC] [iALS flags] [--out FILE]",
		ShortHelp:  "train the batch iALS model on the archive (or a dataset) and write a model snapshot",
		LongHelp: `Reads the archived events of [--from, --to) — by default the last --window
(30d) — deduplicated by event_id and weighted as the online learner weighs
them, trains implicit ALS (iALS) on them, and writes every user and item row,
with the fields of its model-topic record, to a Parquet snapshot in the
archive (models/ials-<time>.parquet) or to --out.
Progress — the archive scan, then every epoch's loss and time — goes to
stderr; the summary to stdout. Nothing is written when the range is empty
or too small, a hyperparameter is out of range, or training diverges.

The defaults were chosen with eddy eval offline --sweep on MovieLens; run a
sweep on your own data to tune --dim, --reg and --unobserved-weight.`,
		FlagSet:   fs,
		Options:   ffOptions(),
		UsageFunc: usage,
		Exec: func(ctx context.Context, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			log, err := f.common.logger()
			if err != nil {
				return err
			}
			return runTrain(ctx, &f, os.Stdout, log, time.Now())
		},
	}
}

// parseWindow reads a duration with an optional day suffix ("30d", "36h").
func parseWindow(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(d, 64)
		if err != nil || !(n > 0) || n > 36500 {
			return 0, fmt.Errorf("%q: want a positive number of days, e.g. 30d", s)
		}
		return time.Duration(n * 24 * float64(time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want a positive duration, e.g. 30d or 36h", s)
	}
	return d, nil
}

// trainRange resolves --from, --to and --window.
func (f *trainFlags) trainRange(now time.Time) (from, to time.Time, err error) {
	if from, err = parseWhen(f.from); err != nil {
		return from, to, usageError{fmt.Errorf("--from: %w", err)}
	}
	if to, err = parseWhen(f.to); err != nil {
		return from, to, usageError{fmt.Errorf("--to: %w", err)}
	}
	if to.IsZero() {
		to = now.UTC()
	}
	if from.IsZero() {
		w, err := parseWindow(f.window)
		if err != nil {
			return from, to, usageError{fmt.Errorf("--window: %w", err)}
		}
		from = to.Add(-w)
	}
	if !from.Before(to) {
		return from, to, usageError{fmt.Errorf("the range [%s, %s) is empty", from.Format(time.RFC3339), to.Format(time.RFC3339))}
	}
	return from, to, nil
}

func runTrain(ctx context.Context, f *trainFlags, stdout io.Writer, log *slog.Logger, now time.Time) error {
	cfg, err := f.ials.config()
	if err != nil {
		return err
	}
	if f.seen < 0 || f.seen > 1024 {
		return usageError{fmt.Errorf("--seen-items %d: want 0–1024", f.seen)}
	}
	start := time.Now()
	conf := learner.DefaultConfidence()
	sum := trainSummary{}
	var set *trainset.Set
	if f.dataset != "" {
		if f.from != "" || f.to != "" || f.where.dir != "" || f.where.url != "" {
			return usageError{errors.New("--dataset trains on a dataset: leave out --from, --to and the archive flags")}
		}
		o, err := f.csv.options(f.dataset)
		if err != nil {
			return err
		}
		ds, err := datasets.Load(f.dataset, o, log)
		if err != nil {
			return datasetError(err)
		}
		set = trainset.FromEvents(ds.Events, conf)
		sum.Source = ds.Name
	} else {
		from, to, err := f.trainRange(now)
		if err != nil {
			return err
		}
		st, err := f.where.open(ctx, f.dataDir)
		if err != nil {
			return err
		}
		sum.Source, sum.From, sum.To = "archive "+f.where.location(f.dataDir), from.Format(time.RFC3339), to.Format(time.RFC3339)
		log.Info("train: reading the archive", "from", sum.From, "to", sum.To)
		var stats archive.ScanStats
		set, stats, err = datasets.FromArchive(ctx, st, from, to, conf, func(s archive.ScanStats) {
			log.Info("train: archive scan", "files", s.Files, "rows", s.Rows)
		}, log)
		if err != nil {
			return fmt.Errorf("train: %w", err)
		}
		log.Info("train: archive read", "rows", stats.Rows, "files", stats.Files, "files_skipped", stats.FilesSkipped,
			"row_groups_skipped", stats.RowGroupsSkipped, "bytes", stats.Bytes)
	}
	sum.Events, sum.Duplicates, sum.Users, sum.Items = set.Len(), set.Duplicates, set.Users.Len(), set.Items.Len()
	if f.validate {
		oc := offline.DefaultConfig()
		oc.IALS = cfg
		curve, err := offline.ValidationCurve(ctx, set, nil, oc, log)
		if err != nil {
			return fmt.Errorf("train: validation: %w", err)
		}
		sum.Validation = curve
	}
	m, err := set.Matrix(nil)
	if err != nil {
		return fmt.Errorf("train on %s (%d events): %w", describeRange(sum), set.Len(), err)
	}
	fac, ts, err := ials.Train(ctx, m, cfg, ials.Options{Progress: func(e ials.EpochStats) {
		log.Info("train: epoch", "epoch", e.Epoch, "of", e.Epochs, "loss", e.Loss, "seconds", e.Seconds)
	}})
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	sum.Pairs, sum.Epochs, sum.Loss, sum.TrainSeconds = ts.Pairs, ts.Epochs, ts.Loss, ts.Seconds
	sum.Kernel, sum.Threads, sum.MatrixBytes, sum.FactorBytes = ts.Kernel, ts.Threads, ts.MatrixBytes, ts.FactorBytes
	meta := snapshot.Meta{Trainer: "ials", Dim: cfg.Dim, Users: m.Users, Items: m.Items, Pairs: m.NNZ(), Events: set.Len(),
		FromTs: sum.From, ToTs: sum.To, Source: sum.Source, Loss: ts.Loss, Seconds: ts.Seconds,
		Created: now.UTC().Format(time.RFC3339), Validate: sum.Validation, Config: cfg}
	out, err := f.writeSnapshot(ctx, meta, snapshot.Rows(set, fac, f.seen, 0), now)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	sum.Snapshot, sum.Seconds = out, time.Since(start).Seconds()
	log.Info("train: done", "snapshot", out, "users", sum.Users, "items", sum.Items, "pairs", sum.Pairs, "seconds", sum.Seconds)
	if f.asJSON {
		b, err := json.Marshal(sum)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	fmt.Fprintf(stdout, "trained iALS on %s: %d events (%d duplicates dropped), %d users, %d items, %d pairs\n",
		describeRange(sum), sum.Events, sum.Duplicates, sum.Users, sum.Items, sum.Pairs)
	fmt.Fprintf(stdout, "%d epochs in %.2fs (%s kernels, %d threads), final loss %.5f per pair; matrix %.1f MiB, factors %.1f MiB\n",
		sum.Epochs, sum.TrainSeconds, sum.Kernel, sum.Threads, sum.Loss, float64(sum.MatrixBytes)/(1<<20), float64(sum.FactorBytes)/(1<<20))
	if len(sum.Validation) > 0 {
		fmt.Fprintf(stdout, "validation HR@10 per epoch (leave-last-out):")
		for _, v := range sum.Validation {
			fmt.Fprintf(stdout, " %.4f", v)
		}
		fmt.Fprintln(stdout)
	}
	_, err = fmt.Fprintf(stdout, "snapshot %s (%.2fs in all)\n", out, sum.Seconds)
	return err
}

// writeSnapshot stores the model as a Parquet snapshot: at --out, or in
// the archive (a directory or a bucket) under models/. It returns where.
func (f *trainFlags) writeSnapshot(ctx context.Context, meta snapshot.Meta, rows []snapshot.Record, now time.Time) (string, error) {
	mb, err := json.Marshal(meta)
	if err != nil {
		return "", err
	}
	recs := make([]archive.ModelRecord, len(rows))
	for i, r := range rows {
		recs[i] = archive.ModelRecord{ID: r.Key, Vector: r.Vector}
	}
	var st archive.Store
	key := archive.ModelsFolder + "ials-" + now.UTC().Format("20060102T150405Z") + ".parquet"
	if f.out != "" {
		dir, base := filepath.Split(f.out)
		if dir == "" {
			dir = "."
		}
		if st, err = archive.OpenStore(ctx, dir, archive.S3Options{}); err != nil {
			return "", err
		}
		key = base
	} else if st, err = f.where.open(ctx, f.dataDir); err != nil {
		return "", err
	}
	if err := archive.WriteModel(ctx, st, key, mb, recs); err != nil {
		return "", fmt.Errorf("write %s/%s: %w", st, key, err)
	}
	return strings.TrimSuffix(st.String(), "/") + "/" + key, nil
}

func describeRange(s trainSummary) string {
	if s.From != "" {
		return fmt.Sprintf("%s [%s, %s)", s.Source, s.From, s.To)
	}
	return s.Source
}
