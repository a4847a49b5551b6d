package task

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

func openTestStore(t testing.TB) *store { return openTestStoreSize(t, 1<<20) }

func openTestStoreSize(t testing.TB, memtable int64) *store {
	t.Helper()
	s, err := openStore(t.TempDir(), memtable, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.close() })
	return s
}

// storeKinds opens each kind of store: Badger and in memory.
var storeKinds = []struct {
	name string
	open func(testing.TB) *store
}{
	{"badger", openTestStore},
	{"memory", func(testing.TB) *store { return newMemStore() }},
}

// TestBatchReadsOwnWrites runs scripted operations against a batch over a
// store holding committed values, in two partitions to show isolation, for
// each kind of store.
func TestBatchReadsOwnWrites(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) { testBatchReadsOwnWrites(t, kind.open(t)) })
	}
}

func testBatchReadsOwnWrites(t *testing.T, s *store) {
	w := s.newWriter()
	for _, kv := range [][3]string{{"1", "a", "committed-a"}, {"1", "b", "committed-b"}, {"2", "a", "other-partition"}} {
		p := int32(kv[0][0] - '0')
		if err := w.set(appendStateKey(nil, p, []byte(kv[1])), []byte(kv[2])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.commit(1, partitionMeta{SourceNext: 10, ChangelogNext: 3}); err != nil {
		t.Fatal(err)
	}

	b := newBatch(1)
	b.snap = s.snapshot()
	defer b.snap.discard()
	steps := []struct {
		op, key, val string
		want         string // for get: value or "-" for missing
	}{
		{"get", "a", "", "committed-a"},
		{"get", "c", "", "-"},
		{"put", "a", "new-a", ""},
		{"get", "a", "", "new-a"},
		{"put", "a", "newer-a", ""},
		{"get", "a", "", "newer-a"},
		{"del", "b", "", ""},
		{"get", "b", "", "-"},
		{"put", "b", "back", ""},
		{"get", "b", "", "back"},
		{"put", "e", "", ""},
		{"get", "e", "", ""},
		{"del", "a", "", ""},
		{"get", "a", "", "-"},
	}
	for i, st := range steps {
		switch st.op {
		case "get":
			v, ok, err := b.Get([]byte(st.key))
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			got := "-"
			if ok {
				got = string(v)
			}
			if got != st.want {
				t.Fatalf("step %d: get %s = %q, want %q", i, st.key, got, st.want)
			}
		case "put":
			buf := []byte(st.val)
			if err := b.Put([]byte(st.key), buf); err != nil {
				t.Fatal(err)
			}
			for j := range buf {
				buf[j] = 'X' // the batch must have copied it
			}
		case "del":
			if err := b.Delete([]byte(st.key)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// One pending write per key, in first-write order, with final values.
	var got []string
	for _, w := range b.own.writes {
		v := string(b.own.bytes(w.val))
		if w.deleted {
			v = "<deleted>"
		}
		got = append(got, w.key+"="+v)
	}
	if want := "a=<deleted> b=back e="; strings.Join(got, " ") != want {
		t.Fatalf("pending writes %q, want %q", strings.Join(got, " "), want)
	}
}

func TestBatchLimits(t *testing.T) {
	s := openTestStore(t)
	b := newBatch(0)
	b.snap = s.snapshot()
	defer b.snap.discard()
	tests := []struct {
		name string
		err  error
		do   func() error
	}{
		{"empty key put", ErrEmptyKey, func() error { return b.Put(nil, []byte("v")) }},
		{"empty key get", ErrEmptyKey, func() error { _, _, err := b.Get([]byte{}); return err }},
		{"empty key delete", ErrEmptyKey, func() error { return b.Delete(nil) }},
		{"long key", ErrKeyTooLarge, func() error { return b.Put(make([]byte, MaxKeyLen+1), nil) }},
		{"long value", ErrValueTooLarge, func() error { return b.Put([]byte("k"), make([]byte, MaxValueLen+1)) }},
		{"max key ok", nil, func() error { return b.Put(bytes.Repeat([]byte{1}, MaxKeyLen), []byte("v")) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
}

// TestWriterSplitsBigBatches checks that a batch larger than one Badger
// transaction is written in several, with the meta in the last, and that
// everything lands.
func TestWriterSplitsBigBatches(t *testing.T) {
	s := openTestStore(t) // 1 MiB memtable: a transaction holds ~150 KiB
	w := s.newWriter()
	val := bytes.Repeat([]byte{7}, 1000)
	const n = 2000 // ~2 MB
	for i := 0; i < n; i++ {
		if err := w.set(appendStateKey(nil, 3, []byte{byte(i >> 8), byte(i)}), val); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.commit(3, partitionMeta{SourceNext: 99, ChangelogNext: 5}); err != nil {
		t.Fatal(err)
	}
	if w.parts < 2 {
		t.Fatalf("batch written in %d transaction(s), want a split", w.parts)
	}
	m, found, err := s.meta(3)
	if err != nil || !found || m != (partitionMeta{99, 5}) {
		t.Fatalf("meta = %+v %v %v", m, found, err)
	}
	count := 0
	_ = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: statePrefix(3)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			count++
		}
		return nil
	})
	if count != n {
		t.Fatalf("%d keys stored, want %d", count, n)
	}
	if err := s.dropPartition(3); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := s.meta(3); found {
		t.Fatal("meta survives dropPartition")
	}
}

// TestBatchReadsThroughWriteBack checks the read order: the batch's own
// writes, then the dirty set (committed to Kafka, not yet to Badger), then
// the set being flushed, then the Badger snapshot.
func TestBatchReadsThroughWriteBack(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) { testBatchReadsThroughWriteBack(t, kind.open(t)) })
	}
}

func testBatchReadsThroughWriteBack(t *testing.T, s *store) {
	w := s.newWriter()
	for _, k := range []string{"a", "b", "c", "d"} {
		if err := w.set(appendStateKey(nil, 0, []byte(k)), []byte("badger-"+k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.commit(0, partitionMeta{SourceNext: 1, ChangelogNext: 1}); err != nil {
		t.Fatal(err)
	}
	dirty, flushing := newWriteSet(), newWriteSet()
	flushing.set([]byte("a"), []byte("flushing-a"), false)
	flushing.set([]byte("b"), nil, true)
	flushing.set([]byte("c"), []byte("flushing-c"), false)
	dirty.set([]byte("a"), []byte("dirty-a"), false)
	dirty.set([]byte("b"), []byte("dirty-b"), false)
	b := newBatch(0)
	b.dirty, b.flushing, b.snap = &dirty, &flushing, s.snapshot()
	defer b.snap.discard()
	if err := b.Delete([]byte("c")); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "dirty-a", "b": "dirty-b", "c": "-", "d": "badger-d", "e": "-"}
	for k, wv := range want {
		v, ok, err := b.Get([]byte(k))
		if err != nil {
			t.Fatal(err)
		}
		got := "-"
		if ok {
			got = string(v)
		}
		if got != wv {
			t.Errorf("Get(%s) = %q, want %q", k, got, wv)
		}
	}
	// A delete in the flushing set hides the Badger value.
	dirty.reset()
	if _, ok, _ := b.Get([]byte("b")); ok {
		t.Error("key deleted in the flushing set is visible")
	}
}
