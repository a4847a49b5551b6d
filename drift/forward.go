package drift

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/stream/task"
)

// newForwardProcessor returns the drift role's first stage, one per source
// topic (eddy.events, eddy.recs): a task.Forwarder that keeps the records
// of sampled users and copies them, unchanged, to the input topic, keyed by
// user id and marked with SourceHeader. Because both sources are keyed by
// user id, a user's events and served lists meet in one input partition,
// where the outcome join can see both (the task runtime reads one source
// topic per runtime).
//
// Sampling is by the record key (the user id: FNV-1a against the sample
// share, as Partition samples), so an unsampled record costs a hash and is
// never decoded: that is what keeps the role within its CPU budget at
// hundreds of thousands of events per second. A record without a key is
// decoded to find its user. The stage keeps no state; its copies are
// produced in the batch's Kafka transaction, so each appears once.
func newForwardProcessor(src Source, share float64, out string, c *roleCounters) *task.Forwarder {
	name := src.String()
	cfg := task.ForwardConfig{
		To:     out,
		Header: kgo.RecordHeader{Key: SourceHeader, Value: []byte(name)},
		Sample: share,
		KeyOf: func(v []byte) ([]byte, bool) {
			user, ok := userOf(src, v)
			return []byte(user), ok
		},
	}
	if c != nil {
		read, sampled, invalid := c.read.WithLabelValues(name), c.sampled.WithLabelValues(name), c.invalid.WithLabelValues(name)
		cfg.Observe = func(r, kept, bad int) {
			read.Add(float64(r))
			sampled.Add(float64(kept))
			if bad > 0 {
				invalid.Add(float64(bad))
			}
		}
	}
	return task.NewForwarder(cfg)
}

func userOf(src Source, v []byte) (string, bool) {
	switch src {
	case SourceEvents:
		e, err := event.Decode(v, event.DecodeOptions{})
		return e.UserID, err == nil
	case SourceRecs:
		l, err := DecodeServedList(v)
		return l.UserID, err == nil
	}
	return "", false
}
