package task

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadSource calls fn with the committed records of the batch's source
// partition at offsets [from, to), in offset order, as the runtime
// delivered them to Process (read_committed: aborted records and
// transaction markers are skipped). It returns the offset it started at:
// from, or the partition's start offset when retention has deleted records
// of the range, which the caller should report.
//
// It is for a processor whose state is a snapshot plus the source records
// applied since (the source topic as the changelog of everything after
// the snapshot, as Kafka Streams reuses a source topic as a table's
// changelog): on its first batch after a start it restores the snapshot,
// which names the offset it was taken at, and re-applies the records from
// there to the batch's first record. Its batches then write only the
// occasional snapshot instead of a copy of every record. The records
// read are new to this Batch: fn may keep them.
func (b *Batch) ReadSource(ctx context.Context, from, to int64, fn func(*kgo.Record) error) (int64, error) {
	if b.source == nil {
		return from, errors.New("task: ReadSource: this batch has no source partition to read")
	}
	return b.source(ctx, from, to, fn)
}

// readSource implements Batch.ReadSource for the task's partition.
func (t *task) readSource(ctx context.Context, from, to int64, fn func(*kgo.Record) error) (int64, error) {
	rt := t.rt
	if from >= to {
		return from, nil
	}
	start, _, err := rt.bounds(ctx, rt.cfg.Topic, t.partition, false)
	if err != nil {
		return from, err
	}
	if start >= to {
		return start, nil
	}
	from = max(from, start)
	cl, err := t.partitionReader(rt.cfg.Topic, from)
	if err != nil {
		return from, fmt.Errorf("task: partition %d: new source reader: %w", t.partition, err)
	}
	defer cl.Close()
	// to is the offset of a record the runtime delivered, so it is
	// committed and the reader gets to it (or past it, when the offsets
	// before it are aborted records, which read_committed skips).
	next := from
	for next < to {
		fs, err := pollPartition(ctx, cl)
		if err != nil {
			return from, fmt.Errorf("task: partition %d: read source: %w", t.partition, err)
		}
		var rerr error
		fs.EachRecord(func(r *kgo.Record) {
			if rerr != nil || r.Offset >= to {
				next = max(next, r.Offset+1)
				return
			}
			next = r.Offset + 1
			if !r.Attrs.IsControl() {
				rerr = fn(r)
			}
		})
		if rerr != nil {
			return from, rerr
		}
	}
	return from, nil
}
