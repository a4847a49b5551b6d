package task

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Processor applies batches of one source partition to that partition's
// state. The runtime calls Process from one goroutine per partition, never
// concurrently for one Processor.
//
// Process must apply the records only through b (Get, Put, Delete, Emit):
// the runtime commits b's writes and outputs atomically with the source
// offset after Process returns, or not at all. The runtime already keeps
// recent writes in memory (its write-back to Badger), so reads of hot keys
// are map lookups and a Processor rarely needs a cache of its own; one that
// keeps decoded state across batches must keep only what it read or wrote
// through b, and must not assume a batch committed until the next Process
// call: after any failure the runtime stops, and a new Processor is built
// by the factory on the next start.
//
// An error from Process stops the runtime (Run returns it) without
// committing the batch: it is for bugs and broken invariants. Invalid input
// records are the processor's to handle (skip them, or Emit them to a
// dead-letter topic); duplicate delivery upstream (the same event produced
// twice) is also the processor's concern — the runtime guarantees that each
// source record is applied once, not that the source holds no duplicates.
type Processor interface {
	Process(ctx context.Context, records []*kgo.Record, b *Batch) error
}

// ProcessorFactory makes the Processor of one partition when the partition is
// assigned to this instance (after its state is restored).
type ProcessorFactory func(partition int32) (Processor, error)

// Closer is implemented by Processors that hold resources; Close is called
// when the partition's task stops (revoked, lost, or runtime shut down).
type Closer interface {
	Close() error
}

// Errors returned by Batch methods.
var (
	ErrEmptyKey      = errors.New("task: state key is empty")
	ErrKeyTooLarge   = fmt.Errorf("task: state key longer than %d bytes", MaxKeyLen)
	ErrValueTooLarge = fmt.Errorf("task: state value longer than %d bytes", MaxValueLen)
)

// Batch is a partition's state as seen by one Process call: reads see the
// batch's own pending writes first, then the committed state; writes and
// outputs are buffered and committed together with the source offset.
//
// Slices returned by Get are valid until Process returns and must not be
// modified; Put, Delete and Emit copy their arguments, so callers may reuse
// their buffers at once.
type Batch struct {
	partition int32
	keyBuf    []byte

	// own holds this batch's writes, its outputs' bytes and copies of
	// values read from Badger.
	own   writeSet
	emits []pendingEmit

	// The committed state, newest first: writes committed to Kafka but not
	// yet written to Badger (the task's dirty set), writes being written
	// to Badger, and a Badger snapshot taken before that write started.
	dirty, flushing *writeSet
	snap            reader

	// source reads the source partition (ReadSource); nil outside a task.
	source func(ctx context.Context, from, to int64, fn func(*kgo.Record) error) (int64, error)
}

type span struct{ off, n int }

type pendingWrite struct {
	key     string
	val     span
	deleted bool
}

type pendingEmit struct {
	topic    string
	key, val span
	nilKey   bool
	rec      *kgo.Record // EmitRecord: used as given
}

// writeSet is a set of state writes, the last one per key, in first-write
// order, with their values in one arena.
type writeSet struct {
	arena  []byte
	index  map[string]int // state key → writes index
	writes []pendingWrite
	// keyBytes sums the keys' lengths (memory accounting).
	keyBytes int
	// stKeys holds the Badger keys while the set is written to Badger.
	stKeys []byte
}

// size estimates the set's memory: values, keys, and index overhead.
func (w *writeSet) size() int { return len(w.arena) + w.keyBytes + 64*len(w.writes) }

func newWriteSet() writeSet { return writeSet{index: make(map[string]int, 1024)} }

func (w *writeSet) put(p []byte) span {
	off := len(w.arena)
	w.arena = append(w.arena, p...)
	return span{off, len(p)}
}

func (w *writeSet) bytes(s span) []byte {
	return w.arena[s.off : s.off+s.n : s.off+s.n]
}

// lookup finds key; found reports whether the set has a write for it.
func (w *writeSet) lookup(key []byte) (value []byte, deleted, found bool) {
	i, ok := w.index[string(key)]
	if !ok {
		return nil, false, false
	}
	if wr := &w.writes[i]; !wr.deleted {
		return w.bytes(wr.val), false, true
	}
	return nil, true, true
}

// set records a write. key is copied only if the set has no write for it.
func (w *writeSet) set(key []byte, value []byte, deleted bool) {
	var s span
	if !deleted {
		s = w.put(value)
	}
	if i, ok := w.index[string(key)]; ok {
		w.writes[i].val, w.writes[i].deleted = s, deleted
		return
	}
	w.setNew(string(key), s, deleted)
}

// merge records a write whose key string can be shared.
func (w *writeSet) merge(key string, value []byte, deleted bool) {
	var s span
	if !deleted {
		s = w.put(value)
	}
	if i, ok := w.index[key]; ok {
		w.writes[i].val, w.writes[i].deleted = s, deleted
		return
	}
	w.setNew(key, s, deleted)
}

func (w *writeSet) setNew(key string, s span, deleted bool) {
	w.index[key] = len(w.writes)
	w.writes = append(w.writes, pendingWrite{key: key, val: s, deleted: deleted})
	w.keyBytes += len(key)
}

// reset empties the set, keeping its buffers unless a huge batch grew them.
func (w *writeSet) reset() {
	const keep = 32 << 20
	if cap(w.arena) > keep {
		w.arena = nil
	}
	w.arena = w.arena[:0]
	clear(w.index)
	clear(w.writes) // drop key strings for the GC
	w.writes = w.writes[:0]
	w.keyBytes = 0
	w.stKeys = w.stKeys[:0]
}

func newBatch(partition int32) *Batch {
	return &Batch{partition: partition, own: newWriteSet()}
}

// Partition is the source partition this batch belongs to.
func (b *Batch) Partition() int32 { return b.partition }

func checkKey(key []byte) error {
	switch {
	case len(key) == 0:
		return ErrEmptyKey
	case len(key) > MaxKeyLen:
		return ErrKeyTooLarge
	}
	return nil
}

// Get returns the value of key, or found false when the key has no value.
func (b *Batch) Get(key []byte) (value []byte, found bool, err error) {
	if err := checkKey(key); err != nil {
		return nil, false, err
	}
	for _, w := range [3]*writeSet{&b.own, b.dirty, b.flushing} {
		if w == nil {
			continue
		}
		if v, deleted, ok := w.lookup(key); ok {
			return v, !deleted, nil
		}
	}
	b.keyBuf = appendStateKey(b.keyBuf[:0], b.partition, key)
	var s span
	found, err = b.snap.get(b.keyBuf, func(v []byte) error { s = b.own.put(v); return nil })
	if err != nil {
		return nil, false, fmt.Errorf("task: get state key of partition %d: %w", b.partition, err)
	}
	if !found {
		return nil, false, nil
	}
	return b.own.bytes(s), true, nil
}

// Put sets key to value.
func (b *Batch) Put(key, value []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if len(value) > MaxValueLen {
		return ErrValueTooLarge
	}
	b.own.set(key, value, false)
	return nil
}

// Delete removes key.
func (b *Batch) Delete(key []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	b.own.set(key, nil, true)
	return nil
}

// Emit produces an output record to topic, partitioned by key (murmur2, as
// the Java client does). It is written in the same Kafka transaction as the
// batch's state changes: readers with isolation level read_committed see it
// exactly once. A nil key spreads records over partitions.
func (b *Batch) Emit(topic string, key, value []byte) {
	e := pendingEmit{topic: topic, val: b.own.put(value), nilKey: key == nil}
	if key != nil {
		e.key = b.own.put(key)
	}
	b.emits = append(b.emits, e)
}

// EmitRecord produces r as given (topic, key, value, headers; Partition is
// ignored: records are partitioned by key). The runtime owns r from now on.
func (b *Batch) EmitRecord(r *kgo.Record) {
	b.emits = append(b.emits, pendingEmit{rec: r})
}

// pending reports the numbers of state writes and outputs buffered.
func (b *Batch) pending() (writes, emits int) { return len(b.own.writes), len(b.emits) }

// reset empties the batch for the next one.
func (b *Batch) reset() {
	b.own.reset()
	clear(b.emits)
	b.emits = b.emits[:0]
}
