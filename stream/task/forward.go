package task

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ForwardConfig configures a Forwarder.
type ForwardConfig struct {
	// To is the output topic.
	To string
	// Header, when its Key is set, is the only header of every copy (the
	// source's headers are not copied): it names the source topic, so that
	// the reader of To can tell the sources apart.
	Header kgo.RecordHeader
	// Sample is the share of keys forwarded: a record is kept when the
	// FNV-1a hash of its key is below Sample·2³². 1 (or more) keeps every
	// key, and 0 keeps none. Sampling on the key keeps or drops all the
	// records of one key together and costs a hash, never a decode.
	Sample float64
	// Keep, if set, is asked about every sampled record's value; false
	// drops the record. It should be cheap (a byte scan, not a decode).
	Keep func(value []byte) bool
	// KeyOf finds the key of a record that has none (decoding its value);
	// ok false, or a nil KeyOf, counts the record as invalid and drops it.
	KeyOf func(value []byte) (key []byte, ok bool)
	// Observe, if set, is told after every batch how many records were
	// read, forwarded and dropped as invalid.
	Observe func(read, forwarded, invalid int)
}

// Forwarder is a stateless Processor that copies the records of its source
// topic, unchanged (key, value and timestamp), to another topic, keyed as
// the source is, optionally sampled by key and filtered. It is how Eddy
// joins two topics despite the runtime's one source topic per runtime: one
// Forwarder per source, keyed alike (by user id), copies both into one
// input topic, where a user's records of both sources meet in one
// partition; the header tells the sources apart. The copies are produced in
// the batch's Kafka transaction, so each source record appears once in the
// output (read_committed).
type Forwarder struct {
	cfg  ForwardConfig
	copy *Copier
}

// NewForwarder returns a Forwarder for cfg.
func NewForwarder(cfg ForwardConfig) *Forwarder {
	return &Forwarder{cfg: cfg, copy: NewCopier(cfg.To, cfg.Sample, cfg.Header)}
}

// Process implements Processor.
func (f *Forwarder) Process(_ context.Context, recs []*kgo.Record, b *Batch) error {
	kept, invalid := 0, 0
	for _, r := range recs {
		key := r.Key
		if len(key) == 0 {
			var ok bool
			if f.cfg.KeyOf != nil {
				key, ok = f.cfg.KeyOf(r.Value)
			}
			if !ok || len(key) == 0 {
				invalid++
				continue
			}
		}
		c := f.copy.Copy(key, r.Value, r.Timestamp)
		if c == nil || (f.cfg.Keep != nil && !f.cfg.Keep(r.Value)) {
			continue
		}
		kept++
		b.EmitRecord(c)
	}
	if f.cfg.Observe != nil {
		f.cfg.Observe(len(recs), kept, invalid)
	}
	return nil
}

// Sampled reports whether the records of key are forwarded (Sample).
func (f *Forwarder) Sampled(key []byte) bool { return f.copy.sample.Keeps(key) }
