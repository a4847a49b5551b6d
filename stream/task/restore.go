package task

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// prepare readies the task before its partition is fetched:
//
//  1. open the partition's transactional producer and initialise its
//     producer id, which fences the previous owner and makes the broker
//     abort that owner's open transaction;
//  2. read the local meta and compare it with the changelog and source
//     bounds (a wiped broker is detected here);
//  3. catch up from the changelog: from the local changelog position to the
//     changelog's last stable offset (all of it for an empty store);
//  4. build the processor.
//
// The source offset to start from is the one in the last checkpoint applied.
func (t *task) prepare() error {
	rt := t.rt
	ctx := t.ctx
	opts := append([]kgo.Opt(nil), rt.clientOpts...)
	opts = append(opts,
		kgo.TransactionalID(rt.cfg.transactionalID(t.partition)),
		kgo.TransactionTimeout(rt.cfg.TransactionTimeout),
		kgo.RecordPartitioner(changelogPartitioner{changelog: rt.changelog}),
		kgo.MaxBufferedRecords(max(4*rt.cfg.MaxBatchRecords, 10000)),
	)
	prod, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("task: partition %d: new transactional producer: %w", t.partition, err)
	}
	t.prod = prod
	if _, _, err := prod.ProducerID(ctx); err != nil {
		return fmt.Errorf("task: partition %d: initialise transactional producer %q: %w",
			t.partition, rt.cfg.transactionalID(t.partition), err)
	}

	meta, found, err := rt.store.meta(t.partition)
	if err != nil {
		return err
	}
	clStart, clEnd, err := rt.bounds(ctx, rt.changelog, t.partition, true)
	if err != nil {
		return err
	}
	switch {
	case meta.ChangelogNext > clEnd:
		if err := t.wiped(fmt.Sprintf("local changelog position %d is beyond the changelog end %d", meta.ChangelogNext, clEnd)); err != nil {
			return err
		}
		meta, found = partitionMeta{SourceNext: -1}, false
	case meta.ChangelogNext < clStart:
		if found {
			t.log.Warn("local state is older than the changelog's start; rebuilding it from the changelog",
				"changelog_next", meta.ChangelogNext, "changelog_start", clStart)
			if err := rt.store.dropPartition(t.partition); err != nil {
				return err
			}
		}
		meta = partitionMeta{SourceNext: -1, ChangelogNext: clStart}
	}
	// Each transaction ends with a marker that takes one offset, and a
	// committed or aborted transaction takes at least two: one offset left
	// can only be the marker of the transaction we committed last.
	if clEnd-meta.ChangelogNext > 1 {
		if err := t.restore(&meta, found, clEnd); err != nil {
			return err
		}
	}

	srcStart, srcEnd, err := rt.bounds(ctx, rt.cfg.Topic, t.partition, false)
	if err != nil {
		return err
	}
	if meta.SourceNext > srcEnd {
		if err := t.wiped(fmt.Sprintf("stored source offset %d is beyond the end %d of %s", meta.SourceNext, srcEnd, rt.cfg.Topic)); err != nil {
			return err
		}
		// The changelog still describes a log that is gone: skip it.
		meta = partitionMeta{SourceNext: -1, ChangelogNext: clEnd}
		w := rt.store.newWriter()
		if err := w.commit(t.partition, meta); err != nil {
			return fmt.Errorf("task: partition %d: reset meta: %w", t.partition, err)
		}
	}
	if meta.SourceNext >= 0 && meta.SourceNext < srcStart {
		t.log.Warn("source records were deleted by retention before they were processed; continuing at the log start",
			"stored_offset", meta.SourceNext, "log_start", srcStart, "skipped", srcStart-meta.SourceNext)
	}
	t.meta, t.dirtyMeta = meta, meta
	t.startAt = meta.SourceNext
	t.committed.Store(meta.SourceNext)
	t.proc, err = rt.factory(t.partition)
	if err != nil {
		return fmt.Errorf("task: partition %d: new processor: %w", t.partition, err)
	}
	t.log.Info("partition task ready", "offset", meta.SourceNext, "changelog_offset", meta.ChangelogNext)
	return nil
}

// wiped applies the WipePolicy to a partition whose local state is ahead of
// the broker.
func (t *task) wiped(why string) error {
	if t.rt.cfg.OnBrokerWiped != WipeReset {
		t.log.Error("the broker's log is behind the local state: was the broker's data wiped? "+
			"Stopping; delete the state directory or run with the reset policy to start over",
			"why", why, "state_dir", t.rt.store.dir)
		return fmt.Errorf("task: partition %d: %s: %w", t.partition, why, ErrBrokerWiped)
	}
	t.log.Warn("the broker's log is behind the local state; dropping the partition's local state (reset policy)", "why", why)
	return t.rt.store.dropPartition(t.partition)
}

// partitionReader returns a client that reads this task's partition of
// topic from offset from: committed records only, with the transaction
// markers, which show where a range that ends in a transaction ends (the
// last offset before a last stable offset is a marker).
func (t *task) partitionReader(topic string, from int64) (*kgo.Client, error) {
	opts := append([]kgo.Opt(nil), t.rt.clientOpts...)
	opts = append(opts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {t.partition: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	return kgo.NewClient(opts...)
}

// pollPartition polls a partitionReader for up to 5 s. The error is ctx's,
// or the first fetch error other than the poll's own time limit; no records
// and no error is a quiet partition.
func pollPartition(ctx context.Context, cl *kgo.Client) (kgo.Fetches, error) {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	fs := cl.PollFetches(pctx)
	cancel()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var ferr error
	fs.EachError(func(_ string, _ int32, err error) {
		if ferr == nil && !errors.Is(err, context.DeadlineExceeded) {
			ferr = err
		}
	})
	return fs, ferr
}

// restoreChunk bounds the changelog records applied per Badger transaction
// during a restore; each chunk also stores the restore position, so an
// interrupted restore resumes where it stopped.
const restoreChunk = 4096

// restore applies the changelog from meta.ChangelogNext to end (a last
// stable offset: every transaction before it is complete) to the store,
// reading committed records only. Checkpoint records move meta.SourceNext.
func (t *task) restore(meta *partitionMeta, found bool, end int64) error {
	rt := t.rt
	from := meta.ChangelogNext
	total := end - from
	label := partitionLabel(t.partition)
	remaining := rt.m.restoreRemaining.WithLabelValues(label)
	defer rt.m.restoreRemaining.DeleteLabelValues(label)
	remaining.Set(float64(total))
	kind := "catching up"
	if !found {
		kind = "restoring"
	}
	t.log.Info("partition "+kind+" from changelog", "changelog", rt.changelog, "from", from, "to", end, "records", total)

	cl, err := t.partitionReader(rt.changelog, from)
	if err != nil {
		return fmt.Errorf("task: partition %d: new restore consumer: %w", t.partition, err)
	}
	defer cl.Close()

	started, lastLog := time.Now(), time.Now()
	var applied int64
	idle := 0
	w := rt.store.newWriter()
	inChunk := 0
	// keys holds the chunk's Badger keys until the chunk commits; values
	// alias the fetched records.
	var keys []byte
	flush := func() error {
		if err := w.commit(t.partition, *meta); err != nil {
			return fmt.Errorf("task: partition %d: write restored state: %w", t.partition, err)
		}
		rt.m.restored.Add(float64(inChunk))
		inChunk = 0
		keys = keys[:0]
		w = rt.store.newWriter()
		if t.crash(crashDuringRestore) {
			return errSimulatedCrash
		}
		return nil
	}
	chunk := restoreChunk
	if h := rt.cfg.hooks; h != nil && h.restoreChunk > 0 {
		chunk = h.restoreChunk
	}
	for meta.ChangelogNext < end {
		fs, err := pollPartition(t.ctx, cl)
		if err != nil {
			w.discard()
			if t.ctx.Err() != nil {
				return fmt.Errorf("task: partition %d: restore interrupted: %w", t.partition, err)
			}
			return fmt.Errorf("task: partition %d: read changelog: %w", t.partition, err)
		}
		if fs.NumRecords() == 0 {
			// A changelog whose trailing markers were cleaned away would
			// never show the end; after a long silence, re-read the end.
			if idle++; idle >= 3 {
				_, nowEnd, err := rt.bounds(t.ctx, rt.changelog, t.partition, true)
				if err != nil {
					w.discard()
					return err
				}
				t.log.Warn("changelog restore saw no records for 15s before its end; assuming the tail is cleaned markers",
					"position", meta.ChangelogNext, "end", nowEnd)
				meta.ChangelogNext = max(meta.ChangelogNext, min(end, nowEnd))
				break
			}
			continue
		}
		idle = 0
		var rerr error
		fs.EachRecord(func(r *kgo.Record) {
			if rerr != nil || r.Offset >= end {
				return
			}
			meta.ChangelogNext = r.Offset + 1
			if r.Attrs.IsControl() {
				return
			}
			e, err := decodeChangelog(r.Key, r.Value)
			if err != nil {
				rerr = fmt.Errorf("task: partition %d: changelog offset %d: %w", t.partition, r.Offset, err)
				return
			}
			if e.Checkpoint {
				meta.SourceNext = e.SourceNext
			} else {
				start := len(keys)
				keys = appendStateKey(keys, t.partition, e.Key)
				key := keys[start:len(keys):len(keys)]
				if e.Value == nil {
					err = w.delete(key)
				} else {
					err = w.set(key, e.Value)
				}
				if err != nil {
					rerr = fmt.Errorf("task: partition %d: restore key: %w", t.partition, err)
					return
				}
			}
			applied++
			if inChunk++; inChunk >= chunk {
				rerr = flush()
			}
		})
		if rerr != nil {
			w.discard()
			return rerr
		}
		remaining.Set(float64(end - meta.ChangelogNext))
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			t.log.Info("restore progress", "position", meta.ChangelogNext, "end", end, "applied", applied,
				"remaining", end-meta.ChangelogNext)
		}
	}
	if err := flush(); err != nil {
		return err
	}
	elapsed := time.Since(started)
	t.log.Info("partition "+kind+" done", "records", applied, "offset", meta.SourceNext,
		"elapsed", elapsed.Round(time.Millisecond), "records_per_second", int64(float64(applied)/max(elapsed.Seconds(), 1e-3)))
	return nil
}

// changelogPartitioner sends changelog records to the partition set on them
// (the source partition) and everything else by key hash, like the Java
// client (murmur2), so outputs land where keyed consumers expect them.
type changelogPartitioner struct {
	changelog string
}

func (p changelogPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if topic == p.changelog {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return kgo.StickyKeyPartitioner(nil).ForTopic(topic)
}
