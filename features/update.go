package features

import (
	"fmt"
	"math"
	"time"

	"github.com/eddyrec/eddy/event"
)

// ItemUpdate is the record the user stage forwards, one per event, to the
// item stage through a repartition topic keyed by item id: everything the
// item features need from the event, and where it came from, so the item
// stage can drop what a replay of the user stage sends twice.
type ItemUpdate struct {
	ItemID     string
	Type       event.Type
	Time       int64   // event time, unix milliseconds
	WatchRatio float32 // in [0,1], or -1 when the event has none
	UserHash   uint64  // Hash64(user_id), for the distinct-user sketch
	// Partition and Offset locate the event in the events topic. Each
	// source partition's updates for one item arrive in offset order, so
	// the item stage keeps, per source partition, the last offset it
	// applied and drops anything at or below it. Partition < 0 means "no
	// source": the update is applied without that check.
	Partition int32
	Offset    int64
}

// NewItemUpdate returns the item update for e, read from partition and
// offset of the events topic.
func NewItemUpdate(e *event.Event, partition int32, offset int64) ItemUpdate {
	return ItemUpdate{
		ItemID:     e.ItemID,
		Type:       e.Type,
		Time:       e.Time.UnixMilli(),
		WatchRatio: float32(e.WatchRatio()),
		UserHash:   Hash64(e.UserID),
		Partition:  partition,
		Offset:     offset,
	}
}

// EventTime returns Time as a time.Time.
func (u *ItemUpdate) EventTime() time.Time { return time.UnixMilli(u.Time).UTC() }

// itemUpdateVersion is the schema version byte of the ItemUpdate encoding.
const itemUpdateVersion = 1

// AppendBinary appends the encoding of u to dst. Layout (version 1):
//
//	version  u8 = 1
//	type     u8 (1..8, event.Type)
//	time     varint (zigzag), unix ms
//	ratio    f32 LE, -1 or in [0,1]
//	user     u64 LE, Hash64(user_id), non-zero
//	part     varint (zigzag), -1 = none
//	offset   varint (zigzag)
//	item     uvarint length (1..256) + bytes
func (u *ItemUpdate) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, itemUpdateVersion, byte(u.Type))
	dst = appendVarint(dst, u.Time)
	dst = appendF32(dst, u.WatchRatio)
	dst = appendU64(dst, u.UserHash)
	dst = appendVarint(dst, int64(u.Partition))
	dst = appendVarint(dst, u.Offset)
	return appendString(dst, u.ItemID), nil
}

// MarshalBinary returns the encoding of u.
func (u *ItemUpdate) MarshalBinary() ([]byte, error) { return u.AppendBinary(nil) }

// UnmarshalBinary decodes data into u. On error (wrapping ErrCorrupt) u is
// left unchanged.
func (u *ItemUpdate) UnmarshalBinary(data []byte) error {
	r := reader{b: data}
	var x ItemUpdate
	if v := r.byte("version"); r.err == nil && v != itemUpdateVersion {
		return fmt.Errorf("features: decode item update: %w", corrupt("schema version %d, want %d", v, itemUpdateVersion))
	}
	x.Type = event.Type(r.byte("type"))
	x.Time = r.varint("time")
	x.WatchRatio = r.f32("watch ratio", -1, 1)
	x.UserHash = r.u64("user hash")
	p := r.varint("partition")
	x.Offset = r.varint("offset")
	x.ItemID = r.string("item id", 1, maxIDLen)
	if r.err == nil {
		switch {
		case x.Type < event.Impression || x.Type > event.Rating:
			r.fail("type: out of range")
		case x.WatchRatio < 0 && x.WatchRatio != -1:
			r.fail("watch ratio: negative and not -1")
		case x.UserHash == 0:
			r.fail("user hash: zero")
		case p < -1 || p > math.MaxInt32:
			r.fail("partition: out of range")
		}
	}
	if err := r.done("item update"); err != nil {
		return err
	}
	x.Partition = int32(p)
	*u = x
	return nil
}
