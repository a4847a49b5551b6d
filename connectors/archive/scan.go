package archive

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// ErrSchemaVersion matches the error for a file of another layout version.
var ErrSchemaVersion = errors.New("archive: unsupported file schema")

// ScanOptions bound a scan.
type ScanOptions struct {
	// From and To bound event time (recs: serving time) to [From, To);
	// a zero value leaves that side open.
	From, To time.Time
	// Progress, if set, is called after each file with the totals so far.
	Progress func(ScanStats)
	// SkipContext leaves EventRow.Context nil: the context map is the
	// costliest column to read, and training needs none of it.
	SkipContext bool
}

// ScanStats say what a scan read and what it could skip.
type ScanStats struct {
	Files            int   // files read
	FilesSkipped     int   // outside the range by folder or statistics, or not committed
	RowGroups        int   // row groups read
	RowGroupsSkipped int   // skipped by their ts statistics
	Rows             int64 // rows passed to fn
	Bytes            int64 // size of the files read
}

// Scan calls fn with every archived event whose time is in [from, to), in
// file order (by hour, then partition and offset range; within a file by
// time). It reads only the hour folders and the row groups (by their ts
// statistics) the range needs, and only files whose flush is committed, so
// a scan running beside the role, or after a crash, sees every event once.
// fn's *EventRow is reused after fn returns: copy the struct to keep it
// (its strings, pointers and maps are its own).
func Scan(ctx context.Context, st Store, from, to time.Time, fn func(*EventRow) error) (ScanStats, error) {
	return ScanEvents(ctx, st, ScanOptions{From: from, To: to}, fn)
}

// ScanEvents is Scan with options.
func ScanEvents(ctx context.Context, st Store, o ScanOptions, fn func(*EventRow) error) (ScanStats, error) {
	var cols eventColumns
	var rows []EventRow
	read := func(f *parquet.File, rg parquet.RowGroup, emit func(*EventRow) error) error {
		n := int(rg.NumRows())
		if cap(rows) < n {
			rows = make([]EventRow, n)
		}
		rows = rows[:n]
		// Rows are handed out one at a time and reused; the arrays their
		// pointers and maps point into are new per row group.
		clear(rows)
		if err := cols.read(f, rg, rows, !o.SkipContext); err != nil {
			return err
		}
		for i := range rows {
			if err := emit(&rows[i]); err != nil {
				return err
			}
		}
		return nil
	}
	return scan(ctx, st, Events, o, func(r *EventRow) int64 { return r.Ts }, read, fn)
}

// ScanRecs calls fn with every archived served list whose time is in the
// options' range, as ScanEvents does for events.
func ScanRecs(ctx context.Context, st Store, o ScanOptions, fn func(*RecsRow) error) (ScanStats, error) {
	return scan(ctx, st, Recs, o, func(r *RecsRow) int64 { return r.Ts }, readRows[RecsRow](), fn)
}

// Files lists the committed data files of kind that may hold rows in
// [from, to) by their folder, in scan order.
func Files(ctx context.Context, st Store, k Kind, from, to time.Time) ([]string, error) {
	fis, _, err := committedFiles(ctx, st, k, from, to)
	keys := make([]string, len(fis))
	for i, fi := range fis {
		keys[i] = fi.key
	}
	return keys, err
}

const hourMillis = int64(time.Hour / time.Millisecond)

func bounds(o ScanOptions) (lo, hi int64) {
	lo, hi = -1<<63, 1<<63-1
	if !o.From.IsZero() {
		lo = o.From.UnixMilli()
	}
	if !o.To.IsZero() {
		hi = o.To.UnixMilli()
	}
	return lo, hi
}

func committedFiles(ctx context.Context, st Store, k Kind, from, to time.Time) (files []fileInfo, skipped int, err error) {
	lo, hi := bounds(ScanOptions{From: from, To: to})
	states, err := loadStates(ctx, st, k)
	if err != nil {
		return nil, 0, err
	}
	keys, err := st.List(ctx, string(k)+"/")
	if err != nil {
		return nil, 0, err
	}
	for _, key := range keys {
		fi, ok := parseFileKey(k, key)
		if !ok {
			continue
		}
		if fi.hour+hourMillis <= lo || fi.hour >= hi {
			skipped++
			continue
		}
		// A file of a flush not committed yet (being written, or cut short
		// by a crash and about to be undone) is not part of the archive.
		if s, ok := states[fi.partition]; ok && fi.last >= s.Next {
			skipped++
			continue
		}
		files = append(files, fi)
	}
	return files, skipped, nil
}

// loadStates reads every partition state of kind; an archive without
// states (files copied from elsewhere) has every file committed.
func loadStates(ctx context.Context, st Store, k Kind) (map[int32]partitionState, error) {
	keys, err := st.List(ctx, "_state/"+string(k)+"/")
	if err != nil {
		return nil, err
	}
	out := map[int32]partitionState{}
	for _, key := range keys {
		name, ok := strings.CutSuffix(key[strings.LastIndexByte(key, '/')+1:], ".json")
		if !ok {
			continue
		}
		p, err := strconv.ParseInt(strings.TrimPrefix(name, "partition-"), 10, 32)
		if err != nil {
			continue
		}
		b, err := st.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		var s partitionState
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("archive: state %s: %w", key, err)
		}
		out[int32(p)] = s
	}
	return out, nil
}

// rowGroupReader hands every row of a row group to emit.
type rowGroupReader[R any] func(f *parquet.File, rg parquet.RowGroup, emit func(*R) error) error

// readRows reads row groups with parquet-go's row reader.
func readRows[R any]() rowGroupReader[R] {
	rows := make([]R, 4096)
	return func(_ *parquet.File, rg parquet.RowGroup, emit func(*R) error) error {
		rd := parquet.NewGenericRowGroupReader[R](rg)
		defer rd.Close()
		for {
			n, err := rd.Read(rows)
			for j := range n {
				if err := emit(&rows[j]); err != nil {
					return err
				}
			}
			// The reader fills maps and pointers already in rows; clearing
			// the used rows makes it allocate new ones, so that a row copied
			// by fn keeps its own.
			clear(rows[:n])
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
}

func scan[R any](ctx context.Context, st Store, k Kind, o ScanOptions, tsOf func(*R) int64, read rowGroupReader[R], fn func(*R) error) (ScanStats, error) {
	var stats ScanStats
	files, skipped, err := committedFiles(ctx, st, k, o.From, o.To)
	stats.FilesSkipped = skipped
	if err != nil {
		return stats, err
	}
	lo, hi := bounds(o)
	for _, fi := range files {
		if err := ctx.Err(); err != nil {
			return stats, err
		}
		if err := scanFile(ctx, st, k, fi.key, lo, hi, read, tsOf, fn, &stats); err != nil {
			return stats, err
		}
		if o.Progress != nil {
			o.Progress(stats)
		}
	}
	return stats, nil
}

// OpenFile opens one archive file and checks that it is of kind k and a
// layout version this build reads.
func OpenFile(ctx context.Context, st Store, k Kind, key string) (*parquet.File, Object, error) {
	obj, err := st.Open(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	f, err := parquet.OpenFile(obj, obj.Size(), parquet.SkipBloomFilters(true), parquet.SkipPageIndex(true), parquet.ReadBufferSize(1<<20))
	if err != nil {
		obj.Close()
		return nil, nil, fmt.Errorf("archive: %s: not a readable Parquet file: %w", key, err)
	}
	if got, _ := f.Lookup(MetaSchema); got != k.schemaName() {
		obj.Close()
		if got == "" {
			got = "(none)"
		}
		return nil, nil, fmt.Errorf("%w: %s has %s %s, this build reads %s", ErrSchemaVersion, key, MetaSchema, got, k.schemaName())
	}
	return f, obj, nil
}

func scanFile[R any](ctx context.Context, st Store, k Kind, key string, lo, hi int64, read rowGroupReader[R], tsOf func(*R) int64, fn func(*R) error, stats *ScanStats) (err error) {
	defer Recover(key, &err)
	f, obj, err := OpenFile(ctx, st, k, key)
	if err != nil {
		return err
	}
	defer obj.Close()
	ts, ok := f.Schema().Lookup("ts")
	if !ok {
		return fmt.Errorf("archive: %s: no ts column", key)
	}
	stats.Files++
	stats.Bytes += obj.Size()
	md := f.Metadata()
	emit := func(r *R) error {
		if t := tsOf(r); t >= lo && t < hi {
			stats.Rows++
			return fn(r)
		}
		return nil
	}
	for i, rg := range f.RowGroups() {
		if min, max, ok := tsRange(md.RowGroups[i].Columns[ts.ColumnIndex].MetaData.Statistics); ok && (max < lo || min >= hi) {
			stats.RowGroupsSkipped++
			continue
		}
		stats.RowGroups++
		if err := read(f, rg, emit); err != nil {
			return fmt.Errorf("archive: read %s: %w", key, err)
		}
	}
	return nil
}

// tsRange reads a row group's ts statistics (PLAIN int64).
func tsRange(s format.Statistics) (int64, int64, bool) {
	min, max := s.MinValue, s.MaxValue
	if len(min) != 8 || len(max) != 8 {
		return 0, 0, false
	}
	return int64(binary.LittleEndian.Uint64(min)), int64(binary.LittleEndian.Uint64(max)), true
}

// Archived returns, per partition of kind, the first offset not archived
// yet: every record of the partition before it is in a committed file.
// A reader that wants everything acknowledged up to some end offsets waits
// until Archived reaches them (the retrain role does).
func Archived(ctx context.Context, st Store, k Kind) (map[int32]int64, error) {
	states, err := loadStates(ctx, st, k)
	if err != nil {
		return nil, err
	}
	out := make(map[int32]int64, len(states))
	for p, s := range states {
		out[p] = s.Next
	}
	return out, nil
}
