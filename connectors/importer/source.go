package importer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/eddyrec/eddy/connectors/archive"
	"github.com/eddyrec/eddy/connectors/movielens"
	"github.com/eddyrec/eddy/event"
)

// MaxBadRowsKept bounds the bad rows a Batch lists; all are counted.
const MaxBadRowsKept = 100

// BadRow is a source row that could not be imported.
type BadRow struct {
	File string
	Line int64 // 1-based line (CSV, MovieLens) or row number (Parquet)
	Err  error
}

func (b BadRow) String() string { return fmt.Sprintf("%s:%d: %v", b.File, b.Line, b.Err) }

// Batch is a loaded source: its valid events sorted by time, and what was
// wrong with the rest.
type Batch struct {
	Events  []event.Event
	Bad     []BadRow // the first MaxBadRowsKept
	BadRows int64
	Rows    int64 // rows read, good and bad
	Files   int
	// Source describes where the events came from; Fingerprint names it
	// in the Ledger.
	Source      string
	Fingerprint string
}

func (b *Batch) bad(file string, line int64, err error) {
	b.BadRows++
	if len(b.Bad) < MaxBadRowsKept {
		b.Bad = append(b.Bad, BadRow{File: filepath.Base(file), Line: line, Err: err})
	}
}

// add validates e (against now, for the future-skew rule) and keeps it or
// counts its row as bad.
func (b *Batch) add(e event.Event, file string, line int64, now time.Time) {
	if err := e.Validate(now); err != nil {
		b.bad(file, line, err)
		return
	}
	b.Events = append(b.Events, e)
}

// sortByTime orders the events by ts, keeping source order among equal
// times, so that a replay is deterministic.
func (b *Batch) sortByTime() {
	slices.SortStableFunc(b.Events, func(x, y event.Event) int { return x.Time.Compare(y.Time) })
}

// eventID derives a row's event id from where it came from and what it
// holds: the same row of the same file always gets the same id.
func eventID(kind, file string, line int64, row []byte) string {
	h := sha256.New()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(filepath.Base(file)))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, line, 10))
	h.Write([]byte{0})
	h.Write(row)
	return "imp-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// files expands path: a file, a directory (its files matching ext, in name
// order, recursively) or a glob.
func files(path string, exts ...string) ([]string, error) {
	if strings.ContainsAny(path, "*?[") {
		m, err := filepath.Glob(path)
		if err != nil {
			return nil, fmt.Errorf("importer: pattern %q: %w", path, err)
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("importer: no file matches %q", path)
		}
		return m, nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("importer: %w", err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	var out []string
	err = filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		for _, ext := range exts {
			if strings.HasSuffix(d.Name(), ext) {
				out = append(out, p)
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("importer: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("importer: no %s file under %q", strings.Join(exts, " or "), path)
	}
	slices.Sort(out)
	return out, nil
}

// open opens a file, decompressing .gz.
func open(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("importer: %w", err)
	}
	if !strings.HasSuffix(path, ".gz") {
		return f, nil
	}
	z, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("importer: %s: %w", path, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{z, f}, nil
}

// LoadMovieLens reads the ratings file of a MovieLens directory (u.data,
// ratings.csv or ratings.dat) as rating events: value is the rating, ts
// the rating's time.
func LoadMovieLens(dir string, now time.Time) (*Batch, error) {
	path, format, err := movielens.Find(dir)
	if err != nil {
		return nil, err
	}
	r, err := open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b := &Batch{Files: 1, Source: "movielens " + path, Fingerprint: fingerprint("movielens", "", []string{path})}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<10)
	var line int64
	for sc.Scan() {
		line++
		raw := bytes.TrimRight(sc.Bytes(), "\r")
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		if format == movielens.FormatCSV && line == 1 && bytes.HasPrefix(raw, []byte("userId")) {
			continue
		}
		b.Rows++
		rt, err := movielens.ParseLine(raw, format)
		if err != nil {
			b.bad(path, line, err)
			continue
		}
		b.add(event.Event{
			EventID:  eventID("movielens", path, line, raw),
			UserID:   rt.UserID,
			ItemID:   rt.ItemID,
			Type:     event.Rating,
			Time:     time.Unix(rt.Unix, 0).UTC(),
			Value:    rt.Value,
			HasValue: true,
		}, path, line, now)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("importer: %s: line %d: %w", path, line+1, err)
	}
	b.sortByTime()
	return b, nil
}

// CSVOptions map a CSV file's columns to the event's fields.
type CSVOptions struct {
	// Columns maps an event field (event_id, user_id, item_id, type, ts,
	// value, duration, request_id, or context.<key>) to a column name
	// (with Header) or a 1-based column number.
	Columns map[string]string
	// Type is the event type of rows without a type column.
	Type event.Type
	// TsUnit is how ts is written: "s", "ms", "rfc3339", or "auto"
	// (integers of 12 digits or more are milliseconds, shorter ones
	// seconds, anything else RFC 3339).
	TsUnit string
	// Comma separates fields (default ',').
	Comma rune
	// NoHeader says the first line is data; columns are then numbers.
	NoHeader bool
}

var csvFields = []string{"event_id", "user_id", "item_id", "type", "ts", "value", "duration", "request_id"}

// ParseColumns reads a --columns mapping: "user_id=user,item_id=article,
// ts=time,context.device=device".
func ParseColumns(s string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		field, col, ok := strings.Cut(kv, "=")
		if !ok || field == "" || col == "" {
			return nil, fmt.Errorf("importer: column mapping %q: want field=column", kv)
		}
		if !slices.Contains(csvFields, field) && !strings.HasPrefix(field, "context.") {
			return nil, fmt.Errorf("importer: column mapping %q: unknown field %q (fields: %s, context.<key>)", kv, field, strings.Join(csvFields, ", "))
		}
		if _, dup := m[field]; dup {
			return nil, fmt.Errorf("importer: column mapping: field %q mapped twice", field)
		}
		m[field] = col
	}
	for _, need := range []string{"user_id", "item_id", "ts"} {
		if _, ok := m[need]; !ok {
			return nil, fmt.Errorf("importer: column mapping: %s is required", need)
		}
	}
	return m, nil
}

// LoadCSV reads CSV files (path: a file, a directory of .csv / .csv.gz
// files, or a glob) with o's mapping.
func LoadCSV(path string, o CSVOptions, now time.Time) (*Batch, error) {
	if o.TsUnit == "" {
		o.TsUnit = "auto"
	}
	switch o.TsUnit {
	case "auto", "s", "ms", "rfc3339":
	default:
		return nil, fmt.Errorf("importer: ts unit %q: want auto, s, ms or rfc3339", o.TsUnit)
	}
	if _, ok := o.Columns["type"]; !ok && o.Type == event.TypeInvalid {
		return nil, errors.New("importer: no type column and no event type for the rows")
	}
	fs, err := files(path, ".csv", ".csv.gz", ".tsv", ".tsv.gz")
	if err != nil {
		return nil, err
	}
	b := &Batch{Files: len(fs), Source: "csv " + path,
		Fingerprint: fingerprint("csv", fmt.Sprintf("%v|%v|%s|%c|%v", slices.Sorted(maps.Keys(o.Columns)), o.Columns, o.TsUnit, o.Comma, o.NoHeader)+o.Type.String(), fs)}
	for _, f := range fs {
		if err := loadCSVFile(b, f, o, now); err != nil {
			return nil, err
		}
	}
	b.sortByTime()
	return b, nil
}

func loadCSVFile(b *Batch, path string, o CSVOptions, now time.Time) error {
	r, err := open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	cr := csv.NewReader(bufio.NewReaderSize(r, 1<<20))
	if o.Comma != 0 {
		cr.Comma = o.Comma
	}
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	index := map[string]int{}
	if !o.NoHeader {
		head, err := cr.Read()
		if err != nil {
			return fmt.Errorf("importer: %s: header: %w", path, err)
		}
		for i, h := range head {
			index[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
		}
	}
	cols := map[string]int{}
	for field, col := range o.Columns {
		i, ok := index[col]
		if !ok {
			n, err := strconv.Atoi(col)
			if err != nil || n < 1 {
				return fmt.Errorf("importer: %s: no column %q for %s (columns: %s)", path, col, field, strings.Join(slices.Sorted(maps.Keys(index)), ", "))
			}
			i = n - 1
		}
		cols[field] = i
	}
	var raw []byte
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				b.Rows++
				b.bad(path, int64(pe.Line), pe.Err)
				continue
			}
			return fmt.Errorf("importer: %s: %w", path, err)
		}
		line, _ := cr.FieldPos(0)
		b.Rows++
		raw = raw[:0]
		for i, f := range rec {
			if i > 0 {
				raw = append(raw, 0x1f)
			}
			raw = append(raw, f...)
		}
		e, err := csvEvent(rec, cols, o)
		if err != nil {
			b.bad(path, int64(line), err)
			continue
		}
		if e.EventID == "" {
			e.EventID = eventID("csv", path, int64(line), raw)
		}
		b.add(e, path, int64(line), now)
	}
}

func csvEvent(rec []string, cols map[string]int, o CSVOptions) (event.Event, error) {
	e := event.Event{Type: o.Type}
	for field, i := range cols {
		if i >= len(rec) {
			return e, fmt.Errorf("want at least %d fields, got %d", i+1, len(rec))
		}
		v := strings.TrimSpace(rec[i])
		if v == "" {
			continue
		}
		switch field {
		case "event_id":
			e.EventID = v
		case "user_id":
			e.UserID = v
		case "item_id":
			e.ItemID = v
		case "request_id":
			e.RequestID = v
		case "type":
			t, ok := event.ParseType(v)
			if !ok {
				return e, fmt.Errorf("type %q: unknown", v)
			}
			e.Type = t
		case "ts":
			t, err := parseTs(v, o.TsUnit)
			if err != nil {
				return e, err
			}
			e.Time = t
		case "value", "duration":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return e, fmt.Errorf("%s %q: not a number", field, v)
			}
			if field == "value" {
				e.Value, e.HasValue = f, true
			} else {
				e.Duration, e.HasDuration = f, true
			}
		default:
			if e.Context == nil {
				e.Context = map[string]string{}
			}
			e.Context[strings.TrimPrefix(field, "context.")] = v
		}
	}
	return e, nil
}

func parseTs(v, unit string) (time.Time, error) {
	if unit == "rfc3339" || (unit == "auto" && strings.ContainsAny(v, "-T:")) {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, fmt.Errorf("ts %q: not RFC 3339", v)
		}
		return t.UTC().Truncate(time.Millisecond), nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("ts %q: not an integer (unit %s)", v, unit)
	}
	if unit == "ms" || (unit == "auto" && len(strings.TrimPrefix(v, "-")) >= 12) {
		return time.UnixMilli(n).UTC(), nil
	}
	return time.Unix(n, 0).UTC(), nil
}

// LoadParquet reads Parquet files (a file, a directory of .parquet files,
// or a glob) with the archive's event columns: Eddy's own archive or any
// file that has at least user_id, item_id, type and ts (TIMESTAMP millis
// or INT64 unix milliseconds). Archive files of another schema version
// are refused.
func LoadParquet(path string, now time.Time) (*Batch, error) {
	fs, err := files(path, ".parquet")
	if err != nil {
		return nil, err
	}
	b := &Batch{Files: len(fs), Source: "parquet " + path, Fingerprint: fingerprint("parquet", "", fs)}
	for _, f := range fs {
		if err := loadParquetFile(b, f, now); err != nil {
			return nil, err
		}
	}
	b.sortByTime()
	return b, nil
}

func loadParquetFile(b *Batch, path string, now time.Time) (err error) {
	defer archive.Recover(path, &err)
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("importer: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return fmt.Errorf("importer: %w", err)
	}
	pf, err := parquet.OpenFile(fh, st.Size(), parquet.SkipBloomFilters(true), parquet.SkipPageIndex(true))
	if err != nil {
		return fmt.Errorf("importer: %s: not a readable Parquet file: %w", path, err)
	}
	// An outside file may claim pages far larger than itself.
	if err := archive.CheckPages(pf, fh, st.Size()); err != nil {
		return fmt.Errorf("importer: %s: %w", path, err)
	}
	if v, ok := pf.Lookup(archive.MetaSchema); ok && v != "eddy.archive.events/"+strconv.Itoa(archive.SchemaVersion) {
		return fmt.Errorf("%w: %s has %s %s, this build reads eddy.archive.events/%d", archive.ErrSchemaVersion, path, archive.MetaSchema, v, archive.SchemaVersion)
	}
	for _, need := range []string{"user_id", "item_id", "type", "ts"} {
		if _, ok := pf.Schema().Lookup(need); !ok {
			return fmt.Errorf("importer: %s: no %q column (needs user_id, item_id, type, ts)", path, need)
		}
	}
	rd := parquet.NewGenericReader[archive.EventRow](pf)
	defer rd.Close()
	rows := make([]archive.EventRow, 1024)
	var n int64
	for {
		k, err := rd.Read(rows)
		for i := range k {
			n++
			b.Rows++
			r := &rows[i]
			e, eerr := r.Event()
			if eerr != nil {
				b.bad(path, n, eerr)
				continue
			}
			if e.EventID == "" {
				e.EventID = eventID("parquet", path, n, []byte(r.UserID+"\x1f"+r.ItemID+"\x1f"+r.Type+"\x1f"+strconv.FormatInt(r.Ts, 10)))
			}
			b.add(e, path, n, now)
		}
		clear(rows[:k])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("importer: read %s: %w", path, err)
		}
	}
}
