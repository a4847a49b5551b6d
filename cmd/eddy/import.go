package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/connectors/importer"
	"github.com/eddyrec/eddy/ingest"
	"github.com/eddyrec/eddy/stream"
)

// importFlags are the flags every `eddy import` source shares.
type importFlags struct {
	common   commonFlags
	kf       *kafkaFlags
	to       string
	token    string
	compress float64
	batch    int
	asJSON   bool
	ledger   string
	force    bool
}

func (f *importFlags) register(fs *flag.FlagSet) {
	f.common.register(fs)
	f.kf = newKafkaFlags()
	f.kf.register(fs)
	fs.StringVar(&f.to, "to", "kafka", "where the events go: kafka (<prefix>events on --brokers, or the embedded broker) or an ingest URL (http://host:8080)")
	fs.StringVar(&f.token, "token", "", "bearer token for an ingest URL")
	fs.Float64Var(&f.compress, "time-compress", 0, "move history to end now with every gap divided by this factor (1 only shifts it); 0 keeps the original times")
	fs.IntVar(&f.batch, "batch", 1000, "events per produce batch or HTTP request")
	fs.BoolVar(&f.asJSON, "json", false, "print the summary as JSON")
	fs.StringVar(&f.ledger, "ledger-dir", "", "where the import keeps its progress per source (default <data-dir>/imports): a re-run resumes, a completed import is skipped")
	fs.BoolVar(&f.force, "force", false, "send a source again even if the ledger says it was imported")
}

// run loads the source with load, then publishes it.
func (f *importFlags) run(ctx context.Context, what string, load func(now time.Time) (*importer.Batch, error)) error {
	log, err := f.common.logger()
	if err != nil {
		return err
	}
	if f.batch < 1 || f.batch > 100_000 {
		return usageError{fmt.Errorf("--batch %d: want 1–100000", f.batch)}
	}
	if f.compress != 0 && f.compress < 1 {
		return usageError{fmt.Errorf("--time-compress %v: want 0 or ≥ 1", f.compress)}
	}
	var sink importer.Sink
	switch {
	case f.to == "kafka":
		if err := f.kf.validate(); err != nil {
			return err
		}
		closeBroker, err := f.kf.connect(log, true)
		if err != nil {
			return err
		}
		defer closeBroker()
		if _, err := f.kf.ensureTopics(ctx, log); err != nil {
			return err
		}
		cl, err := f.kf.client.NewClient(kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100_000))
		if err != nil {
			return err
		}
		defer cl.Close()
		sink = importer.NewKafkaSink(cl, f.kf.layout.Name(stream.TopicEvents))
	case strings.HasPrefix(f.to, "http://") || strings.HasPrefix(f.to, "https://"):
		sink = importer.NewHTTPSink(&ingest.Client{URL: f.to, Token: f.token, MaxRetries: 30}, log)
	default:
		return usageError{fmt.Errorf("--to %q: want kafka or an http(s):// ingest URL", f.to)}
	}
	start := time.Now()
	log.Info("import: reading", "source", what)
	b, err := load(start)
	if err != nil {
		return err
	}
	for _, bad := range b.Bad {
		fmt.Fprintf(os.Stderr, "import: bad row: %s\n", bad)
	}
	if b.BadRows > int64(len(b.Bad)) {
		fmt.Fprintf(os.Stderr, "import: ... and %d more bad rows\n", b.BadRows-int64(len(b.Bad)))
	}
	log.Info("import: read", "files", b.Files, "rows", b.Rows, "bad_rows", b.BadRows, "events", len(b.Events), "seconds", time.Since(start).Seconds())
	ledger := f.ledger
	if ledger == "" {
		ledger = filepath.Join(f.kf.dataDir, "imports")
	}
	sum, err := importer.Publish(ctx, b, sink, importer.Options{
		TimeCompress: f.compress, BatchSize: f.batch, Progress: os.Stderr, Terminal: isTerminal(os.Stderr),
		Ledger: importer.NewLedger(ledger), Force: f.force,
	})
	if sum.AlreadyImported {
		log.Info("import: this source was imported before; nothing sent (--force sends it again)", "ledger", ledger)
	} else if sum.Resumed > 0 {
		log.Info("import: resumed an interrupted import", "skipped", sum.Resumed)
	}
	if perr := printImportSummary(os.Stdout, sum, f.asJSON); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	if sum.Interrupted {
		return fmt.Errorf("import interrupted after %d of %d events; run the same import again to complete it (event ids are deterministic: what was sent is not applied twice)", sum.Sent, sum.Events)
	}
	return nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func printImportSummary(w io.Writer, s importer.Summary, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	if s.AlreadyImported {
		_, err := fmt.Fprintf(w, "already imported: %d events from %d rows in %d files (--force sends them again)\n", s.Events, s.Rows, s.Files)
		return err
	}
	_, err := fmt.Fprintf(w, "imported %d of %d events (%d accepted, %d rejected; %d sent by an earlier run) from %d rows in %d files, %d bad rows, in %.1fs\n",
		s.Sent, s.Events, s.Accepted, s.Rejected, s.Resumed, s.Rows, s.Files, s.BadRows, s.Seconds)
	return err
}

func newImportCommand() *ffcli.Command {
	return newGroupCommand("import", "eddy import <movielens|csv|parquet> [flags] PATH",
		"import history: MovieLens, CSV or Parquet files to Kafka or an ingest URL",
		newImportMovieLensCommand(), newImportCSVCommand(), newImportParquetCommand())
}

const importHelp = `Events are published in time order to <prefix>events (--to kafka, the default)
or to an ingest URL (--to http://host:8080). Rows without an event id get one
derived from the file, the row number and the row. The import keeps its
progress in a ledger (--ledger-dir, default <data-dir>/imports): re-running an
interrupted import sends only what it had not, and re-running a completed one
sends nothing (--force sends it again). The event's own time is kept in ts
(--time-compress moves it); the Kafka record is stamped with the time of
import, so the topic's time retention does not delete it at once. Bad rows
are reported by line and counted; the rest are imported. A progress line
shows the rate and ETA; a summary ends the run (--json for JSON).`

func oneArg(args []string, what string) (string, error) {
	if len(args) != 1 {
		return "", usageError{fmt.Errorf("want one %s, got %d arguments", what, len(args))}
	}
	return args[0], nil
}

func newImportMovieLensCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy import movielens", flag.ContinueOnError)
	var f importFlags
	f.register(fs)
	return &ffcli.Command{
		Name:       "movielens",
		ShortUsage: "eddy import movielens [flags] DIR",
		ShortHelp:  "import a MovieLens directory (u.data, ratings.csv or ratings.dat) as rating events",
		LongHelp:   "Reads the ratings of a MovieLens directory as events of type rating (value = the rating).\n\n" + importHelp,
		FlagSet:    fs,
		Options:    ffOptions(),
		UsageFunc:  usage,
		Exec: func(ctx context.Context, args []string) error {
			dir, err := oneArg(args, "MovieLens directory")
			if err != nil {
				return err
			}
			return f.run(ctx, dir, func(now time.Time) (*importer.Batch, error) { return importer.LoadMovieLens(dir, now) })
		},
	}
}

func newImportCSVCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy import csv", flag.ContinueOnError)
	var f importFlags
	f.register(fs)
	var csv csvFlags
	csv.register(fs, "", "")
	return &ffcli.Command{
		Name:       "csv",
		ShortUsage: "eddy import csv --columns MAP [--type T] [flags] PATH",
		ShortHelp:  "import CSV files (a file, a directory of .csv/.csv.gz files, or a glob)",
		LongHelp: `Reads CSV files (gzipped too) with a mapping from the event's fields to the
file's columns. For the Globo.com G1 clicks:

  eddy import csv --type click --ts-unit ms \
    --columns user_id=user_id,item_id=click_article_id,ts=click_timestamp,context.device=click_deviceGroup \
    ../shared/data/globo-g1-clicks/clicks

` + importHelp,
		FlagSet:   fs,
		Options:   ffOptions(),
		UsageFunc: usage,
		Exec: func(ctx context.Context, args []string) error {
			path, err := oneArg(args, "CSV path")
			if err != nil {
				return err
			}
			o, err := csv.parse()
			if err != nil {
				return err
			}
			return f.run(ctx, path, func(now time.Time) (*importer.Batch, error) { return importer.LoadCSV(path, o, now) })
		},
	}
}

func newImportParquetCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy import parquet", flag.ContinueOnError)
	var f importFlags
	f.register(fs)
	return &ffcli.Command{
		Name:       "parquet",
		ShortUsage: "eddy import parquet [flags] PATH",
		ShortHelp:  "import Parquet files with the archive's columns (Eddy's archive, or any file with user_id, item_id, type, ts)",
		LongHelp:   "Reads Parquet files (a file, a directory, or a glob) with the archive's event columns.\n\n" + importHelp,
		FlagSet:    fs,
		Options:    ffOptions(),
		UsageFunc:  usage,
		Exec: func(ctx context.Context, args []string) error {
			path, err := oneArg(args, "Parquet path")
			if err != nil {
				return err
			}
			return f.run(ctx, path, func(now time.Time) (*importer.Batch, error) { return importer.LoadParquet(path, now) })
		},
	}
}
