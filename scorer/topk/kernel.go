package topk

// blockKernel scores one block of BlockWidth items for nq = len(thr)
// queries:
//
//	out[q·BlockWidth+j] = bias[j] + Σ_d qs[q·dim+d] · blk[d·BlockWidth+j]
//	mask[q] bit j set  ⇔  out[q·BlockWidth+j] > thr[q]
//
// Preconditions (checked by the callers, not here, because this is the
// innermost loop): len(blk) ≥ dim·BlockWidth, len(bias) ≥ BlockWidth,
// len(qs) ≥ nq·dim, len(out) ≥ nq·BlockWidth, len(mask) ≥ nq.
type blockKernel func(blk, bias []float32, dim int, qs, thr, out []float32, mask []uint16)

// kernelImpl is the kernel chosen for this build and CPU; kernelName says
// which (reported by benchmarks and the scorer's startup log).
var (
	kernelImpl blockKernel = scoreBlockGo
	kernelName             = "go"
)

// KernelName names the block kernel in use: "avx512", "avx2" or "go".
func KernelName() string { return kernelName }

// UsePortableKernel switches to the portable Go kernel (for measurements
// and tests); it must be called before any search runs.
func UsePortableKernel() {
	kernelImpl, kernelName = scoreBlockGo, "go"
	q8KernelImpl, q8KernelName = scanQ8Go, "go"
	rowDot = dot
}

// scoreBlockGo is the portable kernel.
func scoreBlockGo(blk, bias []float32, dim int, qs, thr, out []float32, mask []uint16) {
	blk = blk[:dim*BlockWidth]
	b := (*[BlockWidth]float32)(bias)
	for q, t := range thr {
		qv := qs[q*dim : q*dim+dim]
		acc := *b
		for d, x := range qv {
			row := (*[BlockWidth]float32)(blk[d*BlockWidth:])
			for j := range acc {
				acc[j] += x * row[j]
			}
		}
		var m uint16
		for j, s := range acc {
			if s > t {
				m |= 1 << j
			}
		}
		*(*[BlockWidth]float32)(out[q*BlockWidth:]) = acc
		mask[q] = m
	}
}

// q8Kernel scans blocks [b0, b1) of the int8 copy (data, scale and bias
// of the whole matrix) for nq = len(thr) quantised queries (see
// quantizeQuery) and stops at the first block in which some query has an
// item above its threshold. It returns [start, end): the blocks whose
// scores and masks it leaves in out and mask (block start+s at rows s·nq+q,
// start ≥ b0; no block in [b0, start) had a candidate). start = end = b1
// when nothing was found. With groups·4 padded dimensions and w = b·16:
//
//	acc[q][j]             = Σ_d data[b·groups·64 + (d/4)·64 + 4j + d%4] · qs[q·groups·4 + d]   (exact, int32)
//	out[(s·nq+q)·16 + j]  = (acc[q][j] − corr[q]) · scale[w+j] · qscale[q] + bias[w+j]
//	mask[s·nq+q] bit j set  ⇔  out[(s·nq+q)·16 + j] > thr[q]
//
// corr[q] = 64·Σ_d qs[q][d] removes the items' offset. The integer sum is
// exact, so a query's scores do not depend on the other queries of the
// pass. Scanning on inside the kernel until something is found matters:
// after the first few thousand items almost no block holds a candidate,
// and returning to Go for every block cost as much as scoring it. A kernel
// that scores several blocks per step returns them all (end − start ≤
// q8Span(nq)) rather than throw the later ones away; their masks used the
// thresholds of the step, and the caller's collector re-checks.
// Preconditions (checked by the caller): b1 ≤ the blocks data holds,
// len(qs) ≥ nq·groups·4, len(out) and len(acc) ≥ q8Rows·16, len(mask) ≥
// q8Rows, len(corr) and len(qscale) ≥ nq.
type q8Kernel func(data []uint8, scale, bias []float32, groups, b0, b1 int, qs []int8, corr []int32, qscale, thr, out []float32, mask []uint16, acc []int32) (start, end int)

// q8Rows bounds the (block, query) rows a kernel step leaves in out.
const q8Rows = maxBatch

// q8Span is how many blocks a multi-block kernel step scores for nq
// queries: up to 8 (amortising a call), fewer for many queries, where
// almost every block holds some query's candidate anyway.
func q8Span(nq int) int { return max(1, min(8, q8Rows/4/max(nq, 1))) }

// rowDot is a·b for the Quantized index's exact re-score of row-major
// rows (and Matrix.Score on such a matrix, so that both give the same
// bits): dot, or a SIMD version where the build and CPU have one.
var rowDot = dot

var (
	q8KernelImpl q8Kernel = scanQ8Go
	q8KernelName          = "go"
)

// scanQ8Go is the portable int8 kernel.
func scanQ8Go(data []uint8, scale, bias []float32, groups, b0, b1 int, qs []int8, corr []int32, qscale, thr, out []float32, mask []uint16, _ []int32) (int, int) {
	n := groups * 4
	bb := n * BlockWidth
	for b := b0; b < b1; b++ {
		blk := data[b*bb : (b+1)*bb]
		w := b * BlockWidth
		var hit uint16
		for q, t := range thr {
			qv := qs[q*n : q*n+n]
			var acc [BlockWidth]int32
			for g := range groups {
				row := (*[4 * BlockWidth]uint8)(blk[g*4*BlockWidth:])
				q0, q1, q2, q3 := int32(qv[4*g]), int32(qv[4*g+1]), int32(qv[4*g+2]), int32(qv[4*g+3])
				for j := range acc {
					acc[j] += int32(row[4*j])*q0 + int32(row[4*j+1])*q1 + int32(row[4*j+2])*q2 + int32(row[4*j+3])*q3
				}
			}
			var m uint16
			for j, a := range acc {
				s := float32(a-corr[q])*scale[w+j]*qscale[q] + bias[w+j]
				out[q*BlockWidth+j] = s
				if s > t {
					m |= 1 << j
				}
			}
			mask[q] = m
			hit |= m
		}
		if hit != 0 {
			return b, b + 1
		}
	}
	return b1, b1
}
