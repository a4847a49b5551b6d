package task

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/stream"
)

// counter is the test processor: it counts records per key and emits, for
// every record, "partition/offset/count" keyed by the record's key. Outputs
// prove exactly-once: each source offset appears once, and each key's
// counts are exactly 1..n.
type counter struct {
	out string
	// noEmit skips outputs (benchmarks of the bare state path).
	noEmit bool
	buf    []byte
}

func (c *counter) Process(_ context.Context, recs []*kgo.Record, b *Batch) error {
	for _, r := range recs {
		v, ok, err := b.Get(r.Key)
		if err != nil {
			return err
		}
		var n uint64
		if ok {
			if len(v) != 8 {
				return fmt.Errorf("counter value of %d bytes", len(v))
			}
			n = binary.LittleEndian.Uint64(v)
		}
		n++
		c.buf = binary.LittleEndian.AppendUint64(c.buf[:0], n)
		if err := b.Put(r.Key, c.buf); err != nil {
			return err
		}
		if !c.noEmit {
			c.buf = strconv.AppendInt(c.buf[:0], int64(r.Partition), 10)
			c.buf = append(c.buf, '/')
			c.buf = strconv.AppendInt(c.buf, r.Offset, 10)
			c.buf = append(c.buf, '/')
			c.buf = strconv.AppendUint(c.buf, n, 10)
			b.Emit(c.out, r.Key, c.buf)
		}
	}
	return nil
}

func counterFactory(out string) ProcessorFactory {
	return func(int32) (Processor, error) { return &counter{out: out}, nil }
}

// env is one test's broker and topics.
type env struct {
	k      *testkafka.Kafka
	source string
	out    string
	group  string
	cl     *kgo.Client
	sent   map[string]int // records produced per key
	nsent  int
}

func newEnv(t testing.TB, partitions int32) *env {
	t.Helper()
	k := testkafka.Start(t, partitions)
	e := &env{
		k:      k,
		source: k.Layout.Name(stream.TopicEvents),
		out:    k.Layout.Name(stream.TopicItemGrads),
		group:  k.Layout.Prefix + "g",
		sent:   map[string]int{},
	}
	e.cl = k.NewClient(t, kgo.ProducerLinger(0))
	return e
}

func (e *env) config(t testing.TB, dir string) Config {
	cfg := DefaultConfig()
	cfg.Client = e.k.Client()
	cfg.Group = e.group
	cfg.Store = "counts"
	cfg.Topic = e.source
	cfg.DataDir = dir
	cfg.LagCommitInterval = 100 * time.Millisecond
	cfg.SessionTimeout = 10 * time.Second
	cfg.RebalanceTimeout = 20 * time.Second
	cfg.TransactionTimeout = 20 * time.Second
	return cfg
}

// produce sends n records over keys distinct keys.
func (e *env) produce(t testing.TB, n, keys int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rs := make([]*kgo.Record, 0, n)
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("user-%d", (e.nsent+i)%keys)
		e.sent[key]++
		rs = append(rs, &kgo.Record{Topic: e.source, Key: []byte(key), Value: []byte(strconv.Itoa(e.nsent + i))})
	}
	e.nsent += n
	if err := e.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// running is a Runtime started in a goroutine.
type running struct {
	rt     *Runtime
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func start(t testing.TB, cfg Config, f ProcessorFactory) *running {
	t.Helper()
	rt, err := New(cfg, f, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{rt: rt, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = rt.Run(ctx)
	}()
	t.Cleanup(func() { r.cancel(); <-r.done })
	return r
}

// stop cancels the runtime and returns Run's error.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(60 * time.Second):
		t.Fatal("runtime did not stop within 60s")
	}
	return r.err
}

// wait waits for Run to return on its own (a simulated crash).
func (r *running) wait(t testing.TB, d time.Duration) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(d):
		t.Fatalf("runtime still running after %v", d)
		return nil
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() && os.Getenv("EDDY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// readCommitted returns the committed data records of topic, up to its last
// stable offsets when called.
func readCommitted(t testing.TB, k *testkafka.Kafka, topic string) []*kgo.Record {
	t.Helper()
	return k.ReadAll(t, topic)
}

// waitOutputs polls the output topic until it holds n committed records.
func (e *env) waitOutputs(t testing.TB, n int, d time.Duration) []*kgo.Record {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		recs := readCommitted(t, e.k, e.out)
		if len(recs) >= n || time.Now().After(deadline) {
			if len(recs) < n {
				t.Fatalf("output topic has %d committed records after %v, want %d", len(recs), d, n)
			}
			return recs
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkOutputs asserts exactly-once: every source record produced one
// output, and every key's counts are 1..sent[key], each once.
func (e *env) checkOutputs(t testing.TB, outs []*kgo.Record) {
	t.Helper()
	seen := map[string]int{}
	counts := map[string]map[uint64]int{}
	for _, r := range outs {
		var p, off int64
		var n uint64
		if _, err := fmt.Sscanf(string(r.Value), "%d/%d/%d", &p, &off, &n); err != nil {
			t.Fatalf("output %q: %v", r.Value, err)
		}
		seen[fmt.Sprintf("%d/%d", p, off)]++
		k := string(r.Key)
		if counts[k] == nil {
			counts[k] = map[uint64]int{}
		}
		counts[k][n]++
	}
	dups := 0
	for so, c := range seen {
		if c != 1 {
			dups++
			if dups < 5 {
				t.Errorf("source record %s has %d outputs, want 1", so, c)
			}
		}
	}
	if len(seen) != e.nsent {
		t.Errorf("outputs cover %d source records, want %d", len(seen), e.nsent)
	}
	for k, want := range e.sent {
		got := counts[k]
		if len(got) != want {
			t.Errorf("key %s: %d distinct counts in outputs, want %d", k, len(got), want)
			continue
		}
		for i := uint64(1); i <= uint64(want); i++ {
			if got[i] != 1 {
				t.Errorf("key %s: count %d appears %d times in outputs, want once", k, i, got[i])
				break
			}
		}
	}
}

// storeCounts reads the counts in a closed runtime's store.
func storeCounts(t testing.TB, dir string) map[string]uint64 {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatalf("open store %s: %v", dir, err)
	}
	defer db.Close()
	out := map[string]uint64{}
	err = db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixState}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			key := it.Item().KeyCopy(nil)[5:]
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if len(v) != 8 {
				return fmt.Errorf("value of %q has %d bytes", key, len(v))
			}
			out[string(key)] += binary.LittleEndian.Uint64(v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *env) checkCounts(t testing.TB, got map[string]uint64) {
	t.Helper()
	if len(got) != len(e.sent) {
		t.Errorf("store has %d keys, want %d", len(got), len(e.sent))
	}
	for k, want := range e.sent {
		if got[k] != uint64(want) {
			t.Errorf("key %s: count %d, want %d", k, got[k], want)
		}
	}
}

// changelogCounts is the latest changelog value of every key.
func (e *env) changelogCounts(t testing.TB, topic string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, r := range readCommitted(t, e.k, topic) {
		ent, err := decodeChangelog(r.Key, r.Value)
		if err != nil {
			t.Fatalf("changelog record at %d/%d: %v", r.Partition, r.Offset, err)
		}
		if ent.Checkpoint {
			continue
		}
		if !bytes.HasPrefix(ent.Key, []byte("user-")) || len(ent.Value) != 8 {
			t.Fatalf("unexpected changelog entry %q=%x", ent.Key, ent.Value)
		}
		out[string(ent.Key)] = binary.LittleEndian.Uint64(ent.Value)
	}
	return out
}

// abandonedClients collects the producers simulated crashes leave open.
type abandonedClients struct {
	mu  sync.Mutex
	cls []*kgo.Client
}

func (a *abandonedClients) add(cl *kgo.Client) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cls = append(a.cls, cl)
}

func (a *abandonedClients) closeAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, cl := range a.cls {
		cl.Close()
	}
	a.cls = nil
}

func isCrash(err error) bool { return errors.Is(err, errSimulatedCrash) }

func kadmClient(t testing.TB, e *env) *kadm.Client { return kadm.NewClient(e.k.NewClient(t)) }
