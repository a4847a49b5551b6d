package task

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/twmb/franz-go/pkg/kgo"
)

// store is the runtime's Badger DB: the state of every partition this
// instance holds, plus each partition's meta. It is a cache of the changelog:
// everything in it can be rebuilt from Kafka, which is why writes need not be
// fsynced and why a commit split over several Badger transactions is safe
// (see writeBatch).
//
// With Config.InMemory the state is a Go map instead (mem), rebuilt from the
// changelog at every start: db is nil and dir names no directory.
type store struct {
	db  *badger.DB
	mem *memKV
	dir string
}

// openStore opens (creating) the DB with options sized for many small
// values written in bursts: no compression (values are small and CPU is the
// bottleneck), no block cache (the OS page cache serves reads), small index
// cache, bounded memtables, conflict detection off (one writer per partition
// and partitions never share keys).
func openStore(dir string, memTableSize int64, log *slog.Logger) (*store, error) {
	opts := badger.DefaultOptions(dir).
		WithLogger(badgerLogger{log}).
		WithSyncWrites(false).
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithIndexCacheSize(16 << 20).
		WithMemTableSize(memTableSize).
		// Badger refuses a value threshold above one transaction's
		// size (15% of a memtable); small memtables need a lower one.
		WithValueThreshold(min(1<<20, memTableSize*15/100/2)).
		WithNumMemtables(3).
		WithNumLevelZeroTables(5).
		WithNumLevelZeroTablesStall(15).
		WithValueLogFileSize(64 << 20).
		WithDetectConflicts(false).
		WithNumCompactors(2).
		WithMetricsEnabled(false)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("task: open state store %q: %w", dir, err)
	}
	return &store{db: db, dir: dir}, nil
}

func (s *store) close() error {
	if s.mem != nil {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("task: close state store %q: %w", s.dir, err)
	}
	return nil
}

// meta reads a partition's meta; a partition never seen has SourceNext -1
// and ChangelogNext 0, and found false.
func (s *store) meta(partition int32) (partitionMeta, bool, error) {
	m := partitionMeta{SourceNext: -1}
	found := false
	err := s.view(func(r reader) error {
		ok, err := r.get(metaKey(partition), func(v []byte) error {
			var derr error
			m, derr = decodeMeta(v)
			return derr
		})
		found = ok && err == nil
		return err
	})
	if err != nil {
		return m, false, fmt.Errorf("task: read meta of partition %d: %w", partition, err)
	}
	return m, found, nil
}

// clusterID returns the Kafka cluster id stored with the state ("" if none).
func (s *store) clusterID() (string, error) { return s.global(globalClusterKey) }

func (s *store) setClusterID(id string) error { return s.setGlobal(globalClusterKey, id) }

// sourceTopic returns the source topic the state was built from.
func (s *store) sourceTopic() (string, error) { return s.global(globalSourceKey) }

func (s *store) setSourceTopic(topic string) error { return s.setGlobal(globalSourceKey, topic) }

func (s *store) global(key []byte) (string, error) {
	var id string
	err := s.view(func(r reader) error {
		_, err := r.get(key, func(v []byte) error { id = string(v); return nil })
		return err
	})
	if err != nil {
		return "", fmt.Errorf("task: read %q from the state store: %w", key, err)
	}
	return id, nil
}

func (s *store) setGlobal(key []byte, v string) error {
	w := s.newWriter()
	if err := w.set(key, []byte(v)); err != nil {
		w.discard()
		return fmt.Errorf("task: store %q: %w", key, err)
	}
	if err := w.commitPlain(); err != nil {
		return fmt.Errorf("task: store %q: %w", key, err)
	}
	return nil
}

// dropPartition deletes a partition's state and meta.
func (s *store) dropPartition(partition int32) error {
	var err error
	if s.mem != nil {
		s.mem.dropPrefix(statePrefix(partition), metaKey(partition))
	} else {
		err = s.db.DropPrefix(statePrefix(partition), metaKey(partition))
	}
	if err != nil {
		return fmt.Errorf("task: drop state of partition %d: %w", partition, err)
	}
	return nil
}

// dropAll deletes everything (a new cluster under WipeReset).
func (s *store) dropAll() error {
	if s.mem != nil {
		s.mem.dropPrefix(nil)
		return nil
	}
	if err := s.db.DropAll(); err != nil {
		return fmt.Errorf("task: drop all state: %w", err)
	}
	return nil
}

// reader reads one consistent view of the store: a Badger read
// transaction, or the in-memory map as it is at each call.
type reader interface {
	// get calls fn with key's value (valid only during the call) and
	// reports whether the key was found.
	get(key []byte, fn func(v []byte) error) (found bool, err error)
	discard()
}

// snapshot returns a reader of the store as it is now. A Badger snapshot
// stays as it was; the in-memory one follows later writes, which the task
// only makes from write sets its batches consult first (see Batch.Get), so
// the two read alike.
func (s *store) snapshot() reader {
	if s.mem != nil {
		return s.mem
	}
	return badgerReader{s.db.NewTransaction(false)}
}

// view calls fn with a reader that sees one state throughout.
func (s *store) view(fn func(reader) error) error {
	if s.mem != nil {
		s.mem.mu.RLock()
		defer s.mem.mu.RUnlock()
		return fn(lockedMem{s.mem})
	}
	return s.db.View(func(txn *badger.Txn) error { return fn(badgerReader{txn}) })
}

type badgerReader struct{ txn *badger.Txn }

func (r badgerReader) get(key []byte, fn func(v []byte) error) (bool, error) {
	item, err := r.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, item.Value(fn)
}

func (r badgerReader) discard() { r.txn.Discard() }

// writer applies one batch of state writes and the partition meta. It uses
// one Badger transaction when the batch fits (atomic) and several when Badger
// answers ErrTxnTooBig; the meta always goes into the last one. A crash
// between the parts leaves some keys newer than the meta says. That is safe
// only because the same writes are already committed in the changelog: the
// next start catches up from the meta's changelog offset and rewrites every
// key the batch touched with its value as of the batch's end (changelog
// values are absolute, so re-applying them is idempotent).
type writer struct {
	db  *badger.DB
	txn *badger.Txn
	mem *memWriter
	// parts counts the transactions committed for this batch (metrics).
	parts int
}

func (s *store) newWriter() *writer {
	if s.mem != nil {
		return &writer{mem: &memWriter{kv: s.mem}}
	}
	return &writer{db: s.db, txn: s.db.NewTransaction(true)}
}

func (w *writer) set(key, value []byte) error {
	if w.mem != nil {
		w.mem.set(key, value, false)
		return nil
	}
	return w.do(func(t *badger.Txn) error { return t.Set(key, value) })
}

func (w *writer) delete(key []byte) error {
	if w.mem != nil {
		w.mem.set(key, nil, true)
		return nil
	}
	return w.do(func(t *badger.Txn) error { return t.Delete(key) })
}

func (w *writer) do(op func(*badger.Txn) error) error {
	err := op(w.txn)
	if !errors.Is(err, badger.ErrTxnTooBig) {
		return err
	}
	if err := w.txn.Commit(); err != nil {
		return err
	}
	w.parts++
	w.txn = w.db.NewTransaction(true)
	return op(w.txn)
}

// commitPlain commits what was written, with no meta.
func (w *writer) commitPlain() error {
	w.parts++
	if w.mem != nil {
		w.mem.commit()
		return nil
	}
	return w.txn.Commit()
}

// commit writes the meta with the last part and commits it.
func (w *writer) commit(partition int32, m partitionMeta) error {
	var buf [metaLen]byte
	if err := w.set(metaKey(partition), m.appendTo(buf[:0])); err != nil {
		w.discard()
		return err
	}
	return w.commitPlain()
}

// commitAsync is commit, with the last transaction committed in the
// background; done is called once it is written (or failed). In memory it
// is written, and done called, before commitAsync returns.
func (w *writer) commitAsync(partition int32, m partitionMeta, done func(error)) error {
	meta := m.appendTo(make([]byte, 0, metaLen))
	if err := w.set(metaKey(partition), meta); err != nil {
		w.discard()
		return err
	}
	w.parts++
	if w.mem != nil {
		w.mem.commit()
		done(nil)
		return nil
	}
	w.txn.CommitWith(done)
	return nil
}

func (w *writer) discard() {
	if w.mem != nil {
		w.mem.ops = nil
		return
	}
	w.txn.Discard()
}

// badgerLogger sends Badger's chatter to slog at debug level, and its
// warnings and errors at their own level.
type badgerLogger struct{ log *slog.Logger }

func (l badgerLogger) Errorf(f string, a ...any) {
	l.log.Error("badger: "+trimNL(fmt.Sprintf(f, a...)), "component", "badger")
}
func (l badgerLogger) Warningf(f string, a ...any) {
	l.log.Warn("badger: "+trimNL(fmt.Sprintf(f, a...)), "component", "badger")
}
func (l badgerLogger) Infof(f string, a ...any) {
	l.log.Debug("badger: "+trimNL(fmt.Sprintf(f, a...)), "component", "badger")
}
func (l badgerLogger) Debugf(f string, a ...any) {
	l.log.Debug("badger: "+trimNL(fmt.Sprintf(f, a...)), "component", "badger")
}

func trimNL(s string) string {
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return s
}

// kgoLogger sends franz-go's log lines to slog: warnings and errors always,
// info and debug when the slog handler has debug enabled.
type kgoLogger struct{ log *slog.Logger }

func (l kgoLogger) Level() kgo.LogLevel {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelInfo
	}
	return kgo.LogLevelWarn
}

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		lv = slog.LevelError
	case kgo.LogLevelWarn:
		lv = slog.LevelWarn
	}
	l.log.Log(context.Background(), lv, "kafka: "+msg, keyvals...)
}
