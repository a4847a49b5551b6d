package task

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestCleanRunAndResume(t *testing.T) {
	e := newEnv(t, 3)
	dir := t.TempDir()
	cfg := e.config(t, dir)
	cfg.MaxBatchRecords = 300 // several batches per partition

	e.produce(t, 2000, 40)
	r := start(t, cfg, counterFactory(e.out))
	e.waitOutputs(t, 2000, 30*time.Second)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	e.checkCounts(t, storeCounts(t, filepath.Join(dir, cfg.Group+"-"+cfg.Store)))

	// Reopen: the runtime resumes from the stored offsets, so the records
	// already applied are not applied again.
	e.produce(t, 700, 40)
	r = start(t, cfg, counterFactory(e.out))
	outs := e.waitOutputs(t, 2700, 30*time.Second)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run after reopen: %v", err)
	}
	e.checkOutputs(t, outs)
	e.checkCounts(t, storeCounts(t, filepath.Join(dir, cfg.Group+"-"+cfg.Store)))
	e.checkCounts(t, e.changelogCounts(t, cfg.changelogTopic()))
}

// TestCrashRecovery abandons runtimes at every crash point, including
// between the Kafka commit and the local store write and in the middle of a
// restore, then checks that the outputs hold each record once and the
// counts are exact.
func TestCrashRecovery(t *testing.T) {
	e := newEnv(t, 2)
	dir := t.TempDir()
	var ab abandonedClients
	t.Cleanup(ab.closeAll)
	rng := rand.New(rand.NewPCG(7, 7))

	points := []crashPoint{crashAfterProcess, crashAfterProduce, crashAfterKafkaCommit, crashAfterStoreCommit, crashDuringRestore}
	rounds := 10
	if testing.Short() {
		rounds = 5
	}
	total := 0
	for round := 0; round < rounds; round++ {
		at := points[round%len(points)]
		e.produce(t, 400+rng.IntN(400), 25)
		total = e.nsent
		cfg := e.config(t, dir)
		// Small batches: every round has many crash chances.
		cfg.MaxBatchRecords = 20 + rng.IntN(80)
		if round%2 == 1 {
			cfg.LocalFlushInterval = 0 // write Badger every batch
		}
		cfg.hooks = crashOnceHooks(at, int32(1+rng.IntN(3)), &ab)
		if at == crashDuringRestore {
			// Make a restore happen: an empty store restores the whole
			// changelog. The state from earlier rounds is rebuilt.
			dir = t.TempDir()
			cfg.DataDir = dir
		}
		r := start(t, cfg, counterFactory(e.out))
		err := r.wait(t, 60*time.Second)
		if !isCrash(err) {
			t.Fatalf("round %d (crash point %d): Run = %v, want the simulated crash", round, at, err)
		}
	}
	// A clean run finishes the work.
	cfg := e.config(t, dir)
	r := start(t, cfg, counterFactory(e.out))
	outs := e.waitOutputs(t, total, 60*time.Second)
	if err := r.stop(t); err != nil {
		t.Fatalf("final Run: %v", err)
	}
	e.checkOutputs(t, outs)
	e.checkCounts(t, storeCounts(t, filepath.Join(dir, cfg.Group+"-"+cfg.Store)))
}

// crashOnceHooks simulates one crash at point at, on its fireAfter-th
// chance (so that some batches commit first), and restores in chunks of 7
// records so that a restore has many points to crash at.
func crashOnceHooks(at crashPoint, fireAfter int32, ab *abandonedClients) *hooks {
	var chances atomic.Int32
	var fired atomic.Bool
	return &hooks{
		crash: func(_ int32, p crashPoint) bool {
			if p != at || fired.Load() || chances.Add(1) < fireAfter {
				return false
			}
			return fired.CompareAndSwap(false, true)
		},
		abandoned:    ab.add,
		restoreChunk: 7,
	}
}

// TestInMemoryCrashRecovery is TestCrashRecovery for a runtime whose state
// lives in memory: every start finds nothing local and restores the whole
// changelog, and crashes at each point, the restore included, still leave
// each record applied and output once.
func TestInMemoryCrashRecovery(t *testing.T) {
	e := newEnv(t, 2)
	var ab abandonedClients
	t.Cleanup(ab.closeAll)
	rng := rand.New(rand.NewPCG(9, 9))
	memCfg := func() Config {
		cfg := e.config(t, "")
		cfg.InMemory = true
		return cfg
	}
	for round, at := range []crashPoint{crashAfterProcess, crashAfterProduce, crashAfterKafkaCommit, crashAfterStoreCommit, crashDuringRestore} {
		e.produce(t, 300+rng.IntN(300), 25)
		cfg := memCfg()
		cfg.MaxBatchRecords = 20 + rng.IntN(60)
		cfg.hooks = crashOnceHooks(at, int32(1+rng.IntN(3)), &ab)
		r := start(t, cfg, counterFactory(e.out))
		if err := r.wait(t, 60*time.Second); !isCrash(err) {
			t.Fatalf("round %d (crash point %d): Run = %v, want the simulated crash", round, at, err)
		}
	}
	reg := prometheus.NewRegistry()
	rt, err := New(memCfg(), counterFactory(e.out), reg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	r := startRuntime(t, rt)
	outs := e.waitOutputs(t, e.nsent, 60*time.Second)
	if err := r.stop(t); err != nil {
		t.Fatalf("final Run: %v", err)
	}
	e.checkOutputs(t, outs)
	e.checkCounts(t, memCounts(t, rt.store.mem))
	if counterValue(t, rt.m.restored) == 0 {
		t.Error("the in-memory runtime restored nothing from the changelog at start")
	}
	// Its changelog rolls small segments, so compaction keeps restores short.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rcs, err := kadm.NewClient(e.cl).DescribeTopicConfigs(ctx, rt.ChangelogTopic())
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(rt.ChangelogTopic(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range rc.Configs {
		if c.Value != nil {
			got[c.Key] = *c.Value
		}
	}
	if got["segment.bytes"] != strconv.Itoa(inMemorySegmentBytes) || got["segment.ms"] != "3600000" || got["cleanup.policy"] != "compact" {
		t.Errorf("changelog configs segment.bytes=%q segment.ms=%q cleanup.policy=%q", got["segment.bytes"], got["segment.ms"], got["cleanup.policy"])
	}
}

// memCounts reads the counters of an in-memory store.
func memCounts(t testing.TB, kv *memKV) map[string]uint64 {
	t.Helper()
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	out := map[string]uint64{}
	for k, v := range kv.m {
		if k[0] != prefixState {
			continue
		}
		if len(v) != 8 {
			t.Fatalf("value of %q has %d bytes", k[5:], len(v))
		}
		out[k[5:]] += binary.LittleEndian.Uint64(v)
	}
	return out
}

// TestRebalanceAndRestore moves partitions between two members of a group,
// then hands everything to a third member with an empty store, which
// restores from the changelog.
func TestRebalanceAndRestore(t *testing.T) {
	e := newEnv(t, 4)
	dirA, dirB, dirC := t.TempDir(), t.TempDir(), t.TempDir()
	cfgA, cfgB, cfgC := e.config(t, dirA), e.config(t, dirB), e.config(t, dirC)
	for _, c := range []*Config{&cfgA, &cfgB, &cfgC} {
		c.MaxBatchRecords = 200
	}

	e.produce(t, 1500, 30)
	a := start(t, cfgA, counterFactory(e.out))
	e.waitOutputs(t, e.nsent, 30*time.Second)

	b := start(t, cfgB, counterFactory(e.out))
	waitAssigned(t, a, b)
	e.produce(t, 1500, 30)
	e.waitOutputs(t, e.nsent, 30*time.Second)

	if err := a.stop(t); err != nil {
		t.Fatalf("A: %v", err)
	}
	e.produce(t, 1000, 30)
	e.waitOutputs(t, e.nsent, 30*time.Second)

	reg := prometheus.NewRegistry()
	rtC, err := New(cfgC, counterFactory(e.out), reg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	c := startRuntime(t, rtC)
	waitAssigned(t, b, c)
	if err := b.stop(t); err != nil {
		t.Fatalf("B: %v", err)
	}
	e.produce(t, 1000, 30)
	outs := e.waitOutputs(t, e.nsent, 30*time.Second)
	restored := counterValue(t, rtC.m.restored)
	if err := c.stop(t); err != nil {
		t.Fatalf("C: %v", err)
	}
	e.checkOutputs(t, outs)
	// C holds every partition now, restored from the changelog.
	e.checkCounts(t, storeCounts(t, filepath.Join(dirC, cfgC.Group+"-"+cfgC.Store)))
	if restored == 0 {
		t.Error("eddy_stream_restore_records_total is 0 on the member that restored")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"eddy_stream_records_applied_total", "eddy_stream_restore_records_total", "eddy_stream_commit_seconds"} {
		if !names[n] {
			t.Errorf("metric %s not gathered", n)
		}
	}
}

// startRuntime runs an already built runtime.
func startRuntime(t *testing.T, rt *Runtime) *running {
	r := &running{rt: rt, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		r.err = rt.Run(ctx)
	}()
	t.Cleanup(func() { r.cancel(); <-r.done })
	return r
}

// waitAssigned waits until every runtime holds at least one ready task.
func waitAssigned(t *testing.T, rs ...*running) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ok := true
		for _, r := range rs {
			st := r.rt.Status()
			ready := 0
			for _, s := range st {
				if !s.Restoring {
					ready++
				}
			}
			ok = ok && ready > 0
		}
		if ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("partitions were not spread over the members within 30s")
}

func TestWipedBroker(t *testing.T) {
	e := newEnv(t, 1)
	dir := t.TempDir()
	cfg := e.config(t, dir)
	e.produce(t, 300, 10)
	r := start(t, cfg, counterFactory(e.out))
	e.waitOutputs(t, 300, 30*time.Second)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}

	// The source topic loses its records (deleted and created again):
	// what a broker whose log was deleted looks like when the cluster id
	// survives. The stored offset is now beyond the end.
	ctx := context.Background()
	adm := kadmClient(t, e)
	if _, err := adm.DeleteTopics(ctx, e.source); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := adm.CreateTopic(ctx, 1, 1, nil, e.source)
		if err == nil && resp.Err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recreate %s: %v %v", e.source, err, resp.Err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.cl = e.k.NewClient(t, kgo.ProducerLinger(0)) // forget the old topic id
	e.produce(t, 10, 10)
	r = start(t, cfg, counterFactory(e.out))
	err := r.wait(t, 30*time.Second)
	if !errors.Is(err, ErrBrokerWiped) {
		t.Fatalf("Run = %v, want ErrBrokerWiped", err)
	}

	// The reset policy starts the partition over. A real broker may first
	// wait out the failed member's session before it hands the partition
	// over, hence the longer deadline.
	cfg.OnBrokerWiped = WipeReset
	r = start(t, cfg, counterFactory(e.out))
	deadline = time.Now().Add(90 * time.Second)
	for {
		st := r.rt.Status()
		if len(st) == 1 && st[0].Next == 10 && r.rt.Ready(0) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reset runtime did not process the new log: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	// The state restarted from zero: 10 records over 10 keys.
	got := storeCounts(t, filepath.Join(dir, cfg.Group+"-"+cfg.Store))
	for k, n := range got {
		if n != 1 {
			t.Errorf("key %s counts %d after the reset, want 1", k, n)
		}
	}

	// A store is tied to its source topic.
	cfg.Topic = e.k.Layout.Name("events.dlq")
	r = start(t, cfg, counterFactory(e.out))
	if err := r.wait(t, 30*time.Second); err == nil || !strings.Contains(err.Error(), "was built from topic") {
		t.Fatalf("Run on another source topic = %v, want a refusal", err)
	}
}

func TestWipedCluster(t *testing.T) {
	e := newEnv(t, 1)
	if e.k.Real {
		t.Skip("needs a second cluster")
	}
	dir := t.TempDir()
	cfg := e.config(t, dir)
	e.produce(t, 100, 10)
	r := start(t, cfg, counterFactory(e.out))
	e.waitOutputs(t, 100, 30*time.Second)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	// A new broker has a new cluster id.
	e2 := newEnv(t, 1)
	cfg2 := e2.config(t, dir)
	cfg2.Group, cfg2.Topic = cfg.Group, e2.source
	r = start(t, cfg2, counterFactory(e2.out))
	if err := r.wait(t, 30*time.Second); !errors.Is(err, ErrBrokerWiped) {
		t.Fatalf("Run on a new cluster = %v, want ErrBrokerWiped", err)
	}
	cfg2.OnBrokerWiped = WipeReset
	e2.group = cfg2.Group
	e2.produce(t, 50, 5)
	r = start(t, cfg2, counterFactory(e2.out))
	outs := e2.waitOutputs(t, 50, 30*time.Second)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	e2.checkOutputs(t, outs)
	e2.checkCounts(t, storeCounts(t, filepath.Join(dir, cfg2.Group+"-"+cfg2.Store)))
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Group, ok.Store, ok.Topic, ok.DataDir = "g", "s", "t", "/tmp/x"
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"defaults", func(*Config) {}, true},
		{"no group", func(c *Config) { c.Group = "" }, false},
		{"no store", func(c *Config) { c.Store = "" }, false},
		{"no topic", func(c *Config) { c.Topic = "" }, false},
		{"no dir", func(c *Config) { c.DataDir = "" }, false},
		{"no dir, in memory", func(c *Config) { c.DataDir, c.InMemory = "", true }, true},
		{"bad store chars", func(c *Config) { c.Store = "a/b" }, false},
		{"zero batch", func(c *Config) { c.MaxBatchRecords = 0 }, false},
		{"tiny memtable", func(c *Config) { c.MemTableSize = 1000 }, false},
		{"bad policy", func(c *Config) { c.OnBrokerWiped = 7 }, false},
		{"zero timeout", func(c *Config) { c.CommitTimeout = 0 }, false},
		{"zero fetch min bytes", func(c *Config) { c.FetchMinBytes = 0 }, false},
		{"no fetch wait", func(c *Config) { c.FetchMaxWait = 0 }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			if err := c.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	if got := ok.changelogTopic(); got != "g-s-changelog" {
		t.Errorf("changelog topic %q", got)
	}
	if got := ok.transactionalID(3); got != "g-s-3" {
		t.Errorf("transactional id %q", got)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// failing counts like counter but fails (or panics) on the record whose
// value is "boom".
type failing struct {
	counter
	panic bool
}

func (f *failing) Process(ctx context.Context, recs []*kgo.Record, b *Batch) error {
	for i, r := range recs {
		if string(r.Value) == "boom" {
			if f.panic {
				panic("boom record")
			}
			return errors.New("boom record")
		}
		if err := f.counter.Process(ctx, recs[i:i+1], b); err != nil {
			return err
		}
	}
	return nil
}

// TestProcessorFailure checks that a processor error or panic stops the
// runtime without committing the failed batch, and that a fixed processor
// then applies everything exactly once.
func TestProcessorFailure(t *testing.T) {
	for _, panics := range []bool{false, true} {
		t.Run(fmt.Sprintf("panic=%v", panics), func(t *testing.T) {
			e := newEnv(t, 1)
			dir := t.TempDir()
			cfg := e.config(t, dir)
			cfg.MaxBatchRecords = 20
			e.produce(t, 100, 5)
			boom := &kgo.Record{Topic: e.source, Key: []byte("boom"), Value: []byte("boom")}
			if err := e.cl.ProduceSync(context.Background(), boom).FirstErr(); err != nil {
				t.Fatal(err)
			}
			r := start(t, cfg, func(int32) (Processor, error) { return &failing{counter: counter{out: e.out}, panic: panics}, nil })
			err := r.wait(t, 30*time.Second)
			if err == nil || !strings.Contains(err.Error(), "boom record") {
				t.Fatalf("Run = %v, want the processor's failure", err)
			}
			// Only whole batches before the poison record committed.
			if n := len(readCommitted(t, e.k, e.out)); n > 100 {
				t.Fatalf("%d outputs committed, want at most the 100 before the failure", n)
			}
			// The fixed processor skips the poison record (and counts it).
			e.sent["boom"]++
			e.nsent++
			r = start(t, cfg, counterFactory(e.out))
			outs := e.waitOutputs(t, 101, 30*time.Second)
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
			e.checkOutputs(t, outs)
		})
	}
}

// TestBoundsStoppedWhileWaiting: a runtime stopped while it waits for a new
// topic's partitions to be listed reports the stop (context.Canceled),
// which its callers treat as a clean stop, not the missing partition (a
// failure): a service stopped during a restore on a real broker, where a
// new changelog takes seconds to be listed, returned an error.
func TestBoundsStoppedWhileWaiting(t *testing.T) {
	e := newEnv(t, 1)
	rt := &Runtime{}
	rt.adm = kadmClient(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	go func() { time.Sleep(150 * time.Millisecond); cancel() }()
	_, _, err := rt.bounds(ctx, e.source+"-never-created", 0, false)
	if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("bounds after the stop: %v, want context.Canceled", err)
	}
}
