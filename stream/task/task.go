package task

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// crashPoint names the places where a test can make a task vanish as if its
// process had been killed (see hooks).
type crashPoint int

const (
	crashAfterProcess     crashPoint = iota // state applied in memory, nothing sent
	crashAfterProduce                       // records sent inside the open Kafka transaction
	crashAfterKafkaCommit                   // transaction committed, local store not written
	crashAfterStoreCommit                   // batch merged into the write-back (flushed when due)
	crashDuringRestore                      // a restore chunk written, restore not finished
)

// hooks lets tests inject crashes. Production code never sets it.
type hooks struct {
	// crash is asked at every crash point; true makes the task stop dead:
	// no abort, no flush, its transactional producer left open (abandoned).
	crash func(partition int32, at crashPoint) bool
	// abandoned receives the Kafka clients a simulated crash leaves behind;
	// the test closes them when it ends, long after a new owner fenced them.
	abandoned func(*kgo.Client)
	// restoreChunk, when positive, replaces the restore chunk size.
	restoreChunk int
}

// errSimulatedCrash is returned by a task stopped by a test crash hook.
var errSimulatedCrash = errors.New("task: simulated crash")

// task runs one source partition: it restores the partition's state, then
// applies batches and commits each one (see commit).
type task struct {
	rt        *Runtime
	partition int32
	log       *slog.Logger

	in     chan []*kgo.Record // batches from the poll loop
	drain  chan struct{}      // closed: finish what is queued, commit, stop
	ctx    context.Context    // canceled: stop now, commit nothing more
	cancel context.CancelFunc
	ready  chan struct{} // closed when prepare finished (prepErr says how)
	done   chan struct{} // closed when run returned (err says how)

	prepErr error
	startAt int64 // next source offset, -1 for the start of the partition
	err     error

	restoring atomic.Bool
	committed atomic.Int64 // durable next source offset, -1 none
	hwm       atomic.Int64 // source high watermark seen by the poll loop

	prod  *kgo.Client
	proc  Processor
	meta  partitionMeta
	buf   []*kgo.Record
	batch *Batch

	// Local state write-back (see flush): writes committed to Kafka and
	// not yet to Badger accumulate in dirty; flushing is being written by
	// Badger's writer (flight); snap is a Badger snapshot taken just
	// before that write began.
	dirty, flushing *writeSet
	dirtyMeta       partitionMeta
	flight          *flight
	snap            reader
	lastFlush       time.Time

	// Reused per batch: produce records and their keys.
	recs   []kgo.Record
	clKeys []byte
	ckpt   [checkpointLen]byte

	perrMu sync.Mutex
	perr   error
	// promise is the produce callback, made once so producing allocates no
	// closure per record.
	promise func(*kgo.Record, error)
}

func newTask(rt *Runtime, partition int32) *task {
	ctx, cancel := context.WithCancel(rt.taskCtx)
	t := &task{
		rt:        rt,
		partition: partition,
		log:       rt.log.With("partition", partition),
		in:        make(chan []*kgo.Record, 4),
		drain:     make(chan struct{}),
		ctx:       ctx,
		cancel:    cancel,
		ready:     make(chan struct{}),
		done:      make(chan struct{}),
		batch:     newBatch(partition),
		dirty:     ptr(newWriteSet()),
		flushing:  ptr(newWriteSet()),
	}
	t.batch.source = t.readSource
	t.committed.Store(-1)
	t.hwm.Store(-1)
	t.restoring.Store(true)
	t.promise = func(_ *kgo.Record, err error) {
		if err != nil {
			t.perrMu.Lock()
			if t.perr == nil {
				t.perr = err
			}
			t.perrMu.Unlock()
		}
	}
	return t
}

func (t *task) crash(at crashPoint) bool {
	h := t.rt.cfg.hooks
	return h != nil && h.crash != nil && h.crash(t.partition, at)
}

// run is the task's goroutine.
func (t *task) run() {
	defer close(t.done)
	defer func() {
		// A failed task stops the runtime; a canceled one (lost,
		// revoked while restoring) is not a failure.
		if t.err != nil && !errors.Is(t.err, context.Canceled) && t.ctx.Err() == nil {
			if fenced(t.err) {
				t.rt.log.Warn("a newer owner fenced this partition's producer: dropping its task until the group reassigns it",
					"partition", t.partition, "err", t.err)
				return
			}
			t.rt.fail(t.err)
		}
	}()
	crashed := false
	defer func() {
		if crashed {
			// A dead process does not abort its transaction or close its
			// connections: hand the producer to the test, which closes
			// it after the new owner has fenced it.
			if h := t.rt.cfg.hooks; h != nil && h.abandoned != nil && t.prod != nil {
				h.abandoned(t.prod)
			} else if t.prod != nil {
				t.prod.Close()
			}
			return
		}
		t.closeProcessor()
		if t.prod != nil {
			t.prod.Close()
		}
	}()
	t.prepErr = t.prepare()
	close(t.ready)
	if t.prepErr != nil {
		t.err = t.prepErr
		crashed = errors.Is(t.err, errSimulatedCrash)
		return
	}
	t.restoring.Store(false)
	t.lastFlush = time.Now()
	t.err = t.loop()
	// Any stop but a failure writes what is dirty: the dirty set holds
	// only batches already committed to Kafka, so writing it is always
	// correct, also when the task was canceled (runtime shutdown, lost
	// partition). Skipping it on cancel left a cleanly stopped store behind
	// its changelog whenever the cancel beat the drain, which only the next
	// start's catch-up repaired. A failed or crashed task leaves it to the
	// changelog.
	if t.err == nil {
		t.err = t.flush()
	}
	// The store closes after the tasks: let the last local write land.
	if err := t.waitFlight(); err != nil && t.err == nil {
		t.err = err
	}
	if t.snap != nil {
		t.snap.discard()
		t.snap = nil
	}
	crashed = errors.Is(t.err, errSimulatedCrash)
}

func ptr[T any](v T) *T { return &v }

// flight is a flush of the dirty set running in Badger's writer.
type flight struct {
	done chan struct{}
	err  error
}

// waitFlight waits for the flush in flight, if any, and reports its error.
func (t *task) waitFlight() error {
	f := t.flight
	if f == nil {
		return nil
	}
	<-f.done
	t.flight = nil
	if f.err != nil {
		return fmt.Errorf("task: partition %d: commit state: %w", t.partition, f.err)
	}
	return nil
}

func (t *task) closeProcessor() {
	if c, ok := t.proc.(Closer); ok {
		if err := c.Close(); err != nil {
			t.log.Warn("closing processor", "err", err)
		}
	}
}

// loop applies batches until drained or canceled. It returns nil when it
// stopped cleanly (drained, or canceled by a lost partition).
func (t *task) loop() error {
	draining := false
	for {
		if len(t.buf) == 0 {
			if draining {
				select {
				case recs := <-t.in:
					t.buf = append(t.buf, recs...)
				default:
					return nil
				}
			} else {
				select {
				case <-t.ctx.Done():
					return nil
				case <-t.drain:
					draining = true
					continue
				case recs := <-t.in:
					t.buf = append(t.buf, recs...)
				case <-t.idleFlush():
					if err := t.flush(); err != nil {
						return err
					}
					continue
				}
			}
		}
		// Top up without waiting: a backlog makes bigger batches, which
		// amortise the transaction's round trips.
	topUp:
		for len(t.buf) < t.rt.cfg.MaxBatchRecords {
			select {
			case recs := <-t.in:
				t.buf = append(t.buf, recs...)
			default:
				break topUp
			}
		}
		if t.ctx.Err() != nil {
			return nil
		}
		n := t.batchLen()
		if err := t.apply(t.buf[:n]); err != nil {
			if t.ctx.Err() != nil && !errors.Is(err, errSimulatedCrash) {
				return nil // lost while committing: nothing to report
			}
			return err
		}
		rest := copy(t.buf, t.buf[n:])
		clear(t.buf[rest:])
		t.buf = t.buf[:rest]
	}
}

// batchLen is how many buffered records fit one batch.
func (t *task) batchLen() int {
	n, bytes := 0, 0
	for n < len(t.buf) && n < t.rt.cfg.MaxBatchRecords {
		bytes += len(t.buf[n].Key) + len(t.buf[n].Value)
		n++
		if bytes >= t.rt.cfg.MaxBatchBytes {
			break
		}
	}
	return n
}

// apply runs the processor over recs and commits the result.
func (t *task) apply(recs []*kgo.Record) error {
	m := t.rt.m
	b := t.batch
	b.reset()
	if t.snap == nil {
		t.snap = t.rt.store.snapshot()
	}
	b.dirty, b.flushing, b.snap = t.dirty, t.flushing, t.snap
	start := time.Now()
	if err := t.process(recs, b); err != nil {
		return fmt.Errorf("task: partition %d: processor failed on offsets %d..%d: %w",
			t.partition, recs[0].Offset, recs[len(recs)-1].Offset, err)
	}
	applied := time.Now()
	m.applySeconds.Observe(applied.Sub(start).Seconds())
	if t.crash(crashAfterProcess) {
		return errSimulatedCrash
	}
	next := recs[len(recs)-1].Offset + 1
	if err := t.commit(b, next); err != nil {
		return err
	}
	m.commitSeconds.Observe(time.Since(applied).Seconds())
	m.applied.Add(float64(len(recs)))
	m.batchRecords.Observe(float64(len(recs)))
	t.updateLag()
	return nil
}

// process calls the processor, turning a panic into an error: the batch is
// then simply not committed, and the runtime stops with a message instead
// of the process dying with the state half-applied in memory.
func (t *task) process(recs []*kgo.Record, b *Batch) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("processor panicked: %v", p)
		}
	}()
	return t.proc.Process(t.ctx, recs, b)
}

func (t *task) updateLag() {
	if hwm, next := t.hwm.Load(), t.committed.Load(); hwm >= 0 && next >= 0 {
		t.rt.m.lag.WithLabelValues(partitionLabel(t.partition)).Set(float64(max(hwm-next, 0)))
	}
}

// commit makes the batch durable, in this order:
//
//  1. begin a Kafka transaction on the partition's transactional producer;
//  2. produce the changelog records (one per changed key, its final value or
//     a tombstone), the outputs, and a checkpoint record carrying next;
//  3. commit the transaction;
//  4. write the state and the meta (next, and the changelog offset after the
//     checkpoint) to Badger.
//
// A crash before 3 leaves Kafka to abort the transaction (the next owner's
// producer fences it) and Badger unchanged: the batch is replayed from the
// stored offset. A crash between 3 and 4 leaves Badger behind the changelog:
// the next start finds the committed checkpoint and catches up from the
// changelog instead of reprocessing, so outputs are not produced twice.
func (t *task) commit(b *Batch, next int64) error {
	ctx := t.ctx
	if err := t.prod.BeginTransaction(); err != nil {
		return fmt.Errorf("task: partition %d: begin transaction: %w", t.partition, err)
	}
	t.perr = nil
	t.buildRecords(b, next)
	for i := range t.recs {
		t.prod.Produce(ctx, &t.recs[i], t.promise)
	}
	for i := range b.emits {
		if r := b.emits[i].rec; r != nil {
			r.Partition = 0
			t.prod.Produce(ctx, r, t.promise)
		}
	}
	if t.crash(crashAfterProduce) {
		return errSimulatedCrash
	}
	cctx, cancel := context.WithTimeout(ctx, t.rt.cfg.CommitTimeout)
	defer cancel()
	err := t.prod.Flush(cctx)
	if err == nil {
		t.perrMu.Lock()
		err = t.perr
		t.perrMu.Unlock()
	}
	if err != nil {
		t.abort()
		return fmt.Errorf("task: partition %d: produce changelog and outputs: %w", t.partition, err)
	}
	if err := t.prod.EndTransaction(cctx, kgo.TryCommit); err != nil {
		t.abort()
		return fmt.Errorf("task: partition %d: commit transaction: %w", t.partition, err)
	}
	if t.crash(crashAfterKafkaCommit) {
		return errSimulatedCrash
	}
	ckpt := &t.recs[len(t.recs)-1]
	writes, emits := b.pending()
	t.rt.m.changelogRecords.Add(float64(writes))
	t.rt.m.outputs.Add(float64(emits))
	// The batch is durable: Kafka holds it. Badger catches up below or
	// from the changelog after a crash.
	t.committed.Store(next)

	// Step 4, write-back: the batch joins the dirty set, which goes to
	// Badger in one write per LocalFlushInterval (or LocalFlushBytes)
	// instead of one per batch: a key changed in many batches is written
	// once. Reads see it through Batch.dirty meanwhile.
	for i := range b.own.writes {
		w := &b.own.writes[i]
		t.dirty.merge(w.key, b.own.bytes(w.val), w.deleted)
	}
	t.dirtyMeta = partitionMeta{SourceNext: next, ChangelogNext: ckpt.Offset + 1}
	cfg := &t.rt.cfg
	if time.Since(t.lastFlush) >= cfg.LocalFlushInterval || t.dirty.size() >= cfg.LocalFlushBytes {
		if err := t.flush(); err != nil {
			return err
		}
	}
	if t.crash(crashAfterStoreCommit) {
		if err := t.waitFlight(); err != nil {
			return err
		}
		return errSimulatedCrash
	}
	return nil
}

// idleFlush fires when dirty writes have waited LocalFlushInterval with no
// batch to carry them (nil channel: nothing to flush).
func (t *task) idleFlush() <-chan time.Time {
	if len(t.dirty.writes) == 0 && t.dirtyMeta == t.meta {
		return nil
	}
	return time.After(max(t.rt.cfg.LocalFlushInterval-time.Since(t.lastFlush), 0))
}

// flush starts writing the dirty set and its meta to Badger. Writes stay in
// order: it first waits for the previous flush. Badger makes a new
// transaction wait for every commit in flight, so the snapshot later
// batches read is taken now, before this write starts; what it misses they
// find in the flushing set.
func (t *task) flush() error {
	t.lastFlush = time.Now()
	if err := t.waitFlight(); err != nil {
		return err
	}
	if len(t.dirty.writes) == 0 && t.dirtyMeta == t.meta {
		return nil
	}
	if t.snap != nil {
		t.snap.discard()
	}
	t.snap = t.rt.store.snapshot()
	t.dirty, t.flushing = t.flushing, t.dirty
	t.dirty.reset()
	meta := t.dirtyMeta
	if err := t.writeLocal(t.flushing, meta); err != nil {
		return err
	}
	t.meta = meta
	return nil
}

// writeLocal starts writing ws and meta to Badger. Badger keeps the keys
// and values until the write lands; they live in ws, which is not reused
// before then. A set too big for one Badger transaction is written in
// several (see writer); the last one, which holds the meta, is committed
// asynchronously.
func (t *task) writeLocal(ws *writeSet, meta partitionMeta) error {
	size := 0
	for i := range ws.writes {
		size += 5 + len(ws.writes[i].key)
	}
	if cap(ws.stKeys) < size {
		ws.stKeys = make([]byte, 0, size)
	}
	ws.stKeys = ws.stKeys[:0]
	w := t.rt.store.newWriter()
	for i := range ws.writes {
		wr := &ws.writes[i]
		start := len(ws.stKeys)
		ws.stKeys = appendStateKeyString(ws.stKeys, t.partition, wr.key)
		key := ws.stKeys[start:len(ws.stKeys):len(ws.stKeys)]
		var err error
		if wr.deleted {
			err = w.delete(key)
		} else {
			err = w.set(key, ws.bytes(wr.val))
		}
		if err != nil {
			w.discard()
			return fmt.Errorf("task: partition %d: write state: %w", t.partition, err)
		}
	}
	f := &flight{done: make(chan struct{})}
	if err := w.commitAsync(t.partition, meta, func(err error) {
		f.err = err
		close(f.done)
	}); err != nil {
		return fmt.Errorf("task: partition %d: commit state: %w", t.partition, err)
	}
	t.flight = f
	return nil
}

// abort ends a failed transaction as cleanly as it can; the runtime stops
// after it anyway, and the next owner's producer would fence it.
func (t *task) abort() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.prod.AbortBufferedRecords(ctx); err != nil {
		t.log.Warn("aborting buffered records", "err", err)
	}
	if err := t.prod.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.log.Warn("aborting transaction", "err", err)
	}
}

// buildRecords fills t.recs with the changelog records, the plain outputs
// and, last, the checkpoint.
func (t *task) buildRecords(b *Batch, next int64) {
	n := 0
	for i := range b.emits {
		if b.emits[i].rec == nil {
			n++
		}
	}
	n += len(b.own.writes) + 1
	if cap(t.recs) < n {
		t.recs = make([]kgo.Record, n)
	}
	t.recs = t.recs[:n]
	size := 0
	for i := range b.own.writes {
		size += 1 + len(b.own.writes[i].key)
	}
	t.clKeys = t.clKeys[:0]
	if cap(t.clKeys) < size {
		t.clKeys = make([]byte, 0, size)
	}
	topic := t.rt.changelog
	hdr := []kgo.RecordHeader{{Key: schemaHeader, Value: []byte(changelogSchema)}}
	i := 0
	for j := range b.own.writes {
		w := &b.own.writes[j]
		start := len(t.clKeys)
		t.clKeys = append(t.clKeys, changelogKind)
		t.clKeys = append(t.clKeys, w.key...)
		var val []byte
		if !w.deleted {
			val = b.own.bytes(w.val)
			if val == nil {
				val = []byte{} // empty value, not a tombstone
			}
		}
		t.recs[i] = kgo.Record{Topic: topic, Partition: t.partition, Key: t.clKeys[start:len(t.clKeys):len(t.clKeys)], Value: val, Headers: hdr}
		i++
	}
	for j := range b.emits {
		e := &b.emits[j]
		if e.rec != nil {
			continue
		}
		var key []byte
		if !e.nilKey {
			key = b.own.bytes(e.key)
		}
		val := b.own.bytes(e.val)
		t.recs[i] = kgo.Record{Topic: e.topic, Key: key, Value: val}
		i++
	}
	t.recs[i] = kgo.Record{Topic: topic, Partition: t.partition, Key: []byte{checkpointKey},
		Value: appendCheckpoint(t.ckpt[:0], next), Headers: hdr}
}
