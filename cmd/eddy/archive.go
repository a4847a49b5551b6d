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
	"sort"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrec/eddy/connectors/archive"
	"github.com/eddyrec/eddy/internal/httpserver"
	"github.com/eddyrec/eddy/stream"
)

// archiveFlags say where the archive is: the role's flags and every
// command that reads it.
type archiveFlags struct {
	dir string
	url string
	s3  archive.S3Options
}

func (a *archiveFlags) register(fs *flag.FlagSet, prefix string) {
	fs.StringVar(&a.dir, prefix+"archive-dir", "", "archive directory (default <data-dir>/archive)")
	fs.StringVar(&a.url, prefix+"archive-url", "", "archive in an S3-compatible bucket, s3://bucket/prefix, instead of --archive-dir (credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")
	fs.StringVar(&a.s3.Endpoint, prefix+"archive-s3-endpoint", "", "S3 endpoint host[:port] (default AWS S3)")
	fs.StringVar(&a.s3.Region, prefix+"archive-s3-region", "", "S3 region of the bucket")
	fs.BoolVar(&a.s3.Insecure, prefix+"archive-s3-insecure", false, "talk plain HTTP to the S3 endpoint (local test servers)")
}

// location is the archive's directory or URL; dataDir fills the default.
func (a *archiveFlags) location(dataDir string) string {
	switch {
	case a.url != "":
		return a.url
	case a.dir != "":
		return a.dir
	}
	return filepath.Join(dataDir, "archive")
}

func (a *archiveFlags) open(ctx context.Context, dataDir string) (archive.Store, error) {
	if a.url != "" && a.dir != "" {
		return nil, usageError{errors.New("--archive-dir and --archive-url name two archives; give one")}
	}
	return archive.OpenStore(ctx, a.location(dataDir), a.s3)
}

// archiveRoleFlags are the archive role's flags.
type archiveRoleFlags struct {
	where archiveFlags
	cfg   archive.Config
}

func (f *archiveRoleFlags) register(fs *flag.FlagSet, prefix string) {
	f.where.register(fs, prefix)
	f.cfg = archive.DefaultConfig()
	fs.StringVar(&f.cfg.Group, prefix+"archive-group", f.cfg.Group, "consumer group of the archive role's instances")
	fs.StringVar(&f.cfg.InstanceID, prefix+"archive-instance-id", "", "static group member id (KIP-345): a restart takes its partitions back at once; unique per instance")
	fs.IntVar(&f.cfg.FlushRows, prefix+"archive-flush-rows", f.cfg.FlushRows, "write a partition's buffer once it holds this many records")
	fs.Int64Var(&f.cfg.FlushBytes, prefix+"archive-flush-bytes", f.cfg.FlushBytes, "write a partition's buffer once it holds this many bytes of record values")
	fs.DurationVar(&f.cfg.FlushAge, prefix+"archive-flush-age", f.cfg.FlushAge, "write a partition's buffer once its oldest record was read this long ago")
}

func (f *archiveRoleFlags) config(kf *kafkaFlags) (archive.Config, error) {
	c := f.cfg
	c.EventsTopic = kf.layout.Name(stream.TopicEvents)
	c.RecsTopic = kf.layout.Name(stream.TopicRecs)
	if err := c.Validate(); err != nil {
		return c, usageError{err}
	}
	return c, nil
}

// startArchive starts the archive role; onFail, if set, hears of a role
// that stopped on its own.
func startArchive(ctx context.Context, kf *kafkaFlags, af *archiveRoleFlags, srv *httpserver.Server, reg prometheus.Registerer, log *slog.Logger, onFail func(error)) (func(), error) {
	log = log.With("role", "archive")
	cfg, err := af.config(kf)
	if err != nil {
		return nil, err
	}
	st, err := af.where.open(ctx, kf.dataDir)
	if err != nil {
		return nil, err
	}
	opts, err := kf.client.Opts()
	if err != nil {
		return nil, err
	}
	role, err := archive.New(cfg, st, opts, reg, log)
	if err != nil {
		return nil, err
	}
	log.Info("archive role", "store", st.String(), "flush_rows", cfg.FlushRows, "flush_bytes", cfg.FlushBytes, "flush_age", cfg.FlushAge)
	bg := startBackground(ctx, "archive", role.Run, log, onFail)
	srv.AddReadiness("archive", func(context.Context) error {
		if err := bg.failed(); err != nil {
			return err
		}
		return role.Ready()
	})
	return bg.stop, nil
}

func newArchiveCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy archive", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	kf := newKafkaFlags()
	kf.register(fs)
	var af archiveRoleFlags
	af.register(fs, "")
	httpAddr := fs.String("http-addr", ":8085", "HTTP listen address (/metrics, /healthz, /readyz)")
	drain := fs.Duration("shutdown-timeout", 30*time.Second, "how long SIGTERM waits for the HTTP server to drain")
	return &ffcli.Command{
		Name:       "archive",
		ShortUsage: "eddy archive [flags] | eddy archive scan [flags]",
		ShortHelp:  "archive events and served lists to Parquet, exactly once",
		LongHelp: `Consumes <prefix>events and <prefix>recs (read_committed) and writes them as
zstd-compressed Parquet files, one per partition, flush and event hour:

  <archive>/events/dt=YYYY-MM-DD/hour=HH/part-<partition>-<first>-<last>.parquet
  <archive>/recs/dt=YYYY-MM-DD/hour=HH/part-<partition>-<first>-<last>.parquet

A partition's buffer is written when it holds --archive-flush-rows records,
--archive-flush-bytes bytes, or its oldest record is --archive-flush-age old.
Each partition's progress lives in the archive (<archive>/_state/), so a
restart or another instance resumes after the last archived offset: after a
kill -9 at any point every record is in exactly one file. A full disk or an
unreachable bucket stops the affected partitions (readiness fails, the
error is logged) and they resume without loss once it can be written again.

The archive is --archive-dir (default <data-dir>/archive) or an
S3-compatible bucket, --archive-url s3://bucket/prefix with
--archive-s3-endpoint for services other than AWS. 'eddy up' runs this role
too. 'eddy archive scan' reads the archive back.`,
		FlagSet:     fs,
		Options:     ffOptions(),
		UsageFunc:   usage,
		Subcommands: []*ffcli.Command{newArchiveScanCommand()},
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown argument %q (subcommand: scan)", args[0])}
			}
			// The flags are checked before a broker is started.
			validate := func() error { _, err := af.config(kf); return err }
			return serveRoles(ctx, &common, kf, *httpAddr, *drain, validate,
				func(ctx context.Context, srv *httpserver.Server, reg prometheus.Registerer, log *slog.Logger) (func(), error) {
					return startArchive(ctx, kf, &af, srv, reg, log, nil)
				})
		},
	}
}

// scanSummary is what `eddy archive scan` prints.
type scanSummary struct {
	Kind             string           `json:"kind"`
	From             string           `json:"from,omitempty"`
	To               string           `json:"to,omitempty"`
	Rows             int64            `json:"rows"`
	ByType           map[string]int64 `json:"by_type,omitempty"`
	Users            int              `json:"users"`
	Items            int              `json:"items"`
	MinTs            string           `json:"min_ts,omitempty"`
	MaxTs            string           `json:"max_ts,omitempty"`
	Files            int              `json:"files"`
	FilesSkipped     int              `json:"files_skipped"`
	RowGroups        int              `json:"row_groups"`
	RowGroupsSkipped int              `json:"row_groups_skipped"`
	Bytes            int64            `json:"bytes"`
	Seconds          float64          `json:"seconds"`
}

func newArchiveScanCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy archive scan", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	dataDir := fs.String("data-dir", "./data", "data directory (the archive defaults to <data-dir>/archive)")
	var where archiveFlags
	where.register(fs, "")
	kind := fs.String("kind", "events", "what to read: events or recs")
	from := fs.String("from", "", "first event time to read (RFC 3339 or YYYY-MM-DD; default: the start)")
	to := fs.String("to", "", "end of the range, exclusive (default: no end)")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	return &ffcli.Command{
		Name:       "scan",
		ShortUsage: "eddy archive scan [--from T] [--to T] [--kind events|recs] [--json]",
		ShortHelp:  "read the archive back and summarise a time range",
		LongHelp: `Reads the archived events (or served lists) of [--from, --to) with the reader
the batch trainer uses: only the hour folders and row groups the range needs,
only committed files. Prints rows, rows by type, distinct users and items,
the time span, and what it read and skipped.`,
		FlagSet:   fs,
		Options:   ffOptions(),
		UsageFunc: usage,
		Exec: func(ctx context.Context, _ []string) error {
			log, err := common.logger()
			if err != nil {
				return err
			}
			k := archive.Kind(*kind)
			if k != archive.Events && k != archive.Recs {
				return usageError{fmt.Errorf("--kind %q: want events or recs", *kind)}
			}
			var o archive.ScanOptions
			if o.From, err = parseWhen(*from); err != nil {
				return usageError{fmt.Errorf("--from: %w", err)}
			}
			if o.To, err = parseWhen(*to); err != nil {
				return usageError{fmt.Errorf("--to: %w", err)}
			}
			st, err := where.open(ctx, *dataDir)
			if err != nil {
				return err
			}
			sum := scanSummary{Kind: *kind, From: *from, To: *to, ByType: map[string]int64{}}
			users, items := map[string]struct{}{}, map[string]struct{}{}
			minTs, maxTs := int64(1<<63-1), int64(-1<<63)
			seen := func(ts int64) {
				minTs, maxTs = min(minTs, ts), max(maxTs, ts)
			}
			start := time.Now()
			last := start
			o.Progress = func(s archive.ScanStats) {
				if now := time.Now(); now.Sub(last) >= 2*time.Second {
					last = now
					log.Info("archive scan", "files", s.Files, "rows", s.Rows, "rows_per_second", int64(float64(s.Rows)/now.Sub(start).Seconds()))
				}
			}
			var stats archive.ScanStats
			switch k {
			case archive.Events:
				stats, err = archive.ScanEvents(ctx, st, o, func(r *archive.EventRow) error {
					sum.ByType[r.Type]++
					users[r.UserID], items[r.ItemID] = struct{}{}, struct{}{}
					seen(r.Ts)
					return nil
				})
			case archive.Recs:
				stats, err = archive.ScanRecs(ctx, st, o, func(r *archive.RecsRow) error {
					users[r.UserID] = struct{}{}
					for _, it := range r.Items {
						items[it.ItemID] = struct{}{}
					}
					seen(r.Ts)
					return nil
				})
				sum.ByType = nil
			}
			if err != nil {
				return err
			}
			sum.Rows, sum.Users, sum.Items = stats.Rows, len(users), len(items)
			sum.Files, sum.FilesSkipped, sum.RowGroups, sum.RowGroupsSkipped, sum.Bytes = stats.Files, stats.FilesSkipped, stats.RowGroups, stats.RowGroupsSkipped, stats.Bytes
			sum.Seconds = time.Since(start).Seconds()
			if stats.Rows > 0 {
				sum.MinTs = time.UnixMilli(minTs).UTC().Format(time.RFC3339Nano)
				sum.MaxTs = time.UnixMilli(maxTs).UTC().Format(time.RFC3339Nano)
			}
			return printScanSummary(os.Stdout, sum, *asJSON)
		},
	}
}

func printScanSummary(w io.Writer, s scanSummary, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	fmt.Fprintf(w, "%s: %d rows, %d users, %d items", s.Kind, s.Rows, s.Users, s.Items)
	if s.MinTs != "" {
		fmt.Fprintf(w, ", %s … %s", s.MinTs, s.MaxTs)
	}
	fmt.Fprintln(w)
	types := make([]string, 0, len(s.ByType))
	for t := range s.ByType {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		fmt.Fprintf(w, "  %-10s %d\n", t, s.ByType[t])
	}
	_, err := fmt.Fprintf(w, "read %d files (%d skipped), %d row groups (%d skipped), %d bytes in %.2fs\n",
		s.Files, s.FilesSkipped, s.RowGroups, s.RowGroupsSkipped, s.Bytes, s.Seconds)
	return err
}

// parseWhen reads an RFC 3339 time or a YYYY-MM-DD date (UTC midnight);
// "" is the zero time (an open end).
func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2026-12-07T10:00:00Z) or a date (2026-12-07)", s)
}
