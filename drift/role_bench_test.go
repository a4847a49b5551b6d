package drift

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/eddyrec/eddy/event"
)

// BenchmarkRolePerRecord is the drift role's CPU per source record outside
// Kafka with 50 signals: the forward stage's key hash for every record and,
// for sampled users, decoding the JSON value and observing it in a
// Partition (closing windows included). ns/event divides by events only
// (served lists, 1 per 12 records, are the expensive records). Fetching and
// producing are not included: see doc.go of the role for their cost.
func BenchmarkRolePerRecord(b *testing.B) {
	recs := benchRecords(1 << 16)
	type raw struct {
		key, val []byte
		src      Source
	}
	raws := make([]raw, len(recs))
	for i, r := range recs {
		if r.e != nil {
			raws[i] = raw{[]byte(r.e.UserID), r.e.AppendJSON(nil), SourceEvents}
		} else {
			v, err := json.Marshal(r.l)
			if err != nil {
				b.Fatal(err)
			}
			raws[i] = raw{[]byte(r.l.UserID), v, SourceRecs}
		}
	}
	for _, share := range []float64{1, 0.01} {
		b.Run(fmt.Sprintf("sample=%g", share), func(b *testing.B) {
			cfg := bench50Config()
			cfg.Window.Sample = share
			s, err := NewSchema(cfg)
			if err != nil {
				b.Fatal(err)
			}
			f := newForwardProcessor(SourceEvents, share, "", nil)
			p := &PartitionProcessor{schema: s, part: NewPartition(s), align: newAligner((15 * time.Minute).Milliseconds(), 200_000)}
			var closed []*Window
			b.ReportAllocs()
			i, events := 0, 0
			for b.Loop() {
				r := &raws[i]
				if r.src == SourceEvents {
					events++
				}
				if f.Sampled(r.key) {
					// Times repeat across loops: windows closed once stay
					// closed and repeated records count as late, which
					// costs what an observation costs up to the route.
					p.observe(r.src, r.val, time.Time{})
					closed = p.part.TakeClosed(closed[:0])
				}
				if i++; i == len(raws) {
					i = 0
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(max(events, 1)), "ns/event")
		})
	}
	_ = event.Impression
}
