package drift

import (
	"fmt"
	"math"
	"slices"
)

// Merger combines the closed windows of several partitions into one window
// per index. Window k is complete when every partition's ClosedThrough has
// reached k: then no partition can add to it, including partitions that
// had no records in it (so an idle partition must Advance its watermark).
// Windows are emitted in index order; an index no partition had records in
// produces no window.
//
// A Merger is not safe for concurrent use.
type Merger struct {
	schema  *Schema
	through map[int32]int64
	pending map[int64]*Window
	next    int64 // lowest index not yet emitted
	// Late counts partition windows that arrived for an index already
	// emitted (a partition reassigned with stale state); they are dropped.
	Late int64
}

// NewMerger returns a merger expecting windows from the given partitions.
func NewMerger(s *Schema, partitions []int32) *Merger {
	m := &Merger{schema: s, through: map[int32]int64{}, pending: map[int64]*Window{}, next: math.MinInt64}
	for _, p := range partitions {
		m.through[p] = math.MinInt64
	}
	return m
}

// Add takes the windows a partition closed (from TakeClosed) and its
// ClosedThrough, and returns the merged windows that became complete.
func (m *Merger) Add(partition int32, closed []*Window, through int64) ([]*Window, error) {
	if _, ok := m.through[partition]; !ok {
		return nil, fmt.Errorf("drift: merger: partition %d not assigned", partition)
	}
	for _, w := range closed {
		if w.schema.fp != m.schema.fp {
			return nil, fmt.Errorf("drift: merger: %w", ErrSchemaMismatch)
		}
		if w.Index < m.next {
			m.Late++
			continue
		}
		if acc, ok := m.pending[w.Index]; ok {
			if err := acc.Merge(w); err != nil {
				return nil, err
			}
		} else {
			m.pending[w.Index] = w
		}
	}
	m.through[partition] = max(m.through[partition], through)
	return m.complete(), nil
}

func (m *Merger) complete() []*Window {
	low := int64(math.MaxInt64)
	for _, t := range m.through {
		low = min(low, t)
	}
	if low == math.MinInt64 {
		return nil
	}
	var idx []int64
	for k := range m.pending {
		if k <= low {
			idx = append(idx, k)
		}
	}
	slices.Sort(idx)
	out := make([]*Window, 0, len(idx))
	for _, k := range idx {
		out = append(out, m.pending[k])
		delete(m.pending, k)
	}
	m.next = max(m.next, low+1)
	return out
}

// Pending returns how many incomplete merged windows are held.
func (m *Merger) Pending() int { return len(m.pending) }

// Merger state binary layout, version 1:
//
//	"EDMG" | ver u8 | fingerprint u64 | next i64 | late u64
//	| partitions u32 × (partition i32, closed-through i64), ascending
//	| pending u32 × (len u32, window), ascending index
const mergerMagic = "EDMG"

// MarshalBinary encodes the merger's state: the partial windows and every
// partition's progress.
func (m *Merger) MarshalBinary() ([]byte, error) {
	var e encoder
	e.b = append(e.b, mergerMagic...)
	e.u8(stateV1)
	e.u64(m.schema.fp)
	e.i64(m.next)
	e.u64(uint64(m.Late))
	parts := make([]int32, 0, len(m.through))
	for p := range m.through {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	e.u32(uint32(len(parts)))
	for _, p := range parts {
		e.u32(uint32(p))
		e.i64(m.through[p])
	}
	idx := make([]int64, 0, len(m.pending))
	for k := range m.pending {
		idx = append(idx, k)
	}
	slices.Sort(idx)
	e.u32(uint32(len(idx)))
	for _, k := range idx {
		var we encoder
		if err := m.pending[k].encode(&we); err != nil {
			return nil, err
		}
		e.blob(we.b)
	}
	return e.b, nil
}

// RestoreMerger decodes merger state written by MarshalBinary under s.
func RestoreMerger(s *Schema, data []byte) (*Merger, error) {
	m, err := restoreMerger(s, data)
	if err != nil {
		return nil, fmt.Errorf("drift: restore merger: %w", err)
	}
	return m, nil
}

func restoreMerger(s *Schema, data []byte) (*Merger, error) {
	d := &decoder{b: data}
	if mg := d.take(4); d.err != nil || string(mg) != mergerMagic {
		return nil, corrupt("bad magic")
	}
	if v := d.u8(); v != stateV1 {
		return nil, corrupt("unsupported version %d", v)
	}
	if fp := d.u64(); d.err == nil && fp != s.fp {
		return nil, ErrSchemaMismatch
	}
	m := NewMerger(s, nil)
	m.next = d.i64()
	late := d.u64()
	np := int(d.u32())
	if d.err != nil {
		return nil, d.err
	}
	if late > math.MaxInt64 || np > len(d.b)/12 || np > maxPartitionsMerged {
		return nil, corrupt("merger header out of range")
	}
	m.Late = int64(late)
	prev := int64(math.MinInt64)
	for range np {
		p := int32(d.u32())
		t := d.i64()
		if d.err != nil {
			return nil, d.err
		}
		if int64(p) <= prev {
			return nil, corrupt("partitions out of order")
		}
		prev = int64(p)
		m.through[p] = t
	}
	nw := int(d.u32())
	if d.err != nil {
		return nil, d.err
	}
	if nw > len(d.b)/4 {
		return nil, corrupt("%d pending windows", nw)
	}
	prevIdx := int64(math.MinInt64)
	for k := range nw {
		b := d.blob()
		if d.err != nil {
			return nil, d.err
		}
		wd := &decoder{b: b}
		w, err := decodeWindow(s, wd)
		if err == nil && len(wd.b) != 0 {
			err = corrupt("trailing bytes in pending window")
		}
		if err != nil {
			return nil, err
		}
		if !w.closed || (k > 0 && w.Index <= prevIdx) || w.Index < m.next {
			return nil, corrupt("pending window %d invalid", w.Index)
		}
		prevIdx = w.Index
		m.pending[w.Index] = w
	}
	if len(d.b) != 0 {
		return nil, corrupt("%d trailing bytes", len(d.b))
	}
	return m, nil
}
