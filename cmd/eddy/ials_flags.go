package main

import (
	"flag"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/eddyrec/eddy/connectors/importer"
	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/datasets"
	"github.com/eddyrec/eddy/learner/ials"
)

// ialsFlags are the hyperparameters of the batch trainer, shared by
// `eddy train` and `eddy eval offline`.
type ialsFlags struct{ c ials.Config }

func (f *ialsFlags) register(fs *flag.FlagSet) { f.registerPrefixed(fs, "") }

// registerPrefixed registers the flags with a prefix ("retrain-" in eddy
// up, where --dim is the online learner's).
func (f *ialsFlags) registerPrefixed(fs *flag.FlagSet, p string) {
	f.c = ials.DefaultConfig()
	fs.IntVar(&f.c.Dim, p+"dim", f.c.Dim, "iALS latent factors (1–1024; 32–128 to match the online model)")
	fs.IntVar(&f.c.Epochs, p+"epochs", f.c.Epochs, "iALS epochs (users, then items)")
	fs.Float64Var(&f.c.Reg, p+"reg", f.c.Reg, "iALS L2 regularisation λ, scaled per row by (count + α₀·N)^ν")
	fs.Float64Var(&f.c.RegExponent, p+"reg-exponent", f.c.RegExponent, "ν: 1 scales λ with a row's observations, 0 is plain λ")
	fs.Float64Var(&f.c.UnobservedWeight, p+"unobserved-weight", f.c.UnobservedWeight, "α₀: weight of the every-pair term that pulls scores towards 0")
	fs.Float64Var(&f.c.InitScale, p+"init-scale", f.c.InitScale, "σ: rows start from N(0, σ²/dim)")
	fs.IntVar(&f.c.CGSteps, p+"cg-steps", f.c.CGSteps, "conjugate-gradient steps per row and epoch")
	fs.IntVar(&f.c.Threads, p+"threads", 0, "goroutines solving rows (0 = GOMAXPROCS); the model does not depend on it")
	fs.Uint64Var(&f.c.Seed, p+"seed", f.c.Seed, "random seed; the same flags and data give the same model")
}

func (f *ialsFlags) config() (ials.Config, error) {
	if err := f.c.Validate(); err != nil {
		return f.c, usageError{err}
	}
	return f.c, nil
}

// csvFlags map a CSV file's columns to the event's fields: the flags of
// `eddy import csv`, and of a csv: dataset for `eddy train` and `eddy eval
// offline`.
type csvFlags struct {
	columns, typ, tsUnit, comma string
	noHeader                    bool
}

// register adds the flags; scope prefixes their help ("" or "for a csv:
// dataset, "), typ is the default of --type.
func (f *csvFlags) register(fs *flag.FlagSet, scope, typ string) {
	fs.StringVar(&f.columns, "columns", "", scope+"field=column mapping, e.g. user_id=user_id,item_id=click_article_id,ts=click_timestamp,context.device=click_deviceGroup (fields: event_id, user_id, item_id, type, ts, value, duration, request_id, context.<key>; columns by header name or 1-based number)")
	fs.StringVar(&f.typ, "type", typ, scope+"event type of rows without a type column (click, watch, ...)")
	fs.StringVar(&f.tsUnit, "ts-unit", "auto", scope+"how ts is written: s, ms, rfc3339, or auto")
	fs.StringVar(&f.comma, "comma", ",", scope+"field separator (\\t for tabs)")
	fs.BoolVar(&f.noHeader, "no-header", false, scope+"the first line is data; name columns by number")
}

// parse checks the flags and returns the importer's options.
func (f *csvFlags) parse() (importer.CSVOptions, error) {
	cols, err := importer.ParseColumns(f.columns)
	if err != nil {
		return importer.CSVOptions{}, usageError{err}
	}
	o := importer.CSVOptions{Columns: cols, TsUnit: f.tsUnit, NoHeader: f.noHeader}
	if f.typ != "" {
		t, ok := event.ParseType(f.typ)
		if !ok {
			return o, usageError{fmt.Errorf("--type %q: unknown event type", f.typ)}
		}
		o.Type = t
	}
	sep := strings.ReplaceAll(f.comma, `\t`, "\t")
	if utf8.RuneCountInString(sep) != 1 {
		return o, usageError{fmt.Errorf("--comma %q: want one character", f.comma)}
	}
	o.Comma, _ = utf8.DecodeRuneInString(sep)
	return o, nil
}

// options returns the dataset options of spec: the CSV mapping for a csv:
// dataset, nothing for the others.
func (f *csvFlags) options(spec string) (datasets.Options, error) {
	var o datasets.Options
	if !strings.HasPrefix(spec, "csv:") {
		return o, nil
	}
	if f.columns == "" {
		return o, usageError{fmt.Errorf("--dataset %s needs --columns (e.g. user_id=user_id,item_id=click_article_id,ts=click_timestamp)", spec)}
	}
	var err error
	o.CSV, err = f.parse()
	return o, err
}
