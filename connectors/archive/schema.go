package archive

import (
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/recs"
)

// SchemaVersion is the version of both file layouts (EventRow, RecsRow).
// A change of columns, types or meaning bumps it; Scan refuses files of a
// version it does not read instead of misreading them.
const SchemaVersion = 1

// Key-value metadata every archive file carries in its Parquet footer.
const (
	// MetaSchema names the layout and its version: "eddy.archive.events/1"
	// or "eddy.archive.recs/1".
	MetaSchema = "eddy.archive.schema"
	// MetaTopic, MetaPartition, MetaFirstOffset and MetaLastOffset name
	// the Kafka range of the flush the file belongs to (every record of the
	// partition in [first, last] whose event hour is the file's folder).
	MetaTopic       = "eddy.archive.topic"
	MetaPartition   = "eddy.archive.partition"
	MetaFirstOffset = "eddy.archive.first_offset"
	MetaLastOffset  = "eddy.archive.last_offset"
)

// EventRow is one archived event: the event contract (DESIGN.md §3) plus
// where it was in Kafka. Column names are the contract's field names.
type EventRow struct {
	EventID string `parquet:"event_id"`
	UserID  string `parquet:"user_id,dict"`
	ItemID  string `parquet:"item_id,dict"`
	Type    string `parquet:"type,dict"`
	// Ts is the event time, unix milliseconds, UTC (TIMESTAMP(MILLIS, UTC)).
	Ts        int64             `parquet:"ts,timestamp(millisecond:utc),delta"`
	Value     *float64          `parquet:"value,optional"`
	Duration  *float64          `parquet:"duration,optional"`
	RequestID *string           `parquet:"request_id,optional"`
	Context   map[string]string `parquet:"context" parquet-key:",dict" parquet-value:",dict"`
	Partition int32             `parquet:"kafka_partition"`
	Offset    int64             `parquet:"kafka_offset,delta"`
	// RecordTs is the Kafka record's timestamp: when it was produced (or
	// appended, on a LogAppendTime topic), not when the event happened.
	RecordTs int64 `parquet:"kafka_timestamp,timestamp(millisecond:utc),delta"`
}

// RecsRow is one archived served list (recs/v1): what the scorer showed a
// user, in order, with the scores and the ranker's features at serving
// time, so that impressions can be joined with the events that answer them
// (request_id).
type RecsRow struct {
	RequestID    string    `parquet:"request_id"`
	UserID       string    `parquet:"user_id,dict"`
	Variant      *string   `parquet:"variant,optional,dict"`
	ModelVersion *string   `parquet:"model_version,optional,dict"`
	Policy       *string   `parquet:"policy,optional,dict"`
	Fallback     bool      `parquet:"fallback"`
	Ts           int64     `parquet:"ts,timestamp(millisecond:utc),delta"`
	Items        []RecItem `parquet:"items,list"`
	Partition    int32     `parquet:"kafka_partition"`
	Offset       int64     `parquet:"kafka_offset,delta"`
	RecordTs     int64     `parquet:"kafka_timestamp,timestamp(millisecond:utc),delta"`
}

// RecItem is one item of a served list.
type RecItem struct {
	ItemID   string             `parquet:"item_id,dict"`
	Position int32              `parquet:"position"`
	Score    float64            `parquet:"score"`
	Features map[string]float64 `parquet:"features" parquet-key:",dict"`
}

// Kind is one archived stream: its folder, its rows and how a Kafka record
// becomes one.
type Kind string

// The archived streams, named by their folder under the archive root.
const (
	Events Kind = "events"
	Recs   Kind = "recs"
)

func (k Kind) schemaName() string {
	return "eddy.archive." + string(k) + "/" + strconv.Itoa(SchemaVersion)
}

var (
	eventSchema = parquet.SchemaOf(EventRow{})
	recsSchema  = parquet.SchemaOf(RecsRow{})
)

// rowDecoder turns Kafka records of one kind into rows. It reuses its
// buffers, so one per consumer.
type rowDecoder struct {
	ev   event.Event
	recs recs.Decoder
	opts event.DecodeOptions
	// recordTime is the current record's timestamp: an event is judged by
	// the future-skew rule against it, as the process role judges it, so
	// that the archive holds what the rest of Eddy accepted whenever it
	// reads the record.
	recordTime time.Time
}

// event decodes r into an EventRow. A record that is not a valid event
// (malformed, or of a schema this build does not read) is an error: it is
// not archived, but its offset is still covered by the flush.
func (d *rowDecoder) event(r *kgo.Record) (EventRow, error) {
	for _, h := range r.Headers {
		if h.Key == event.SchemaHeader {
			if _, err := event.ParseSchemaHeader(string(h.Value)); err != nil {
				return EventRow{}, err
			}
		}
	}
	if d.opts.Now == nil {
		d.opts.Now = func() time.Time { return d.recordTime }
	}
	d.recordTime = r.Timestamp
	if err := event.DecodeInto(&d.ev, r.Value, d.opts); err != nil {
		return EventRow{}, err
	}
	row := eventRow(&d.ev)
	row.Partition, row.Offset, row.RecordTs = r.Partition, r.Offset, r.Timestamp.UnixMilli()
	return row, nil
}

// eventRow is e as a row, without the Kafka columns; the row owns its
// optional values and its context map.
func eventRow(e *event.Event) EventRow {
	row := EventRow{
		EventID: e.EventID,
		UserID:  e.UserID,
		ItemID:  e.ItemID,
		Type:    e.Type.String(),
		Ts:      e.Time.UnixMilli(),
	}
	if e.HasValue {
		v := e.Value
		row.Value = &v
	}
	if e.HasDuration {
		v := e.Duration
		row.Duration = &v
	}
	if e.RequestID != "" {
		s := e.RequestID
		row.RequestID = &s
	}
	if len(e.Context) > 0 {
		row.Context = maps.Clone(e.Context)
	}
	return row
}

// served decodes r into a RecsRow.
func (d *rowDecoder) served(r *kgo.Record) (RecsRow, error) {
	l, err := d.recs.Decode(r.Value)
	if err != nil {
		return RecsRow{}, err
	}
	row := RecsRow{
		RequestID:    l.RequestID,
		UserID:       l.UserID,
		Variant:      optString(l.Variant),
		ModelVersion: optString(l.ModelVersion),
		Policy:       optString(l.Policy),
		Fallback:     l.Fallback,
		Ts:           l.TsMillis,
		Items:        make([]RecItem, len(l.Items)),
		Partition:    r.Partition,
		Offset:       r.Offset,
		RecordTs:     r.Timestamp.UnixMilli(),
	}
	for i, it := range l.Items {
		ri := RecItem{ItemID: it.ItemID, Position: int32(it.Position), Score: it.Score}
		if len(it.Features) > 0 {
			ri.Features = make(map[string]float64, len(it.Features))
			for _, f := range it.Features {
				ri.Features[f.Name] = f.Value
			}
		}
		row.Items[i] = ri
	}
	return row, nil
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Event turns an archived row back into the event it was made from.
func (r *EventRow) Event() (event.Event, error) {
	t, ok := event.ParseType(r.Type)
	if !ok {
		return event.Event{}, fmt.Errorf("archive: event %q: unknown type %q", r.EventID, r.Type)
	}
	e := event.Event{
		EventID: r.EventID,
		UserID:  r.UserID,
		ItemID:  r.ItemID,
		Type:    t,
		Time:    timeMillis(r.Ts),
		Context: r.Context,
	}
	if r.Value != nil {
		e.Value, e.HasValue = *r.Value, true
	}
	if r.Duration != nil {
		e.Duration, e.HasDuration = *r.Duration, true
	}
	if r.RequestID != nil {
		e.RequestID = *r.RequestID
	}
	return e, nil
}
