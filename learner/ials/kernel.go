package ials

// The kernels of the solver. Each has a portable version built on gonum's
// BLAS (kernel_gonum.go) and, in builds with GOEXPERIMENT=simd on amd64,
// an AVX2/FMA version (kernel_simd.go) chosen at start-up when the CPU has
// it and the dimension is a multiple of 8 (see kernelsFor).
//
// Preconditions are the caller's (Train checks the matrix once): every
// index in idx addresses a whole row of y, and v, out hold d values.
type kernels struct {
	name string
	// gather adds Σ_j s_j·y[idx[j]] to out, where s_j = conf[j]·⟨y_j, v⟩
	// or, with residual, s_j = conf[j]·(t_j − ⟨y_j, v⟩), t_j = target[j]
	// (1 when target is nil).
	gather func(y []float32, d int, idx []int32, conf, target, v, out []float32, residual bool)
	// symv sets out = G·x for the symmetric d × d matrix g (row-major).
	symv func(g []float32, d int, x, out []float32)
	// gramAdd adds Σ_r y_r y_rᵀ over the rows of y to g.
	gramAdd func(y []float32, d int, g []float32)
	// dot returns ⟨a, b⟩ over d values.
	dot func(a, b []float32) float32
	// lincomb sets out = a·x + b·y (out may be x or y).
	lincomb func(out []float32, a float32, x []float32, b float32, y []float32)
	// cgStep sets x += s·p and r −= s·ap and returns ⟨r, r⟩.
	cgStep func(s float32, p, ap, x, r []float32) float32
}

// simdKernels is set by kernel_simd.go in builds that have them and on
// CPUs that run them.
var simdKernels *kernels

// forcePortable makes kernelsFor return the gonum kernels (tests and
// benchmarks compare them with the SIMD ones).
var forcePortable bool

// kernelsFor returns the fastest kernels that handle dimension d.
func kernelsFor(d int) *kernels {
	if simdKernels != nil && d%8 == 0 && !forcePortable {
		return simdKernels
	}
	return &gonumKernels
}

// KernelName names the kernels Train uses for dimension d: "avx2" or
// "gonum".
func KernelName(d int) string { return kernelsFor(d).name }
