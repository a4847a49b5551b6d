package topk

import (
	"fmt"
	"math"
)

// BlockWidth is the number of items scored together by the kernel.
const BlockWidth = 16

// Matrix holds item vectors and biases in the kernel's blocked layout. The
// score of item i for query q is Bias(i) + q·Vec(i). A Matrix is not safe
// for concurrent mutation; the caller serialises writers against readers.
type Matrix struct {
	dim  int
	n    int
	data []float32 // len = blocks·BlockWidth·dim
	bias []float32 // len = blocks·BlockWidth; -Inf marks an empty slot
}

// NewMatrix returns an empty matrix of dimension dim with room for capacity
// items.
func NewMatrix(dim, capacity int) (*Matrix, error) {
	if dim < 1 || dim > 4096 {
		return nil, fmt.Errorf("topk: dim %d: want 1–4096", dim)
	}
	m := &Matrix{dim: dim}
	m.reserve(capacity)
	return m, nil
}

// Dim returns the vector dimension.
func (m *Matrix) Dim() int { return m.dim }

// Len returns the number of item slots (one past the highest index set).
func (m *Matrix) Len() int { return m.n }

// Bytes returns the memory held by the vectors and biases.
func (m *Matrix) Bytes() int { return 4 * (cap(m.data) + cap(m.bias)) }

func (m *Matrix) blocks() int { return (m.n + BlockWidth - 1) / BlockWidth }

// reserve makes room for n items, growing by 5/4 so that appends are
// amortised O(1) while the slack stays within DESIGN.md's 1.3× of the raw
// vector bytes.
func (m *Matrix) reserve(n int) {
	blocks := (n + BlockWidth - 1) / BlockWidth
	if blocks*BlockWidth <= len(m.bias) {
		return
	}
	if c := len(m.bias) / BlockWidth * 5 / 4; c > blocks {
		blocks = c
	}
	data := make([]float32, blocks*BlockWidth*m.dim)
	copy(data, m.data)
	bias := make([]float32, blocks*BlockWidth)
	copy(bias, m.bias)
	for i := len(m.bias); i < len(bias); i++ {
		bias[i] = float32(math.Inf(-1))
	}
	m.data, m.bias = data, bias
}

// Set stores item i's vector and bias, growing the matrix when i ≥ Len.
// Slots between the old Len and i stay empty (never returned by a search).
func (m *Matrix) Set(i int, vec []float32, bias float32) error {
	if len(vec) != m.dim {
		return fmt.Errorf("topk: item %d has dim %d, matrix has %d", i, len(vec), m.dim)
	}
	if i < 0 || i >= math.MaxInt32 {
		return fmt.Errorf("topk: item index %d out of range", i)
	}
	if math.IsNaN(float64(bias)) || math.IsInf(float64(bias), 0) {
		return fmt.Errorf("topk: item %d: bias %v not finite", i, bias)
	}
	if i >= m.n {
		m.reserve(i + 1)
		m.n = i + 1
	}
	base := (i/BlockWidth)*BlockWidth*m.dim + i%BlockWidth
	for d, x := range vec {
		m.data[base+d*BlockWidth] = x
	}
	m.bias[i] = bias
	return nil
}

// Clear empties slot i (a deleted item): searches skip it.
func (m *Matrix) Clear(i int) {
	if i < 0 || i >= m.n {
		return
	}
	base := (i/BlockWidth)*BlockWidth*m.dim + i%BlockWidth
	for d := range m.dim {
		m.data[base+d*BlockWidth] = 0
	}
	m.bias[i] = float32(math.Inf(-1))
}

// Live reports whether slot i holds an item.
func (m *Matrix) Live(i int) bool {
	return i >= 0 && i < m.n && !math.IsInf(float64(m.bias[i]), -1)
}

// Row copies item i's vector into dst (grown as needed) and returns it with
// the bias.
func (m *Matrix) Row(i int, dst []float32) ([]float32, float32) {
	dst = dst[:0]
	if i < 0 || i >= m.n {
		return dst, 0
	}
	base := (i/BlockWidth)*BlockWidth*m.dim + i%BlockWidth
	for d := range m.dim {
		dst = append(dst, m.data[base+d*BlockWidth])
	}
	return dst, m.bias[i]
}

// Score returns Bias(i) + q·Vec(i) with a plain loop (for re-scoring and
// explanations).
func (m *Matrix) Score(i int, q []float32) float32 {
	if i < 0 || i >= m.n || len(q) != m.dim {
		return float32(math.Inf(-1))
	}
	base := (i/BlockWidth)*BlockWidth*m.dim + i%BlockWidth
	var s float32
	for d, x := range q {
		s += x * m.data[base+d*BlockWidth]
	}
	return s + m.bias[i]
}
