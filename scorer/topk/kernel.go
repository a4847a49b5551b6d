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
func UsePortableKernel() { kernelImpl, kernelName = scoreBlockGo, "go" }

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
