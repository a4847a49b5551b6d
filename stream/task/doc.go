// Package task is Eddy's partition task runtime: a consumer-group member
// (franz-go, cooperative-sticky balancing) that runs one task per assigned
// partition of a source topic, keeps each partition's state in a local
// Badger store backed by a compacted changelog topic, and applies every
// source record exactly once across crashes and rebalances. The feature
// store, the learner stages and drift implement Processor and run on it.
//
// It owns: the group membership and rebalance handling, the commit protocol,
// the changelog topic (<group>-<store>-changelog, created compacted with the
// source's partition count), restore, the local store's layout (layout.go),
// wiped-broker detection, and the eddy_stream_* metrics. It does not own
// what the state means (processors decide) or the source topics.
//
// # Using it
//
//	rt, err := task.New(cfg, func(p int32) (task.Processor, error) { return newMyProc(p), nil }, reg, log)
//	err = rt.Run(ctx) // until ctx ends: flushes, commits, leaves the group
//
// A Processor gets batches of its partition's records and a *Batch with
// Get/Put/Delete on the partition's state (reads see the batch's own writes)
// and Emit for outputs. It must change state and produce outputs only
// through the Batch.
//
// # Guarantees and how they hold
//
// A batch (at most MaxBatchRecords records or MaxBatchBytes bytes; a backlog
// fills batches, an idle stream commits what it has) is committed thus:
//
//  1. begin a Kafka transaction on the partition's own transactional
//     producer, transactional id <group>-<store>-<partition>. A new owner
//     initialising that id fences the previous owner (a zombie cannot commit)
//     and makes the broker abort the previous owner's open transaction;
//  2. produce one changelog record per changed key (its final value in the
//     batch, or a tombstone), the outputs, and a checkpoint record holding
//     the next source offset;
//  3. commit the transaction: the batch is now durable;
//  4. write the state to Badger, write-back: the batch's changes join the
//     partition's dirty set, which is written to Badger with the partition
//     meta (next source offset, changelog offset after the last checkpoint)
//     at most LocalFlushInterval (default 1 s) or LocalFlushBytes later, in
//     the background, while later batches read it from memory;
//  5. now and then, commit offsets to the group, for lag monitoring only.
//
// This is the Kafka-transactions choice of DESIGN.md §3, on the model of
// Kafka Streams' newest stores: the changelog position lives in the store,
// and local writes are applied only after the Kafka transaction commits.
// The Kafka transaction is the commit point; Badger is a cache of the
// changelog, always at a checkpoint or behind it:
//
//   - crash before 3: the transaction is aborted (fenced by the next owner or
//     timed out), Badger is unchanged, the batch is replayed from the stored
//     offset: its outputs appear once, in the committed replay;
//   - crash after 3 with the batch not (or not wholly) in Badger: Badger is
//     behind the changelog. Every task start catches up from the changelog
//     (read_committed) from its stored changelog offset to the changelog's
//     last stable offset before it processes anything, and resumes at the
//     last checkpoint's source offset: the batch is not processed again and
//     its outputs are not duplicated. The write-back bounds this catch-up to
//     about one LocalFlushInterval of changes;
//   - a partition new to this instance (empty store, or moved here) is the
//     same catch-up from further back, up to the whole changelog; progress is
//     logged and exported (eddy_stream_restore_records_total,
//     eddy_stream_restore_remaining_records);
//   - Badger's transaction limit: a flush bigger than one Badger
//     transaction (ErrTxnTooBig) is written in several, the meta in the
//     last. A crash between them leaves some keys newer than the meta; the
//     catch-up rewrites every key changed since the meta's changelog offset
//     with its absolute value from the changelog, so nothing is applied
//     twice. This is why no per-value offset stamp is needed, and why Badger
//     writes are not fsynced: losing the tail of the local store costs a
//     catch-up, never correctness.
//
// Why write-back: Badger's single writer inserting into its skiplist is the
// runtime's main CPU cost. Writing a hot key once per flush instead of once
// per batch multiplied throughput (see bench_test.go) at the price of a
// changelog catch-up of up to one flush interval after a crash.
//
// Starting offsets always come from the store (after catch-up), through
// kgo.AdjustFetchOffsetsFn, never from the group's committed offsets. The
// source is read with read_committed, so a transactional upstream stage
// (the learner's item gradients) is seen once. Readers of the outputs and
// of the changelog must use read_committed too.
//
// Rebalances: kgo.BlockRebalanceOnPoll makes the revoke/lost callbacks run
// between polls. A revoked task finishes its queued records, commits and
// stops; a lost task stops at once without committing more (another member
// may own the partition already). Tasks of newly assigned partitions restore
// before the group starts fetching for them (the adjust callback waits).
//
// Duplicates upstream (the same event produced twice to the source) are the
// processor's concern: the runtime applies each source record once.
//
// # Wiped brokers
//
// The store remembers the Kafka cluster id it was built on. A different
// cluster id, a stored source offset beyond the partition's end, or a stored
// changelog offset beyond the changelog's end means the broker's log is not
// the one the state came from. Under WipeFail (default) the runtime logs
// what it found and Run returns an error wrapping ErrBrokerWiped (the caller
// should exit or stay unready, not restart in a loop); under WipeReset it
// drops the affected local state and starts over.
//
// # Design choices
//
//   - One Badger DB per runtime (group+store), not per partition: memtables
//     and caches are per DB. Keys are prefixed by partition, so a partition
//     is dropped with one DropPrefix.
//   - Badger reads: each batch reads its own writes, then the dirty set, then
//     the set being flushed, then a Badger snapshot taken just before that
//     flush began (Badger makes a new read transaction wait for commits in
//     flight, which would serialise processing behind the flush).
//   - One transactional producer per partition task rather than one per
//     instance: it keeps fencing per partition, so a rebalance never aborts
//     another partition's batch, at the cost of one Kafka client per task.
//   - A task whose Kafka transaction fails, or whose processor errs, stops
//     the whole runtime (Run returns the error) instead of restarting the
//     task in place: franz-go already retries what is retriable, and what is
//     left (fenced, authorization) needs the process restarted or fixed.
//
// # Known limits
//
//   - One source topic per runtime (no co-partitioned joins of two topics).
//     To join two topics keyed alike, run a Forwarder per source into one
//     input topic (forward.go): drift and the learner's ranker do.
//   - A key deleted while this instance did not own the partition can
//     reappear here if the changelog cleaner removed the tombstone (after the
//     topic's delete.retention.ms, 24 h by default) before this instance
//     caught up with it. Kafka Streams shares this limit.
//   - A brand-new partition (no state, empty changelog) starts at the
//     source's earliest offset.
package task
