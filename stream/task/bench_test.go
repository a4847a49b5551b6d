package task

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkRuntime measures records per second through the runtime on the
// embedded broker: b.N source records over 4 partitions and the given
// number of keys are produced first (not timed), then one runtime applies
// them all. "emit" is the counting processor with one output per record
// (besides, per batch, one changelog record per changed key); "state"
// counts without outputs. Few keys show the write-back coalescing; a
// million keys (almost every record a new key) show the worst case.
func BenchmarkRuntime(b *testing.B) {
	for _, c := range []struct {
		emit bool
		keys int
	}{{false, 10000}, {false, 1000000}, {true, 10000}} {
		emit := c.emit
		name := fmt.Sprintf("state/keys=%d", c.keys)
		if emit {
			name = fmt.Sprintf("emit/keys=%d", c.keys)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			e := newEnv(b, 4)
			n := max(b.N, 1000)
			produceFast(b, e, n, c.keys)
			cfg := e.config(b, b.TempDir())
			f := func(int32) (Processor, error) { return &counter{out: e.out, noEmit: !emit}, nil }
			reg := prometheus.NewRegistry()
			rt, err := New(cfg, f, reg, testLogger(b))
			if err != nil {
				b.Fatal(err)
			}
			ends := map[int32]int64{}
			for p := int32(0); p < 4; p++ {
				_, end, err := boundsFor(b, e, p)
				if err != nil {
					b.Fatal(err)
				}
				ends[p] = end
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			b.ResetTimer()
			cpu0 := cpuTime()
			startT := time.Now()
			go func() { done <- rt.Run(ctx) }()
			for {
				st := rt.Status()
				caught := len(st) == 4
				for _, s := range st {
					caught = caught && s.Next >= ends[s.Partition]
				}
				if caught {
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
			elapsed := time.Since(startT)
			cpu := cpuTime() - cpu0
			b.StopTimer()
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(n)/elapsed.Seconds(), "records/s")
			// CPU of the whole process (runtime, franz-go and the
			// embedded broker) per record: on a loaded machine it says
			// more than wall time. 2 cores / this = the ceiling on two
			// idle cores.
			b.ReportMetric(cpu.Seconds()/float64(n)*1e9, "cpu-ns/rec")
			// Where the time went, per source record, summed over tasks.
			b.ReportMetric(histSum(b, rt.m.applySeconds)/float64(n)*1e9, "apply-ns/rec")
			b.ReportMetric(histSum(b, rt.m.commitSeconds)/float64(n)*1e9, "commit-ns/rec")
			b.ReportMetric(float64(n)/histCount(b, rt.m.batchRecords), "records/batch")
		})
	}
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func histSum(b *testing.B, h prometheus.Histogram) float64 {
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		b.Fatal(err)
	}
	return m.GetHistogram().GetSampleSum()
}

func histCount(b *testing.B, h prometheus.Histogram) float64 {
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		b.Fatal(err)
	}
	return float64(m.GetHistogram().GetSampleCount())
}

func produceFast(b *testing.B, e *env, n, keys int) {
	ctx := context.Background()
	const chunk = 10000
	rs := make([]*kgo.Record, 0, chunk)
	val := make([]byte, 100)
	for i := 0; i < n; i++ {
		rs = append(rs, &kgo.Record{Topic: e.source, Key: []byte(fmt.Sprintf("user-%d", i%keys)), Value: val})
		if len(rs) == chunk || i == n-1 {
			if err := e.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			rs = rs[:0]
		}
	}
}

func boundsFor(b *testing.B, e *env, p int32) (int64, int64, error) {
	rt := &Runtime{}
	rt.adm = kadmClient(b, e)
	return rt.bounds(context.Background(), e.source, p, false)
}

// BenchmarkStoreCommit measures the local half of a commit: one Badger
// transaction of 2,500 changed keys (8-byte values) plus the meta, the
// shape of a 5,000-record batch over 10,000 keys and 4 partitions.
func BenchmarkStoreCommit(b *testing.B) {
	s := openTestStoreSize(b, 16<<20)
	keys := make([][]byte, 2500)
	for i := range keys {
		keys[i] = appendStateKey(nil, 1, []byte(fmt.Sprintf("user-%d", i*4)))
	}
	val := make([]byte, 8)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := s.newWriter()
		for _, k := range keys {
			val[0] = byte(i)
			if err := w.set(k, val); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.commit(1, partitionMeta{SourceNext: int64(i), ChangelogNext: int64(i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(keys))/b.Elapsed().Seconds(), "keys/s")
}

// BenchmarkRestore measures how fast an instance with an empty store
// restores a partition from its changelog: b.N state records (distinct keys,
// 8-byte values) are written to the changelog in transactions of 10,000
// with a checkpoint each, then a runtime restores them.
func BenchmarkRestore(b *testing.B) {
	b.ReportAllocs()
	e := newEnv(b, 1)
	cfg := e.config(b, b.TempDir())
	cl := e.k.NewClient(b, kgo.TransactionalID(e.group+"-bench-writer"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadmClient(b, e)
	ctx := context.Background()
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": ptr("compact")}, cfg.changelogTopic()); err != nil {
		b.Fatal(err)
	}
	n := max(b.N, 1000)
	val := make([]byte, 8)
	for i := 0; i < n; {
		if err := cl.BeginTransaction(); err != nil {
			b.Fatal(err)
		}
		end := min(i+10000, n)
		for ; i < end; i++ {
			cl.Produce(ctx, &kgo.Record{Topic: cfg.changelogTopic(), Key: []byte(fmt.Sprintf("suser-%d", i)), Value: val}, nil)
		}
		cl.Produce(ctx, &kgo.Record{Topic: cfg.changelogTopic(), Key: []byte{checkpointKey}, Value: appendCheckpoint(nil, 0)}, nil)
		if err := cl.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			b.Fatal(err)
		}
	}
	rt, err := New(cfg, counterFactory(e.out), nil, testLogger(b))
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() { done <- rt.Run(rctx) }()
	for !rt.Ready(1 << 62) {
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "records/s")
}
