package ials

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// The gonum kernels: level-1 and level-2 BLAS from gonum's blas32, whose
// inner loops are SSE assembly on amd64 (and Go elsewhere). They are what a
// build without GOEXPERIMENT=simd runs, and about 2–3× faster there than
// plain Go loops (BenchmarkKernels).
var gonumKernels = kernels{name: "gonum", gather: gatherGonum, symv: symvGonum, gramAdd: gramAddGonum,
	dot: dotGonum, lincomb: lincombGonum, cgStep: cgStepGonum}

var impl = blas32.Implementation()

func dotGonum(a, b []float32) float32 { return impl.Sdot(len(a), a, 1, b, 1) }

func gatherGonum(y []float32, d int, idx []int32, conf, target, v, out []float32, residual bool) {
	for j, it := range idx {
		row := y[int(it)*d : int(it)*d+d]
		s := impl.Sdot(d, row, 1, v, 1)
		if residual {
			t := float32(1)
			if target != nil {
				t = target[j]
			}
			s = t - s
		}
		impl.Saxpy(d, s*conf[j], row, 1, out, 1)
	}
}

func symvGonum(g []float32, d int, x, out []float32) {
	// G is stored in full, so the general product (rows · x, each an SSE
	// dot) beats Ssymv, which walks one triangle in Go.
	impl.Sgemv(blas.NoTrans, d, d, 1, g, d, x, 1, 0, out, 1)
}

// gramAddGonum adds yᵀy with a rank-k update of the upper triangle, then
// mirrors it: the other kernels read G in full.
func gramAddGonum(y []float32, d int, g []float32) {
	n := len(y) / d
	if n == 0 {
		return
	}
	impl.Ssyrk(blas.Upper, blas.Trans, d, n, 1, y, d, 1, g, d)
	for a := range d {
		for b := a + 1; b < d; b++ {
			g[b*d+a] = g[a*d+b]
		}
	}
}

func lincombGonum(out []float32, a float32, x []float32, b float32, y []float32) {
	d := len(out)
	switch {
	case &out[0] == &y[0]:
		impl.Sscal(d, b, out, 1)
		impl.Saxpy(d, a, x, 1, out, 1)
	case &out[0] == &x[0]:
		impl.Sscal(d, a, out, 1)
		impl.Saxpy(d, b, y, 1, out, 1)
	default:
		copy(out, y[:d])
		impl.Sscal(d, b, out, 1)
		impl.Saxpy(d, a, x, 1, out, 1)
	}
}

func cgStepGonum(s float32, p, ap, x, r []float32) float32 {
	d := len(r)
	impl.Saxpy(d, s, p, 1, x, 1)
	impl.Saxpy(d, -s, ap, 1, r, 1)
	return impl.Sdot(d, r, 1, r, 1)
}
