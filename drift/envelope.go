package drift

import (
	"fmt"
	"math"
)

// WindowRecord is one record of the drift role's internal windows topic:
// what one partition's task tells the monitor task after a batch — the
// windows it closed (at most one per record), how far it has closed, its
// watermark and the model version it last saw served. A record without a
// window is progress only (the partition closed an index it had no
// records in, or advanced its watermark).
type WindowRecord struct {
	Partition     int32
	Partitions    int32 // partitions of the input topic, as the sender saw it
	ClosedThrough int64 // math.MinInt64 before any window closed
	Watermark     int64 // Unix ms; 0 before any record
	ModelVersion  string
	Window        []byte // Window.MarshalBinary, or nil
}

// WindowRecord binary layout, version 1 (little-endian):
//
//	"EDWE" | ver u8 | partition i32 | partitions i32 | closed-through i64
//	| watermark ms i64 | model len u16, version | has window u8 [len u32, window]
const windowRecordMagic = "EDWE"

// AppendBinary appends the record's encoding to dst.
func (r *WindowRecord) AppendBinary(dst []byte) ([]byte, error) {
	e := encoder{b: dst}
	e.b = append(e.b, windowRecordMagic...)
	e.u8(stateV1)
	e.u32(uint32(r.Partition))
	e.u32(uint32(r.Partitions))
	e.i64(r.ClosedThrough)
	e.i64(r.Watermark)
	if err := e.str16(r.ModelVersion); err != nil {
		return dst, err
	}
	if r.Window != nil {
		e.u8(1)
		e.blob(r.Window)
	} else {
		e.u8(0)
	}
	return e.b, nil
}

// DecodeWindowRecord reads a WindowRecord. The window bytes alias data;
// DecodeWindow validates them against a schema.
func DecodeWindowRecord(data []byte) (WindowRecord, error) {
	d := &decoder{b: data}
	var r WindowRecord
	if m := d.take(4); d.err != nil || string(m) != windowRecordMagic {
		return r, fmt.Errorf("drift: decode window record: %w", corrupt("bad magic"))
	}
	if v := d.u8(); d.err == nil && v != stateV1 {
		return r, fmt.Errorf("drift: decode window record: %w", corrupt("unsupported version %d", v))
	}
	r.Partition = int32(d.u32())
	r.Partitions = int32(d.u32())
	r.ClosedThrough = d.i64()
	r.Watermark = d.i64()
	r.ModelVersion = d.str16()
	has := d.u8()
	if has == 1 {
		r.Window = d.blob()
	}
	if d.err != nil {
		return WindowRecord{}, fmt.Errorf("drift: decode window record: %w", d.err)
	}
	switch {
	case has > 1:
		return WindowRecord{}, fmt.Errorf("drift: decode window record: %w", corrupt("window flag %d", has))
	case r.Partitions < 1 || r.Partitions > maxPartitionsMerged || r.Partition < 0 || r.Partition >= r.Partitions:
		return WindowRecord{}, fmt.Errorf("drift: decode window record: %w", corrupt("partition %d of %d", r.Partition, r.Partitions))
	case r.Watermark < 0 || r.ClosedThrough == math.MaxInt64:
		return WindowRecord{}, fmt.Errorf("drift: decode window record: %w", corrupt("progress out of range"))
	case len(d.b) != 0:
		return WindowRecord{}, fmt.Errorf("drift: decode window record: %w", corrupt("%d trailing bytes", len(d.b)))
	}
	return r, nil
}
