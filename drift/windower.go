package drift

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/stream/task"
)

// SourceHeader is the record header naming which source topic a record of
// the drift input topic was copied from: "events" or "recs".
const SourceHeader = "eddy-drift-source"

// PartitionProcessor is the drift role's second stage, a task.Processor
// over one partition of the input topic (sampled events and served lists,
// keyed by user id): it feeds a Partition, and Emits every window the
// partition closes, and its progress, as a WindowRecord to the windows
// topic.
//
// State: re-encoding a whole Partition (open windows, per-user aggregates,
// the served lists held for the outcome join — megabytes) after every
// batch would write megabytes of changelog per batch. Instead the state is
// a snapshot of the Partition (and of the records waiting in the aligner)
// and the input offset it was taken at; the input records after that
// offset are the rest of the state, and the input topic already holds
// them. A restarted task restores the snapshot and re-reads the input from
// that offset to its first batch (task.Batch.ReadSource); Partition is
// deterministic, so it reaches the state it had, and the windows the
// replay closes were already emitted by the batches that closed them. A
// batch writes nothing for its records: a new snapshot replaces the old
// one once the input read since is as large as the last snapshot and at
// least SnapshotBytes, or SnapshotEvery after the last (the input keeps
// its records for a day). Snapshots are written through task.Batch, so
// they commit atomically with the source offset and the emitted windows.
//
// Earlier versions appended every applied record's bytes to a log in the
// state instead (~1.5 µs per record of the role's ~5.5); a state in that
// layout is replayed from its log once and replaced by a snapshot.
type PartitionProcessor struct {
	schema     *Schema
	partition  int32
	partitions int32
	out        string
	snapBytes  int
	alignSpan  int64
	alignMax   int
	log        *slog.Logger
	counters   *roleCounters

	loaded bool
	part   *Partition
	align  *aligner
	// models holds the model versions served, one entry per change in
	// list-time order (bounded): a window record names the version
	// served last before the window's end.
	models []modelChange
	// replayFrom is the input offset the snapshot was taken at: the state
	// is the snapshot and the input records from there on.
	replayFrom int64
	snapAt     time.Time // when the snapshot was taken
	snapEvery  time.Duration
	sinceSnap  int // input bytes applied since the snapshot
	lastSnap   int // size of the latest snapshot
	// legacyFrom and legacyTo are the entries of an earlier version's
	// record log found at load, deleted by the next snapshot (legacy).
	legacy               bool
	legacyFrom, legacyTo uint64
	closed               []*Window
}

const (
	keySnapshot = "snap"
	// keyReplay holds replayFrom (u64) and the snapshot's time (i64 Unix
	// ms).
	keyReplay = "replay"
	// The record log of earlier versions: the range of its entries (two
	// u64) and the entries, each records as (source u8, length u32,
	// bytes).
	keyLogRange = "log/range"
	logPrefix   = "log/"
)

// newPartitionProcessor returns the processor of one input partition.
func newPartitionProcessor(s *Schema, partition, partitions int32, rc *RoleConfig, c *roleCounters, log *slog.Logger) *PartitionProcessor {
	return &PartitionProcessor{
		schema: s, partition: partition, partitions: partitions, out: rc.Topics.Windows,
		snapBytes: rc.SnapshotBytes, snapEvery: rc.SnapshotEvery, alignSpan: rc.AlignSpan.Milliseconds(), alignMax: rc.AlignMaxRecords,
		counters: c, log: log.With("partition", partition),
	}
}

// Process implements task.Processor.
func (p *PartitionProcessor) Process(ctx context.Context, recs []*kgo.Record, b *task.Batch) error {
	if !p.loaded {
		if err := p.load(ctx, b, recs[0].Offset); err != nil {
			return err
		}
		p.loaded = true
	}
	sent := p.part.ClosedThrough()
	for _, r := range recs {
		// Invalid records count too: a restart re-reads them.
		p.sinceSnap += len(r.Value)
		src := recordSource(r)
		if !p.observe(src, r.Value, r.Timestamp) {
			p.counters.invalid.WithLabelValues(src.String()).Inc()
		}
	}
	p.closed = p.part.TakeClosed(p.closed[:0])
	for i, w := range p.closed {
		wb, err := w.MarshalBinary()
		if err != nil {
			return fmt.Errorf("drift: partition %d: encode window %d: %w", p.partition, w.Index, err)
		}
		// A record's closed-through must not run ahead of the windows
		// still to come in later records, or the merge would complete
		// their index without them.
		through := w.Index
		if i == len(p.closed)-1 {
			through = p.part.ClosedThrough()
		}
		if err := p.emit(b, wb, p.modelAt(w.End.UnixMilli()), through); err != nil {
			return err
		}
		p.counters.partitionWindows.Inc()
		p.closed[i] = nil
	}
	if len(p.closed) == 0 && p.part.ClosedThrough() != sent {
		if err := p.emit(b, nil, "", p.part.ClosedThrough()); err != nil {
			return err
		}
	}
	// Snapshot once the input read since is as big as a snapshot (and at
	// least SnapshotBytes): snapshot writes stay within the input's size,
	// and a restart re-reads at most that much. SnapshotEvery keeps a slow
	// partition's replay within the input's retention.
	if p.legacy || p.sinceSnap >= max(p.snapBytes, p.lastSnap) ||
		p.sinceSnap > 0 && time.Since(p.snapAt) >= p.snapEvery {
		return p.snapshot(b, recs[len(recs)-1].Offset+1)
	}
	return nil
}

type modelChange struct {
	ms      int64
	version string
}

const maxModelChanges = 16

// noteModel records the version of a served list at ms.
func (p *PartitionProcessor) noteModel(v string, ms int64) {
	if v == "" {
		return
	}
	n := len(p.models)
	if n > 0 && (p.models[n-1].version == v || ms < p.models[n-1].ms) {
		return // unchanged, or an older list (out of order): keep the newest
	}
	p.models = append(p.models, modelChange{ms, v})
	if len(p.models) > maxModelChanges {
		p.models = append(p.models[:0], p.models[len(p.models)-maxModelChanges:]...)
	}
}

// modelAt returns the version served last at or before ms ("" if none).
func (p *PartitionProcessor) modelAt(ms int64) string {
	v := ""
	for _, c := range p.models {
		if c.ms > ms {
			break
		}
		v = c.version
	}
	return v
}

func (p *PartitionProcessor) emit(b *task.Batch, window []byte, model string, through int64) error {
	wr := WindowRecord{
		Partition: p.partition, Partitions: p.partitions, ClosedThrough: through,
		ModelVersion: model, Window: window,
	}
	if wm := p.part.Watermark(); !wm.IsZero() {
		wr.Watermark = max(wm.UnixMilli(), 0)
	}
	v, err := wr.AppendBinary(nil)
	if err != nil {
		return fmt.Errorf("drift: partition %d: %w", p.partition, err)
	}
	b.Emit(p.out, strconv.AppendInt(nil, int64(p.partition), 10), v)
	return nil
}

// observe takes one input record through the aligner into the
// Partition; false when it is not valid.
//
// now is the clock of the events' future-skew rule (see aligner.push).
func (p *PartitionProcessor) observe(src Source, v []byte, now time.Time) bool {
	if !p.align.push(src, v, now) {
		return false
	}
	defer p.align.own()
	forced := p.align.Forced
	for {
		r, ok := p.align.next()
		if !ok {
			break
		}
		if r.ev != nil {
			p.part.ObserveEvent(r.ev)
			p.align.release(r.ev)
			continue
		}
		p.noteModel(r.sl.ModelVersion, r.sl.Time.UnixMilli())
		p.part.ObserveServedList(r.sl)
	}
	if d := p.align.Forced - forced; d > 0 && p.counters != nil {
		p.counters.alignForced.Add(float64(d))
	}
	return true
}

func recordSource(r *kgo.Record) Source {
	for _, h := range r.Headers {
		if h.Key == SourceHeader {
			var s Source
			if s.UnmarshalText(h.Value) == nil {
				return s
			}
			return 0
		}
	}
	return 0
}

func logKey(seq uint64) []byte {
	return strconv.AppendUint([]byte(logPrefix), seq, 10)
}

// putReplay stores replayFrom and the snapshot's time.
func (p *PartitionProcessor) putReplay(b *task.Batch) error {
	var v [16]byte
	binary.LittleEndian.PutUint64(v[:8], uint64(p.replayFrom))
	binary.LittleEndian.PutUint64(v[8:], uint64(p.snapAt.UnixMilli()))
	if err := b.Put([]byte(keyReplay), v[:]); err != nil {
		return fmt.Errorf("drift: partition %d: replay offset: %w", p.partition, err)
	}
	return nil
}

// Snapshot layout: model changes u8 × (ms i64, len u16, version)
// | partition state len u32, bytes | aligner state (align.go).
//
// snapshot stores the state as of input offset next.
func (p *PartitionProcessor) snapshot(b *task.Batch, next int64) error {
	ps, err := p.part.MarshalBinary()
	if err != nil {
		return fmt.Errorf("drift: partition %d: snapshot: %w", p.partition, err)
	}
	e := encoder{b: make([]byte, 0, len(ps)+32)}
	e.u8(uint8(len(p.models)))
	for _, c := range p.models {
		e.i64(c.ms)
		if err := e.str16(c.version); err != nil {
			return err
		}
	}
	e.blob(ps)
	p.align.encode(&e)
	if err := putBlob(b, keySnapshot, e.b); err != nil {
		return err
	}
	if p.legacy {
		for s := p.legacyFrom; s < p.legacyTo; s++ {
			if err := b.Delete(logKey(s)); err != nil {
				return fmt.Errorf("drift: partition %d: delete the record log: %w", p.partition, err)
			}
		}
		if err := b.Delete([]byte(keyLogRange)); err != nil {
			return fmt.Errorf("drift: partition %d: delete the record log: %w", p.partition, err)
		}
		p.legacy = false
	}
	p.replayFrom, p.snapAt, p.sinceSnap, p.lastSnap = next, time.Now(), 0, len(e.b)
	p.counters.snapshots.Inc()
	p.counters.snapshotBytes.Observe(float64(len(e.b)))
	return p.putReplay(b)
}

// load restores the snapshot and re-applies the input from the offset it
// was taken at to first, the offset of the batch being processed.
func (p *PartitionProcessor) load(ctx context.Context, b *task.Batch, first int64) error {
	p.part = NewPartition(p.schema)
	p.align = newAligner(p.alignSpan, p.alignMax)
	snap, found, err := getBlob(b, keySnapshot)
	if err != nil {
		return err
	}
	from, ms, replay, err := p.getPair(b, keyReplay)
	if err != nil {
		return err
	}
	if replay {
		p.replayFrom, p.snapAt = int64(from), time.UnixMilli(int64(ms))
		if p.replayFrom < 0 || p.replayFrom > first {
			return fmt.Errorf("drift: partition %d: replay from offset %d, after the batch's first offset %d", p.partition, p.replayFrom, first)
		}
	}
	p.legacyFrom, p.legacyTo, p.legacy, err = p.getPair(b, keyLogRange)
	if err != nil {
		return err
	}
	if p.legacy && p.legacyFrom > p.legacyTo {
		return fmt.Errorf("drift: partition %d: log range %d..%d", p.partition, p.legacyFrom, p.legacyTo)
	}
	if found {
		p.lastSnap = len(snap)
		d := &decoder{b: snap}
		var models []modelChange
		nm := int(d.u8())
		for range nm {
			ms := d.i64()
			models = append(models, modelChange{ms, d.str16()})
		}
		ps := d.blob()
		if d.err != nil {
			return fmt.Errorf("drift: partition %d: snapshot: %w", p.partition, d.err)
		}
		part, err := RestorePartition(p.schema, ps)
		switch {
		case errors.Is(err, ErrSchemaMismatch):
			// A new signal configuration: earlier windows cannot be
			// compared with the new ones. Start over, and say so.
			p.log.Warn("drift state was made under another signal configuration: starting the partition's windows afresh")
			return p.reset(b, first)
		case err != nil:
			return fmt.Errorf("drift: partition %d: %w", p.partition, err)
		}
		if nm > maxModelChanges {
			return fmt.Errorf("drift: partition %d: snapshot: %d model changes", p.partition, nm)
		}
		p.part, p.models = part, models
		if err := p.align.decode(d); err != nil {
			return fmt.Errorf("drift: partition %d: snapshot: %w", p.partition, err)
		}
		if len(d.b) != 0 {
			return fmt.Errorf("drift: partition %d: snapshot: %d trailing bytes", p.partition, len(d.b))
		}
	}
	replayed := 0
	switch {
	case p.legacy:
		n, err := p.replayRecordLog(b)
		if err != nil {
			return err
		}
		replayed = n
	case replay:
		start, err := b.ReadSource(ctx, p.replayFrom, first, func(r *kgo.Record) error {
			// Invalid records were skipped (and counted) when first read.
			p.observe(recordSource(r), r.Value, r.Timestamp)
			p.sinceSnap += len(r.Value)
			replayed++
			return nil
		})
		if err != nil {
			return fmt.Errorf("drift: partition %d: replay the input from offset %d: %w", p.partition, p.replayFrom, err)
		}
		if start > p.replayFrom {
			p.counters.invalid.WithLabelValues("replay").Add(float64(start - p.replayFrom))
			p.log.Warn("input records after the partition's snapshot were deleted by retention before it was restored: its open windows miss them",
				"snapshot_offset", p.replayFrom, "input_start", start)
		}
	default:
		// A partition's first batch: the state is empty before it.
		p.replayFrom, p.snapAt = first, time.Now()
		if err := p.putReplay(b); err != nil {
			return err
		}
	}
	// Windows closed during the replay were emitted by the batches that
	// first closed them.
	p.closed = p.part.TakeClosed(p.closed[:0])
	clear(p.closed)
	if found || replayed > 0 {
		p.log.Info("drift partition state restored", "snapshot", found, "replayed_records", replayed, "record_log", p.legacy,
			"closed_through", closedLabel(p.part.ClosedThrough()), "held_lists", p.part.HeldLists(), "aligning", p.align.len(0)+p.align.len(1))
	}
	return nil
}

// getPair reads a state value of two little-endian u64s.
func (p *PartitionProcessor) getPair(b *task.Batch, key string) (lo, hi uint64, found bool, err error) {
	v, found, err := b.Get([]byte(key))
	switch {
	case err != nil:
		return 0, 0, false, fmt.Errorf("drift: partition %d: load %s: %w", p.partition, key, err)
	case found && len(v) != 16:
		return 0, 0, false, fmt.Errorf("drift: partition %d: %s of %d bytes, want 16", p.partition, key, len(v))
	case !found:
		return 0, 0, false, nil
	}
	return binary.LittleEndian.Uint64(v[:8]), binary.LittleEndian.Uint64(v[8:]), true, nil
}

// replayRecordLog re-applies an earlier version's record log and returns
// how many records it held; the next snapshot deletes it.
func (p *PartitionProcessor) replayRecordLog(b *task.Batch) (int, error) {
	replayed := 0
	for s := p.legacyFrom; s < p.legacyTo; s++ {
		v, ok, err := b.Get(logKey(s))
		if err != nil {
			return replayed, fmt.Errorf("drift: partition %d: load log %d: %w", p.partition, s, err)
		}
		if !ok {
			return replayed, fmt.Errorf("drift: partition %d: log entry %d of %d..%d missing", p.partition, s, p.legacyFrom, p.legacyTo)
		}
		for len(v) > 0 {
			if len(v) < 5 {
				return replayed, fmt.Errorf("drift: partition %d: log entry %d truncated", p.partition, s)
			}
			n := int(binary.LittleEndian.Uint32(v[1:5]))
			if n > len(v)-5 {
				return replayed, fmt.Errorf("drift: partition %d: log entry %d truncated", p.partition, s)
			}
			// Only valid records were logged; one failing now means
			// the decoder changed, which replays cannot fix.
			if !p.observe(Source(v[0]), v[5:5+n], time.Time{}) {
				p.counters.invalid.WithLabelValues("replay").Inc()
			}
			v = v[5+n:]
			replayed++
		}
	}
	return replayed, nil
}

// reset drops the stored state: the partition starts empty at input
// offset first.
func (p *PartitionProcessor) reset(b *task.Batch, first int64) error {
	p.part, p.models = NewPartition(p.schema), nil
	p.align = newAligner(p.alignSpan, p.alignMax)
	return p.snapshot(b, first)
}

func closedLabel(v int64) string {
	if v == math.MinInt64 {
		return "none"
	}
	return strconv.FormatInt(v, 10)
}
