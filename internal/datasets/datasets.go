package datasets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/eddyrec/eddy/connectors/archive"
	"github.com/eddyrec/eddy/connectors/importer"
	"github.com/eddyrec/eddy/connectors/movielens"
	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/synth"
	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/trainset"
)

// ErrSpec marks a malformed dataset spec (a usage error, not a data one).
var ErrSpec = errors.New("bad --dataset")

// Kinds lists the spec kinds Load knows.
const Kinds = "movielens:DIR, parquet:PATH, csv:PATH (with CSV options) or synthetic[:key=value,...]"

// Options are what some kinds need besides the spec.
type Options struct {
	// Events is the size of a synthetic dataset whose options do not set
	// events=N.
	Events int
	// CSV maps a csv: source's columns.
	CSV importer.CSVOptions
	// Now judges future timestamps in imported files (zero: time.Now).
	Now time.Time
}

// Dataset is a loaded spec.
type Dataset struct {
	Events []event.Event
	// Name is a short title ("movielens ml-100k").
	Name string
	// DriftAt is the index of the first drifted event of a synthetic
	// stream with drift, 0 otherwise.
	DriftAt int
	// BadRows counts rows of an imported file that were not valid events.
	BadRows int64
}

// Load reads spec into time-ordered events.
func Load(spec string, o Options, log *slog.Logger) (*Dataset, error) {
	kind, arg, _ := strings.Cut(spec, ":")
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	needArg := func() error {
		if arg == "" {
			what := "path"
			if kind == "movielens" {
				what = "directory"
			}
			return fmt.Errorf("%w: %s: the %s is missing", ErrSpec, spec, what)
		}
		return nil
	}
	switch kind {
	case "movielens":
		if err := needArg(); err != nil {
			return nil, err
		}
		rs, err := movielens.ReadDir(arg)
		if err != nil {
			return nil, err
		}
		log.Info("dataset: loaded", "dataset", spec, "ratings", len(rs))
		return &Dataset{Events: movielens.Events(rs), Name: "movielens " + lastElem(arg)}, nil
	case "parquet", "csv":
		if err := needArg(); err != nil {
			return nil, err
		}
		var b *importer.Batch
		var err error
		if kind == "parquet" {
			b, err = importer.LoadParquet(arg, o.Now)
		} else {
			if o.CSV.Columns == nil {
				return nil, fmt.Errorf("%w: %s: a csv dataset needs its column mapping (--columns)", ErrSpec, spec)
			}
			b, err = importer.LoadCSV(arg, o.CSV, o.Now)
		}
		if err != nil {
			return nil, err
		}
		log.Info("dataset: loaded", "dataset", spec, "events", len(b.Events), "bad_rows", b.BadRows, "files", b.Files)
		return &Dataset{Events: b.Events, Name: kind + " " + lastElem(arg), BadRows: b.BadRows}, nil
	case "synthetic":
		cfg, n, err := synthConfig(arg, o.Events)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrSpec, spec, err)
		}
		g, err := synth.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrSpec, spec, err)
		}
		out := make([]event.Event, n)
		shift := 0
		for i := range out {
			g.Next(&out[i])
			if shift == 0 && g.Drifted() {
				shift = i // the generator drifts before emitting event i
			}
		}
		name := "synthetic"
		if cfg.DriftKind != synth.DriftNone {
			if shift == 0 {
				return nil, fmt.Errorf("%w: %s: the drift point lies beyond the %d events", ErrSpec, spec, n)
			}
			name = fmt.Sprintf("synthetic, %s drift at event %d", cfg.DriftKind, shift)
		}
		log.Info("dataset: generated", "dataset", spec, "events", n, "drift_at_event", shift)
		return &Dataset{Events: out, Name: name, DriftAt: shift}, nil
	case "":
		return nil, fmt.Errorf("%w: --dataset is required (%s)", ErrSpec, Kinds)
	}
	return nil, fmt.Errorf("%w: %q: want %s", ErrSpec, spec, Kinds)
}

// synthConfig splits the eval-only key events=N out of the generator
// options and parses the rest with synth.ParseSpec.
func synthConfig(opts string, events int) (synth.Config, int, error) {
	var rest []string
	for part := range strings.SplitSeq(opts, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		if strings.TrimSpace(k) == "events" {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return synth.Config{}, 0, fmt.Errorf("events=%q: not an integer", v)
			}
			events = n
			continue
		}
		if strings.TrimSpace(part) != "" {
			rest = append(rest, part)
		}
	}
	if events < 1 || events > 50_000_000 {
		return synth.Config{}, 0, fmt.Errorf("events %d: want 1–50,000,000", events)
	}
	cfg, err := synth.ParseSpec(strings.Join(rest, ","))
	return cfg, events, err
}

func lastElem(path string) string {
	path = strings.TrimRight(path, "/")
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[i+1:]
	}
	return path
}

// ErrEmptyRange is returned by FromArchive when the range holds no events.
var ErrEmptyRange = errors.New("the archive holds no events in the range")

// FromArchive reads the archived events of [from, to) into a Set weighed
// with conf, deduplicated by event_id. Progress, when set, is called every
// couple of seconds with the scan's counters.
func FromArchive(ctx context.Context, st archive.Store, from, to time.Time, conf learner.Confidence, progress func(archive.ScanStats), log *slog.Logger) (*trainset.Set, archive.ScanStats, error) {
	b := trainset.NewBuilder(conf)
	var bad int
	last := time.Now()
	o := archive.ScanOptions{From: from, To: to, SkipContext: true, Progress: func(s archive.ScanStats) {
		if progress != nil && time.Since(last) >= 2*time.Second {
			last = time.Now()
			progress(s)
		}
	}}
	stats, err := archive.ScanEvents(ctx, st, o, func(r *archive.EventRow) error {
		ev, err := r.Event()
		if err != nil {
			// A row the archive accepted but this build cannot read (an
			// event type added later): counted, not fatal. The error
			// names the event, so it is not logged.
			bad++
			return nil
		}
		b.Add(&ev)
		return nil
	})
	if err != nil {
		return nil, stats, err
	}
	s := b.Set()
	if s.Len() == 0 {
		return nil, stats, fmt.Errorf("%w [%s, %s): %d files read, %d skipped", ErrEmptyRange, fmtTime(from), fmtTime(to), stats.Files, stats.FilesSkipped)
	}
	if bad > 0 {
		log.Warn("dataset: archive rows of an unknown event type skipped", "rows", bad)
	}
	return s, stats, nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "open"
	}
	return t.UTC().Format(time.RFC3339)
}
