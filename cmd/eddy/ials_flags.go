package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/eddyrec/eddy/connectors/importer"
	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/datasets"
	"github.com/eddyrec/eddy/learner/ials"
)

// ialsFlags are the hyperparameters of the batch trainer, shared by
// `eddy train` and `eddy eval offline`.
type ialsFlags struct{ c ials.Config }

func (f *ialsFlags) register(fs *flag.FlagSet) {
	f.c = ials.DefaultConfig()
	fs.IntVar(&f.c.Dim, "dim", f.c.Dim, "iALS latent factors (1–1024; 32–128 to match the online model)")
	fs.IntVar(&f.c.Epochs, "epochs", f.c.Epochs, "iALS epochs (users, then items)")
	fs.Float64Var(&f.c.Reg, "reg", f.c.Reg, "iALS L2 regularisation λ, scaled per row by (count + α₀·N)^ν")
	fs.Float64Var(&f.c.RegExponent, "reg-exponent", f.c.RegExponent, "ν: 1 scales λ with a row's observations, 0 is plain λ")
	fs.Float64Var(&f.c.UnobservedWeight, "unobserved-weight", f.c.UnobservedWeight, "α₀: weight of the every-pair term that pulls scores towards 0")
	fs.Float64Var(&f.c.InitScale, "init-scale", f.c.InitScale, "σ: rows start from N(0, σ²/dim)")
	fs.IntVar(&f.c.CGSteps, "cg-steps", f.c.CGSteps, "conjugate-gradient steps per row and epoch")
	fs.IntVar(&f.c.Threads, "threads", 0, "goroutines solving rows (0 = GOMAXPROCS); the model does not depend on it")
	fs.Uint64Var(&f.c.Seed, "seed", f.c.Seed, "random seed; the same flags and data give the same model")
}

func (f *ialsFlags) config() (ials.Config, error) {
	if err := f.c.Validate(); err != nil {
		return f.c, usageError{err}
	}
	return f.c, nil
}

// csvFlags map a csv: dataset's columns (as `eddy import csv` does).
type csvFlags struct {
	columns, typ, tsUnit string
	noHeader             bool
}

func (f *csvFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.columns, "columns", "", "for a csv: dataset, the field=column mapping (as eddy import csv)")
	fs.StringVar(&f.typ, "type", "click", "for a csv: dataset, the event type of rows without a type column")
	fs.StringVar(&f.tsUnit, "ts-unit", "auto", "for a csv: dataset, how ts is written: s, ms, rfc3339, or auto")
	fs.BoolVar(&f.noHeader, "no-header", false, "for a csv: dataset, the first line is data")
}

func (f *csvFlags) options(spec string) (datasets.Options, error) {
	var o datasets.Options
	if !strings.HasPrefix(spec, "csv:") {
		return o, nil
	}
	if f.columns == "" {
		return o, usageError{fmt.Errorf("--dataset %s needs --columns (e.g. user_id=user_id,item_id=click_article_id,ts=click_timestamp)", spec)}
	}
	cols, err := importer.ParseColumns(f.columns)
	if err != nil {
		return o, usageError{err}
	}
	t, ok := event.ParseType(f.typ)
	if !ok {
		return o, usageError{fmt.Errorf("--type %q: not an event type", f.typ)}
	}
	o.CSV = importer.CSVOptions{Columns: cols, Type: t, TsUnit: f.tsUnit, NoHeader: f.noHeader}
	return o, nil
}
