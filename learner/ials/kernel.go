package ials

// The kernels of the solver. Each has a portable Go version here and, in
// builds with GOEXPERIMENT=simd on amd64, an AVX2/FMA version
// (kernel_simd.go) chosen at start-up when the CPU has it and the
// dimension is a multiple of 8 (see kernelsFor).
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

var portableKernels = kernels{name: "go", gather: gatherGo, symv: symvGo, gramAdd: gramAddGo, dot: dotGo,
	lincomb: lincombGo, cgStep: cgStepGo}

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

// dotGo uses four accumulators to break the add dependency chain.
func dotGo(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func lincombGo(out []float32, a float32, x []float32, b float32, y []float32) {
	x, y = x[:len(out)], y[:len(out)]
	for i := range out {
		out[i] = a*x[i] + b*y[i]
	}
}

func cgStepGo(s float32, p, ap, x, r []float32) float32 {
	p, ap, x = p[:len(r)], ap[:len(r)], x[:len(r)]
	var rs float32
	for i := range r {
		x[i] += s * p[i]
		r[i] -= s * ap[i]
		rs += r[i] * r[i]
	}
	return rs
}

func gatherGo(y []float32, d int, idx []int32, conf, target, v, out []float32, residual bool) {
	v, out = v[:d], out[:d]
	for j, it := range idx {
		row := y[int(it)*d : int(it)*d+d]
		s := dotGo(row, v)
		if residual {
			t := float32(1)
			if target != nil {
				t = target[j]
			}
			s = t - s
		}
		s *= conf[j]
		for k := range out {
			out[k] += s * row[k]
		}
	}
}

// symvGo computes out = Σ_b x[b]·G[b,:], which for a symmetric G is G·x
// and streams G's rows instead of reducing each one.
func symvGo(g []float32, d int, x, out []float32) {
	out = out[:d]
	clear(out)
	for b, xb := range x[:d] {
		row := g[b*d : b*d+d]
		for k := range out {
			out[k] += xb * row[k]
		}
	}
}

func gramAddGo(y []float32, d int, g []float32) {
	g = g[:d*d]
	for r := 0; r+d <= len(y); r += d {
		row := y[r : r+d]
		for a, ya := range row {
			if ya == 0 {
				continue
			}
			ga := g[a*d : a*d+d]
			for k := range ga {
				ga[k] += ya * row[k]
			}
		}
	}
}
