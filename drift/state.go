package drift

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Binary layouts of windows and partition state (little-endian; each
// starts with a magic, a version byte and the schema fingerprint, so state
// written under another signal configuration is refused with
// ErrSchemaMismatch rather than misread).
//
// Window, version 1:
//
//	"EDWN" | ver u8 | fingerprint u64 | flags u8 (1 closed, 2 count mode, 4 has times)
//	| index i64 | start ms i64 | end ms i64 | min ms i64 | max ms i64
//	| events u64 | lists u64 | users dropped u64 | partitions u32
//	| signals u16 | signals × (tag u8: 0 empty, 1 sketch, 2 table; [len u32, bytes])
//	| users u32 | users × (len u16, id, events u64, first ms i64, last ms i64)
//
// Partition state, version 1:
//
//	"EDPS" | ver u8 | fingerprint u64 | has watermark u8 | watermark i64
//	| closed-through i64 | next seq i64 | current records i64 | late u64 | evicted u64
//	| open u32 × (len u32, window) | ready u32 × (len u32, window)
//	| held u32 × (request len u16, id, user len u16, id, expiry ms i64,
//	  clicked u8, items u32 × (len u16, id, score f64)), oldest first
const (
	windowMagic    = "EDWN"
	partitionMagic = "EDPS"
	stateV1        = 1

	flagClosed = 1
	flagCount  = 2
	flagHasTS  = 4

	tagEmpty  = 0
	tagSketch = 1
	tagTable  = 2

	maxPartitionsMerged = 1 << 20
	maxIDBytes          = 1<<16 - 1
)

type encoder struct{ b []byte }

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16) { e.b = binary.LittleEndian.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *encoder) i64(v int64)  { e.u64(uint64(v)) }
func (e *encoder) f64(v float64) {
	e.u64(math.Float64bits(v))
}
func (e *encoder) str16(s string) error {
	if len(s) > maxIDBytes {
		return fmt.Errorf("drift: encode: id of %d bytes too long", len(s))
	}
	e.u16(uint16(len(s)))
	e.b = append(e.b, s...)
	return nil
}
func (e *encoder) blob(b []byte) {
	e.u32(uint32(len(b)))
	e.b = append(e.b, b...)
}

func (d *decoder) i64() int64 { return int64(d.u64()) }
func (d *decoder) str16() string {
	n := int(d.u16())
	return string(d.take(n))
}
func (d *decoder) blob() []byte {
	n := int(d.u32())
	return d.take(n)
}

// MarshalBinary encodes w in the window layout above.
func (w *Window) MarshalBinary() ([]byte, error) {
	var e encoder
	if err := w.encode(&e); err != nil {
		return nil, err
	}
	return e.b, nil
}

func (w *Window) encode(e *encoder) error {
	e.b = append(e.b, windowMagic...)
	e.u8(stateV1)
	e.u64(w.schema.fp)
	var flags uint8
	if w.closed {
		flags |= flagClosed
	}
	if w.countMd {
		flags |= flagCount
	}
	if w.hasTS {
		flags |= flagHasTS
	}
	e.u8(flags)
	e.i64(w.Index)
	e.i64(w.Start.UnixMilli())
	e.i64(w.End.UnixMilli())
	e.i64(w.minTS)
	e.i64(w.maxTS)
	e.u64(uint64(w.Events))
	e.u64(uint64(w.Lists))
	e.u64(uint64(w.UsersDropped))
	e.u32(uint32(w.Partitions))
	e.u16(uint16(len(w.sketches)))
	for i := range w.sketches {
		switch {
		case w.sketches[i] != nil:
			b, err := w.sketches[i].MarshalBinary()
			if err != nil {
				return err
			}
			e.u8(tagSketch)
			e.blob(b)
		case w.tables[i] != nil:
			b, err := w.tables[i].MarshalBinary()
			if err != nil {
				return err
			}
			e.u8(tagTable)
			e.blob(b)
		default:
			e.u8(tagEmpty)
		}
	}
	e.u32(uint32(len(w.agg)))
	// Users in insertion order (agg order), which the map indexes.
	ids := make([]string, len(w.agg))
	for id, j := range w.users {
		ids[j] = id
	}
	for j, a := range w.agg {
		if err := e.str16(ids[j]); err != nil {
			return err
		}
		e.u64(uint64(a.n))
		e.i64(a.first)
		e.i64(a.last)
	}
	return nil
}

// DecodeWindow decodes a window written by MarshalBinary under schema s,
// validating every field against s (fingerprint, signal count and kinds,
// sketch k, table capacity, user bounds).
func DecodeWindow(s *Schema, data []byte) (*Window, error) {
	d := &decoder{b: data}
	w, err := decodeWindow(s, d)
	if err == nil && len(d.b) != 0 {
		err = corrupt("%d trailing bytes", len(d.b))
	}
	if err != nil {
		return nil, fmt.Errorf("drift: decode window: %w", err)
	}
	return w, nil
}

func decodeWindow(s *Schema, d *decoder) (*Window, error) {
	if m := d.take(4); d.err != nil || string(m) != windowMagic {
		return nil, corrupt("bad magic")
	}
	if v := d.u8(); v != stateV1 {
		return nil, corrupt("unsupported version %d", v)
	}
	if fp := d.u64(); d.err == nil && fp != s.fp {
		return nil, ErrSchemaMismatch
	}
	flags := d.u8()
	w := newWindow(s, d.i64())
	startMs, endMs := d.i64(), d.i64()
	w.minTS, w.maxTS = d.i64(), d.i64()
	events, lists, dropped := d.u64(), d.u64(), d.u64()
	parts := d.u32()
	nsig := int(d.u16())
	if d.err != nil {
		return nil, d.err
	}
	if flags&^(flagClosed|flagCount|flagHasTS) != 0 {
		return nil, corrupt("unknown flags %#x", flags)
	}
	w.closed, w.countMd, w.hasTS = flags&flagClosed != 0, flags&flagCount != 0, flags&flagHasTS != 0
	w.Start, w.End = time.UnixMilli(startMs).UTC(), time.UnixMilli(endMs).UTC()
	if startMs > endMs || (w.hasTS && w.minTS > w.maxTS) || (!w.hasTS && (w.minTS != 0 || w.maxTS != 0)) {
		return nil, corrupt("window times out of order")
	}
	if events > math.MaxInt64 || lists > math.MaxInt64 || dropped > math.MaxInt64 {
		return nil, corrupt("counts out of range")
	}
	if parts < 1 || parts > maxPartitionsMerged {
		return nil, corrupt("partitions %d outside [1, %d]", parts, maxPartitionsMerged)
	}
	w.Events, w.Lists, w.UsersDropped, w.Partitions = int64(events), int64(lists), int64(dropped), int(parts)
	if nsig != len(s.signals) {
		return nil, corrupt("%d signals, schema has %d", nsig, len(s.signals))
	}
	for i := range nsig {
		tag := d.u8()
		if tag == tagEmpty {
			continue
		}
		b := d.blob()
		if d.err != nil {
			return nil, d.err
		}
		numeric := s.signals[i].Kind == SignalNumeric
		switch {
		case tag == tagSketch && numeric:
			sk, err := decodeSketch(b)
			if err != nil {
				return nil, fmt.Errorf("signal %s: %w", s.signals[i].Name, err)
			}
			if sk.K() != s.cfg.SketchK {
				return nil, corrupt("signal %s: sketch k %d, schema %d", s.signals[i].Name, sk.K(), s.cfg.SketchK)
			}
			w.sketches[i] = sk
		case tag == tagTable && !numeric:
			t := &FreqTable{}
			if err := t.decode(b); err != nil {
				return nil, fmt.Errorf("signal %s: %w", s.signals[i].Name, err)
			}
			if t.Capacity() != s.cfg.TableCapacity {
				return nil, corrupt("signal %s: table capacity %d, schema %d", s.signals[i].Name, t.Capacity(), s.cfg.TableCapacity)
			}
			w.tables[i] = t
		default:
			return nil, corrupt("signal %s: summary tag %d does not fit kind %s", s.signals[i].Name, tag, s.signals[i].Kind)
		}
	}
	nusers := int(d.u32())
	if d.err != nil {
		return nil, d.err
	}
	if nusers > s.cfg.Window.MaxUsers || nusers > len(d.b)/26 || (w.closed && nusers > 0) {
		return nil, corrupt("%d users", nusers)
	}
	if nusers > 0 {
		w.users = make(map[string]int32, nusers)
		w.agg = make([]userAgg, 0, nusers)
	}
	for j := range nusers {
		id := d.str16()
		n, first, last := d.u64(), d.i64(), d.i64()
		if d.err != nil {
			return nil, d.err
		}
		if _, dup := w.users[id]; dup || n == 0 || n > math.MaxInt64 || first > last {
			return nil, corrupt("user %d invalid", j)
		}
		w.users[id] = int32(j)
		w.agg = append(w.agg, userAgg{n: int64(n), first: first, last: last})
	}
	return w, nil
}

// MarshalBinary encodes the partition's whole state (open and untaken
// windows, watermark, counters, the join) in the partition layout above.
func (p *Partition) MarshalBinary() ([]byte, error) {
	var e encoder
	e.b = append(e.b, partitionMagic...)
	e.u8(stateV1)
	e.u64(p.schema.fp)
	if p.hasWM {
		e.u8(1)
	} else {
		e.u8(0)
	}
	e.i64(p.watermark)
	e.i64(p.closedThrough)
	e.i64(p.nextSeq)
	e.i64(p.curRecords)
	e.u64(uint64(p.Late))
	e.u64(uint64(p.JoinEvicted))
	for _, ws := range [][]*Window{p.open, p.ready} {
		e.u32(uint32(len(ws)))
		for _, w := range ws {
			var we encoder
			if err := w.encode(&we); err != nil {
				return nil, err
			}
			e.blob(we.b)
		}
	}
	e.u32(uint32(len(p.reqs)))
	for k := p.fifoHead; k < len(p.fifo); k++ {
		ref := p.fifo[k]
		je := &p.entries[ref.idx]
		if je.seq != ref.seq {
			continue
		}
		if err := e.str16(je.id); err != nil {
			return nil, err
		}
		if err := e.str16(je.user); err != nil {
			return nil, err
		}
		e.i64(je.expiry)
		if je.clicked {
			e.u8(1)
		} else {
			e.u8(0)
		}
		e.u32(uint32(len(je.items)))
		for i, it := range je.items {
			if err := e.str16(it); err != nil {
				return nil, err
			}
			e.f64(je.scores[i])
		}
	}
	return e.b, nil
}

// RestorePartition decodes partition state written by MarshalBinary under
// schema s. State from another schema is ErrSchemaMismatch; the caller
// then starts an empty Partition (and says so in its log).
func RestorePartition(s *Schema, data []byte) (*Partition, error) {
	p, err := restorePartition(s, data)
	if err != nil {
		return nil, fmt.Errorf("drift: restore partition: %w", err)
	}
	return p, nil
}

func restorePartition(s *Schema, data []byte) (*Partition, error) {
	d := &decoder{b: data}
	if m := d.take(4); d.err != nil || string(m) != partitionMagic {
		return nil, corrupt("bad magic")
	}
	if v := d.u8(); v != stateV1 {
		return nil, corrupt("unsupported version %d", v)
	}
	if fp := d.u64(); d.err == nil && fp != s.fp {
		return nil, ErrSchemaMismatch
	}
	p := NewPartition(s)
	hasWM := d.u8()
	p.watermark, p.closedThrough, p.nextSeq, p.curRecords = d.i64(), d.i64(), d.i64(), d.i64()
	late, evicted := d.u64(), d.u64()
	if d.err != nil {
		return nil, d.err
	}
	if hasWM > 1 || (hasWM == 0 && p.watermark != 0) || late > math.MaxInt64 || evicted > math.MaxInt64 {
		return nil, corrupt("header fields out of range")
	}
	p.hasWM, p.Late, p.JoinEvicted = hasWM == 1, int64(late), int64(evicted)
	if p.curRecords < 0 || p.nextSeq < 0 || (p.countMode() && p.curRecords >= s.cfg.Window.Events) {
		return nil, corrupt("window position out of range")
	}
	for pass := range 2 {
		n := int(d.u32())
		if d.err != nil {
			return nil, d.err
		}
		if n > len(d.b)/8 {
			return nil, corrupt("%d windows in %d bytes", n, len(d.b))
		}
		var prev *Window
		for range n {
			b := d.blob()
			if d.err != nil {
				return nil, d.err
			}
			wd := &decoder{b: b}
			w, err := decodeWindow(s, wd)
			if err == nil && len(wd.b) != 0 {
				err = corrupt("%d trailing bytes in window", len(wd.b))
			}
			if err != nil {
				return nil, err
			}
			if w.closed != (pass == 1) || w.Partitions != 1 || w.countMd != p.countMode() {
				return nil, corrupt("window %d in the wrong list", w.Index)
			}
			if prev != nil && w.Index <= prev.Index {
				return nil, corrupt("windows out of order")
			}
			if pass == 0 && w.Index <= p.closedThrough {
				return nil, corrupt("open window %d at or before closed-through %d", w.Index, p.closedThrough)
			}
			prev = w
			if pass == 0 {
				p.open = append(p.open, w)
			} else {
				p.ready = append(p.ready, w)
			}
		}
	}
	if p.countMode() && len(p.open) > 1 {
		return nil, corrupt("%d open count windows", len(p.open))
	}
	nheld := int(d.u32())
	if d.err != nil {
		return nil, d.err
	}
	if nheld > s.cfg.Window.MaxRequests || nheld > len(d.b)/17 {
		return nil, corrupt("%d held lists", nheld)
	}
	if nheld > 0 {
		p.reqs = make(map[string]int32, nheld)
		p.lastList = make(map[string]int32)
	}
	for j := range nheld {
		id, user := d.str16(), d.str16()
		expiry := d.i64()
		clicked := d.u8()
		nitems := int(d.u32())
		if d.err != nil {
			return nil, d.err
		}
		if id == "" || user == "" || clicked > 1 || nitems > MaxServedItems || nitems > len(d.b)/10 {
			return nil, corrupt("held list %d invalid", j)
		}
		if _, dup := p.reqs[id]; dup {
			return nil, corrupt("held list %d repeats a request id", j)
		}
		e := joinEntry{id: id, user: user, expiry: expiry, clicked: clicked == 1}
		for range nitems {
			e.items = append(e.items, d.str16())
			sc := d.f64()
			if math.IsNaN(sc) || math.IsInf(sc, 0) {
				return nil, corrupt("held list %d: score not finite", j)
			}
			e.scores = append(e.scores, sc)
		}
		if d.err != nil {
			return nil, d.err
		}
		p.seq++
		e.seq = p.seq
		p.entries = append(p.entries, e)
		p.reqs[id] = int32(j)
		p.lastList[user] = int32(j)
		p.fifo = append(p.fifo, fifoRef{idx: int32(j), seq: e.seq})
	}
	if len(d.b) != 0 {
		return nil, corrupt("%d trailing bytes", len(d.b))
	}
	return p, nil
}
