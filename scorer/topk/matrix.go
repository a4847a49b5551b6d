package topk

import (
	"fmt"
	"math"
	"unsafe"
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

	// q8 is the optional int8 copy of the vectors that the Quantized
	// index scans (nil unless one was created over this matrix): per block,
	// q8Groups(dim) groups of 64 bytes, byte 4j+t of group g holding item
	// j's dimension 4g+t as round(x/scale)+64 ∈ [1, 127] (see quantizeItem),
	// and q8scale the per-item scale (0 for an empty slot).
	q8      []uint8
	q8scale []float32
	// rowMajor lays data out item by item (item i at i·dim) instead of in
	// blocks: the Quantized index scans only q8 and reads float32 rows
	// just to re-score its candidates, which in the blocked layout would
	// touch 64 cache lines per item. The Exact index needs blocks.
	rowMajor bool
}

// at returns where item i's vector starts in data and the distance between
// its consecutive elements.
func (m *Matrix) at(i int) (base, stride int) {
	if m.rowMajor {
		return i * m.dim, 1
	}
	return (i/BlockWidth)*BlockWidth*m.dim + i%BlockWidth, BlockWidth
}

// setLayout re-lays the vectors out blocked or row-major.
func (m *Matrix) setLayout(rowMajor bool) {
	if m.rowMajor == rowMajor {
		return
	}
	data := make([]float32, len(m.data))
	adviseHugePages(unsafe.Pointer(unsafe.SliceData(data)), 4*len(data))
	for i := range len(m.bias) {
		src, ss := m.at(i)
		m.rowMajor = rowMajor
		dst, ds := m.at(i)
		m.rowMajor = !rowMajor
		for d := range m.dim {
			data[dst+d*ds] = m.data[src+d*ss]
		}
	}
	m.data, m.rowMajor = data, rowMajor
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

// Clone returns a deep copy of m (vectors, biases and the int8 copy, in the
// same layout), sharing no memory with it: a snapshot that later Set and
// Clear calls on m do not reach. The caller serialises it against writers
// of m (e.g. inside the index's View).
func (m *Matrix) Clone() *Matrix {
	c := *m
	c.data = cloneAdvised(m.data)
	c.bias = append([]float32(nil), m.bias...)
	if m.q8 != nil {
		c.q8 = cloneAdvised(m.q8)
		c.q8scale = append([]float32(nil), m.q8scale...)
	}
	return &c
}

// cloneAdvised copies one of the large arrays (float32 vectors, their
// int8 copy) into memory advised for huge pages, as reserve allocates them.
func cloneAdvised[T float32 | uint8](src []T) []T {
	dst := make([]T, len(src))
	if len(dst) > 0 {
		adviseHugePages(unsafe.Pointer(unsafe.SliceData(dst)), int(unsafe.Sizeof(dst[0]))*len(dst))
	}
	copy(dst, src)
	return dst
}

// Len returns the number of item slots (one past the highest index set).
func (m *Matrix) Len() int { return m.n }

// Bytes returns the memory held by the vectors and biases (and by the
// int8 copy when a Quantized index uses this matrix).
func (m *Matrix) Bytes() int { return 4*(cap(m.data)+cap(m.bias)+cap(m.q8scale)) + cap(m.q8) }

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
	adviseHugePages(unsafe.Pointer(unsafe.SliceData(data)), 4*len(data))
	copy(data, m.data)
	bias := make([]float32, blocks*BlockWidth)
	copy(bias, m.bias)
	for i := len(m.bias); i < len(bias); i++ {
		bias[i] = float32(math.Inf(-1))
	}
	if m.q8 != nil {
		q8 := make([]uint8, blocks*q8BlockBytes(m.dim))
		adviseHugePages(unsafe.Pointer(unsafe.SliceData(q8)), len(q8))
		copy(q8, m.q8)
		for i := len(m.q8); i < len(q8); i++ {
			q8[i] = q8Zero
		}
		scale := make([]float32, blocks*BlockWidth)
		copy(scale, m.q8scale)
		m.q8, m.q8scale = q8, scale
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
	base, stride := m.at(i)
	for d, x := range vec {
		m.data[base+d*stride] = x
	}
	m.bias[i] = bias
	if m.q8 != nil {
		m.quantizeItem(i, vec)
	}
	return nil
}

// Clear empties slot i (a deleted item): searches skip it.
func (m *Matrix) Clear(i int) {
	if i < 0 || i >= m.n {
		return
	}
	base, stride := m.at(i)
	for d := range m.dim {
		m.data[base+d*stride] = 0
	}
	m.bias[i] = float32(math.Inf(-1))
	if m.q8 != nil {
		m.quantizeItem(i, nil)
	}
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
	base, stride := m.at(i)
	for d := range m.dim {
		dst = append(dst, m.data[base+d*stride])
	}
	return dst, m.bias[i]
}

// Score returns Bias(i) + q·Vec(i) with a plain loop (for re-scoring and
// explanations).
func (m *Matrix) Score(i int, q []float32) float32 {
	if i < 0 || i >= m.n || len(q) != m.dim {
		return float32(math.Inf(-1))
	}
	base, stride := m.at(i)
	var s float32
	if stride == 1 {
		return rowDot(q, m.data[base:base+len(q)]) + m.bias[i]
	}
	for d, x := range q {
		s += x * m.data[base+d*stride]
	}
	return s + m.bias[i]
}

// Int8 layout constants: items are stored with 63 levels each side of
// zero plus an offset of 64, so that a pair of item bytes (≤ 127) times a
// pair of query int8s (|·| ≤ 127) sums to at most 2·127·127 = 32258 and
// never saturates the int16 of VPMADDUBSW, the instruction the SIMD int8
// kernel is built on.
const (
	q8ItemLevels  = 63
	q8QueryLevels = 127
	q8Zero        = 64
)

// q8Groups is the number of 4-dimension groups of a dim-vector (the last
// padded with zeros).
func q8Groups(dim int) int { return (dim + 3) / 4 }

// q8BlockBytes is the size of one block of the int8 copy.
func q8BlockBytes(dim int) int { return q8Groups(dim) * 4 * BlockWidth }

// enableInt8 builds the int8 copy from the current vectors; from now on
// Set and Clear keep it up to date.
func (m *Matrix) enableInt8() {
	if m.q8 != nil {
		return
	}
	blocks := len(m.bias) / BlockWidth
	m.q8 = make([]uint8, blocks*q8BlockBytes(m.dim))
	adviseHugePages(unsafe.Pointer(unsafe.SliceData(m.q8)), len(m.q8))
	for i := range m.q8 {
		m.q8[i] = q8Zero
	}
	m.q8scale = make([]float32, blocks*BlockWidth)
	var row []float32
	for i := range m.n {
		if m.Live(i) {
			row, _ = m.Row(i, row)
			m.quantizeItem(i, row)
		}
	}
}

// quantizeItem stores item i's int8 copy (vec nil: an empty slot).
func (m *Matrix) quantizeItem(i int, vec []float32) {
	var amax float32
	for _, x := range vec {
		amax = max(amax, float32(math.Abs(float64(x))))
	}
	scale := amax / q8ItemLevels
	inv := float32(0)
	if scale > 0 {
		inv = 1 / scale
	}
	blk := m.q8[(i/BlockWidth)*q8BlockBytes(m.dim):]
	j := i % BlockWidth
	for d := range q8Groups(m.dim) * 4 {
		v := 0
		if d < len(vec) {
			v = int(math.Round(float64(vec[d] * inv)))
			v = max(-q8ItemLevels, min(q8ItemLevels, v))
		}
		blk[(d/4)*4*BlockWidth+4*j+d%4] = uint8(v + q8Zero)
	}
	m.q8scale[i] = scale
}

// dot is Σ a[d]·b[d] with four partial sums, so that the adds of a long
// vector do not wait on each other (the Quantized index re-scores hundreds
// of rows per query with it).
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	d := 0
	for ; d+4 <= len(a); d += 4 {
		s0 += a[d] * b[d]
		s1 += a[d+1] * b[d+1]
		s2 += a[d+2] * b[d+2]
		s3 += a[d+3] * b[d+3]
	}
	for ; d < len(a); d++ {
		s0 += a[d] * b[d]
	}
	return (s0 + s1) + (s2 + s3)
}

// scoreRows sets rs[c].Score to the exact score of item rs[c].Index for
// query q, in a row-major matrix; scores equal Score's.
func (m *Matrix) scoreRows(q []float32, rs []Result) {
	dim := m.dim
	touchRows(m.data, dim, rs)
	for c, r := range rs {
		rs[c].Score = rowDot(q, m.data[int(r.Index)*dim:][:dim]) + m.bias[r.Index]
	}
}

// touchRows loads one float of every cache line of the rows of rs. The
// loads do not depend on each other and the loop does nothing else, so the
// CPU keeps dozens of them in flight, where the dot products, with their
// arithmetic between loads, keep only a few: it fetches the scattered rows
// about as fast as the memory system allows, and the dot products then
// read them from cache. It returns the sum so that the loads are kept;
// not inlined for the same reason.
//
//go:noinline
func touchRows(data []float32, dim int, rs []Result) float32 {
	var sink float32
	for _, r := range rs {
		row := data[int(r.Index)*dim:][:dim]
		for d := 0; d < dim; d += 16 {
			sink += row[d]
		}
	}
	return sink
}
