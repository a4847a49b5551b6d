package event

import (
	"encoding/json"
	"testing"
	"time"
)

const benchBatch = 1000

func BenchmarkDecodeBatchNDJSON(b *testing.B) {
	body := ndjson(b, realisticEvents(benchBatch))
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		events, rejected, err := DecodeBatch(body, "application/x-ndjson", testOpts)
		if err != nil || len(events) != benchBatch || len(rejected) != 0 {
			b.Fatalf("%d events, %d rejected, %v", len(events), len(rejected), err)
		}
	}
	b.ReportMetric(float64(b.N)*benchBatch/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkDecodeBatchArray(b *testing.B) {
	events := realisticEvents(benchBatch)
	body := []byte{'['}
	for i := range events {
		if i > 0 {
			body = append(body, ',')
		}
		body = events[i].AppendJSON(body)
	}
	body = append(body, ']')
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		got, _, err := DecodeBatch(body, "application/json", testOpts)
		if err != nil || len(got) != benchBatch {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*benchBatch/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDecodeOne decodes records one at a time, as a Kafka consumer
// does, cycling through realistic events (a third with RFC 3339 times);
// "into" with DecodeInto and one reused Event, as the drift role does.
func BenchmarkDecodeOne(b *testing.B) {
	events := realisticEvents(benchBatch)
	records := make([][]byte, len(events))
	size := 0
	for i := range events {
		records[i] = events[i].AppendJSON(nil)
		if i%3 == 0 {
			// Same instant, RFC 3339 spelling.
			e := events[i]
			rfc := `"` + e.Time.Format("2006-01-02T15:04:05.000Z07:00") + `"`
			records[i] = []byte(obj("event_id", `"`+e.EventID+`"`, "user_id", `"`+e.UserID+`"`,
				"item_id", `"`+e.ItemID+`"`, "type", `"click"`, "ts", rfc))
		}
		size += len(records[i])
	}
	for _, into := range []bool{false, true} {
		name := "decode"
		if into {
			name = "into"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size / len(records)))
			var e Event
			var err error
			i := 0
			for b.Loop() {
				if into {
					err = DecodeInto(&e, records[i], testOpts)
				} else {
					e, err = Decode(records[i], testOpts)
				}
				if err != nil {
					b.Fatal(err)
				}
				if i++; i == len(records) {
					i = 0
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	events := realisticEvents(benchBatch)
	buf := make([]byte, 0, 512)
	size := 0
	for i := range events {
		size += len(events[i].AppendJSON(nil))
	}
	b.ReportAllocs()
	b.SetBytes(int64(size / len(events)))
	i := 0
	for b.Loop() {
		buf = events[i].AppendJSON(buf[:0])
		if i++; i == len(events) {
			i = 0
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkEncodingJSONBaseline is the reference the hand-written decoder is
// measured against: encoding/json into a plain wire struct, with none of the
// validation, duplicate-key or UTF-8 checks.
func BenchmarkEncodingJSONBaseline(b *testing.B) {
	type wire struct {
		EventID   string            `json:"event_id"`
		UserID    string            `json:"user_id"`
		ItemID    string            `json:"item_id"`
		Type      string            `json:"type"`
		TS        int64             `json:"ts"`
		Value     *float64          `json:"value"`
		Duration  *float64          `json:"duration"`
		RequestID string            `json:"request_id"`
		Context   map[string]string `json:"context"`
	}
	events := realisticEvents(benchBatch)
	records := make([][]byte, len(events))
	for i := range events {
		records[i] = events[i].AppendJSON(nil)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var w wire
		if err := json.Unmarshal(records[i], &w); err != nil {
			b.Fatal(err)
		}
		_ = time.UnixMilli(w.TS)
		if i++; i == len(records) {
			i = 0
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
