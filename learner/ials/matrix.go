package ials

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Entry is one observation: user Row interacted with item Col; Label 1 is
// a positive, 0 a negative, and Weight (> 0) its confidence.
type Entry struct {
	Row, Col      int32
	Label, Weight float32
}

// Matrix is the training data in both orientations: ByUser holds each
// user's items, ByItem each item's users. Build it with NewMatrix.
type Matrix struct {
	Users, Items int
	ByUser       CSR
	ByItem       CSR
	// Merged counts the entries folded into an existing pair.
	Merged int
}

// CSR is one orientation of the matrix in compressed sparse rows: the
// entries of row r are Idx[Ptr[r]:Ptr[r+1]] (sorted) with confidences
// Conf and targets Target over the same range. Target is nil when every
// target is 1, which saves a quarter of the memory on click data.
type CSR struct {
	Ptr    []int32
	Idx    []int32
	Conf   []float32
	Target []float32
}

// Len returns the number of entries of row r.
func (m *CSR) Len(r int) int { return int(m.Ptr[r+1] - m.Ptr[r]) }

// NNZ returns the number of stored pairs.
func (m *Matrix) NNZ() int { return len(m.ByUser.Idx) }

// Bytes returns the memory the matrix holds.
func (m *Matrix) Bytes() int64 {
	f := func(c *CSR) int64 {
		return 4 * int64(len(c.Ptr)+len(c.Idx)+len(c.Conf)+len(c.Target))
	}
	return f(&m.ByUser) + f(&m.ByItem)
}

// ErrEmpty is returned for a matrix without a single positive pair.
var ErrEmpty = errors.New("ials: no positive interactions to train on")

// NewMatrix builds the matrix of users × items from entries (which it
// reorders). Entries on the same pair merge: their confidences add up and
// their target is the confidence-weighted mean of their labels. Entries
// with a weight ≤ 0 carry no signal and are dropped; indices out of range,
// labels outside [0, 1] and non-finite weights are errors.
func NewMatrix(users, items int, entries []Entry) (*Matrix, error) {
	if users < 1 || items < 1 || users > math.MaxInt32 || items > math.MaxInt32 {
		return nil, fmt.Errorf("ials: matrix of %d users × %d items: want at least one of each", users, items)
	}
	if len(entries) >= math.MaxInt32 {
		return nil, fmt.Errorf("ials: %d entries: at most %d", len(entries), math.MaxInt32-1)
	}
	kept := entries[:0]
	for _, e := range entries {
		switch {
		case e.Row < 0 || int(e.Row) >= users || e.Col < 0 || int(e.Col) >= items:
			return nil, fmt.Errorf("ials: entry (%d, %d) outside %d × %d", e.Row, e.Col, users, items)
		case !(e.Label >= 0 && e.Label <= 1):
			return nil, fmt.Errorf("ials: entry (%d, %d): label %v outside [0, 1]", e.Row, e.Col, e.Label)
		case math.IsNaN(float64(e.Weight)) || math.IsInf(float64(e.Weight), 0):
			return nil, fmt.Errorf("ials: entry (%d, %d): weight %v is not finite", e.Row, e.Col, e.Weight)
		case e.Weight > 0:
			kept = append(kept, e)
		}
	}
	// Sort by (row, col) with a counting sort on rows, then per row.
	ptr := make([]int32, users+1)
	for _, e := range kept {
		ptr[e.Row+1]++
	}
	for r := range users {
		ptr[r+1] += ptr[r]
	}
	sorted := make([]Entry, len(kept))
	next := slices.Clone(ptr[:users])
	for _, e := range kept {
		sorted[next[e.Row]] = e
		next[e.Row]++
	}
	m := &Matrix{Users: users, Items: items}
	bu := &m.ByUser
	bu.Ptr = make([]int32, users+1)
	bu.Idx = make([]int32, 0, len(sorted))
	bu.Conf = make([]float32, 0, len(sorted))
	targets := make([]float32, 0, len(sorted))
	allOne := true
	positive := false
	for r := range users {
		row := sorted[ptr[r]:ptr[r+1]]
		slices.SortStableFunc(row, func(a, b Entry) int { return int(a.Col) - int(b.Col) })
		for j := 0; j < len(row); {
			c, sumW, sumWY := row[j].Col, float64(0), float64(0)
			k := j
			for ; k < len(row) && row[k].Col == c; k++ {
				sumW += float64(row[k].Weight)
				sumWY += float64(row[k].Weight) * float64(row[k].Label)
			}
			m.Merged += k - j - 1
			j = k
			t := float32(sumWY / sumW)
			if t != 1 {
				allOne = false
			}
			if t > 0 {
				positive = true
			}
			bu.Idx = append(bu.Idx, c)
			bu.Conf = append(bu.Conf, float32(sumW))
			targets = append(targets, t)
		}
		bu.Ptr[r+1] = int32(len(bu.Idx))
	}
	if !positive {
		return nil, ErrEmpty
	}
	if !allOne {
		bu.Target = targets
	}
	m.ByItem = transpose(bu, items)
	return m, nil
}

// transpose returns the other orientation of a (rows sorted by index).
func transpose(a *CSR, cols int) CSR {
	nnz := len(a.Idx)
	t := CSR{Ptr: make([]int32, cols+1), Idx: make([]int32, nnz), Conf: make([]float32, nnz)}
	if a.Target != nil {
		t.Target = make([]float32, nnz)
	}
	for _, c := range a.Idx {
		t.Ptr[c+1]++
	}
	for c := range cols {
		t.Ptr[c+1] += t.Ptr[c]
	}
	next := slices.Clone(t.Ptr[:cols])
	rows := len(a.Ptr) - 1
	for r := range rows {
		for k := a.Ptr[r]; k < a.Ptr[r+1]; k++ {
			c := a.Idx[k]
			p := next[c]
			next[c]++
			t.Idx[p] = int32(r)
			t.Conf[p] = a.Conf[k]
			if a.Target != nil {
				t.Target[p] = a.Target[k]
			}
		}
	}
	return t
}
