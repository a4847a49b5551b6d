package stage

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkUserStage measures the user stage's processor per source event
// (decode, state, step, gradient records, user records) on synthetic
// traffic, batches of 1,000, without Kafka.
func BenchmarkUserStage(b *testing.B) {
	evs := synthEvents(b, "users=10000,items=5000,seed=2", 50_000)
	recs := make([]*kgo.Record, len(evs))
	for i := range evs {
		recs[i] = eventRecord(b, &evs[i], int64(i))
	}
	cfg := DefaultConfig()
	cfg.Topics = testConfig().Topics
	p := newPipeline(b, cfg)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		batch := recs[n%len(recs) : min(n%len(recs)+1000, len(recs))]
		if err := p.user.process(batch, p.ub); err != nil {
			b.Fatal(err)
		}
		p.ub.out = p.ub.out[:0]
		n += len(batch)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkItemStage measures the item stage's processor per gradient
// record.
func BenchmarkItemStage(b *testing.B) {
	evs := synthEvents(b, "users=10000,items=5000,seed=2", 50_000)
	cfg := DefaultConfig()
	cfg.Topics = testConfig().Topics
	p := newPipeline(b, cfg)
	p.run(evs, 1000)
	grads := p.grads
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		batch := grads[n%len(grads) : min(n%len(grads)+1000, len(grads))]
		if err := p.item.process(batch, p.ib); err != nil {
			b.Fatal(err)
		}
		p.ib.out = p.ib.out[:0]
		n += len(batch)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
