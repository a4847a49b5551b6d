package drift

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/stream/task"
)

// ForwardProcessor is the drift role's first stage, one per source topic
// (eddy.events, eddy.recs): it keeps the records of sampled users and
// copies them, unchanged, to the input topic, keyed by user id and marked
// with SourceHeader. Because both sources are keyed by user id, a user's
// events and served lists meet in one input partition, where the outcome
// join can see both (the task runtime reads one source topic per runtime).
//
// Sampling is by the record key (the user id: FNV-1a against the sample
// share, as Partition samples), so an unsampled record costs a hash and is
// never decoded: that is what keeps the role within its CPU budget at
// hundreds of thousands of events per second. A record without a key is
// decoded to find its user. The stage keeps no state; its copies are
// produced in the batch's Kafka transaction, so each appears once.
type ForwardProcessor struct {
	src       Source
	out       string
	sampleAll bool
	cut       uint32
	counters  *roleCounters
	hdr       []kgo.RecordHeader
}

func newForwardProcessor(src Source, share float64, out string, c *roleCounters) *ForwardProcessor {
	f := &ForwardProcessor{src: src, out: out, counters: c,
		hdr: []kgo.RecordHeader{{Key: SourceHeader, Value: []byte(src.String())}}}
	if share >= 1 {
		f.sampleAll = true
	} else {
		f.cut = uint32(share * (1 << 32))
	}
	return f
}

// Process implements task.Processor.
func (f *ForwardProcessor) Process(_ context.Context, recs []*kgo.Record, b *task.Batch) error {
	kept := 0
	for _, r := range recs {
		key := r.Key
		if len(key) == 0 {
			user, ok := f.userOf(r.Value)
			if !ok {
				f.counters.invalid.WithLabelValues(f.src.String()).Inc()
				continue
			}
			key = []byte(user)
		}
		if !f.sampled(key) {
			continue
		}
		kept++
		b.EmitRecord(&kgo.Record{Topic: f.out, Key: key, Value: r.Value, Timestamp: r.Timestamp, Headers: f.hdr})
	}
	f.counters.read.WithLabelValues(f.src.String()).Add(float64(len(recs)))
	f.counters.sampled.WithLabelValues(f.src.String()).Add(float64(kept))
	return nil
}

func (f *ForwardProcessor) sampled(key []byte) bool {
	if f.sampleAll {
		return true
	}
	return sampleHash(key) < f.cut
}

// sampleHash is FNV-1a, as Partition.sampled computes it on user ids.
func sampleHash(key []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range key {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

func (f *ForwardProcessor) userOf(v []byte) (string, bool) {
	switch f.src {
	case SourceEvents:
		e, err := event.Decode(v, event.DecodeOptions{})
		return e.UserID, err == nil
	case SourceRecs:
		l, err := DecodeServedList(v)
		return l.UserID, err == nil
	}
	return "", false
}
