//go:build goexperiment.simd && amd64

package ials

import (
	"simd/archsimd"
	"unsafe"
)

func init() {
	if archsimd.X86.AVX2() && archsimd.X86.FMA() {
		simdKernels = &kernels{name: "avx2", gather: gather256, symv: symv256, gramAdd: gramAdd256, dot: dot256,
			lincomb: lincomb256, cgStep: cgStep256}
	}
}

func load8(p unsafe.Pointer, off int) archsimd.Float32x8 {
	return archsimd.LoadFloat32x8((*[8]float32)(unsafe.Add(p, off)))
}

func store8(v archsimd.Float32x8, p unsafe.Pointer, off int) {
	v.Store((*[8]float32)(unsafe.Add(p, off)))
}

// hsum8 adds the eight lanes of v.
func hsum8(v archsimd.Float32x8) float32 {
	s := v.GetLo().Add(v.GetHi())
	var a [4]float32
	s.Store(&a)
	return (a[0] + a[1]) + (a[2] + a[3])
}

// dot8 returns ⟨a, b⟩ over d floats (d a multiple of 8) with two
// accumulators, so that consecutive FMAs do not wait on each other.
func dot8(pa, pb unsafe.Pointer, d int) float32 {
	var s0, s1 archsimd.Float32x8
	k := 0
	for ; k+16 <= d; k += 16 {
		s0 = load8(pa, 4*k).MulAdd(load8(pb, 4*k), s0)
		s1 = load8(pa, 4*k+32).MulAdd(load8(pb, 4*k+32), s1)
	}
	if k < d {
		s0 = load8(pa, 4*k).MulAdd(load8(pb, 4*k), s0)
	}
	return hsum8(s0.Add(s1))
}

func dot256(a, b []float32) float32 {
	d := len(a)
	_ = b[d-1]
	return dot8(unsafe.Pointer(unsafe.SliceData(a)), unsafe.Pointer(unsafe.SliceData(b)), d)
}

func gather256(y []float32, d int, idx []int32, conf, target, v, out []float32, residual bool) {
	if len(idx) == 0 {
		return
	}
	_ = v[d-1]
	_ = out[d-1]
	_ = conf[len(idx)-1]
	if target != nil {
		_ = target[len(idx)-1]
	}
	py := unsafe.Pointer(unsafe.SliceData(y))
	pv := unsafe.Pointer(unsafe.SliceData(v))
	po := unsafe.Pointer(unsafe.SliceData(out))
	for j, it := range idx {
		row := unsafe.Add(py, 4*int(it)*d)
		s := dot8(row, pv, d)
		if residual {
			t := float32(1)
			if target != nil {
				t = target[j]
			}
			s = t - s
		}
		sv := archsimd.BroadcastFloat32x8(s * conf[j])
		for k := 0; k < d; k += 8 {
			store8(sv.MulAdd(load8(row, 4*k), load8(po, 4*k)), po, 4*k)
		}
	}
}

// symv256 keeps a block of 32 outputs in four registers while it streams
// G's rows, so G is read once and out written once per block.
func symv256(g []float32, d int, x, out []float32) {
	_ = g[d*d-1]
	_ = x[d-1]
	_ = out[d-1]
	pg := unsafe.Pointer(unsafe.SliceData(g))
	po := unsafe.Pointer(unsafe.SliceData(out))
	c := 0
	for ; c+32 <= d; c += 32 {
		var a0, a1, a2, a3 archsimd.Float32x8
		for b := range d {
			xb := archsimd.BroadcastFloat32x8(x[b])
			row := unsafe.Add(pg, 4*(b*d+c))
			a0 = xb.MulAdd(load8(row, 0), a0)
			a1 = xb.MulAdd(load8(row, 32), a1)
			a2 = xb.MulAdd(load8(row, 64), a2)
			a3 = xb.MulAdd(load8(row, 96), a3)
		}
		store8(a0, po, 4*c)
		store8(a1, po, 4*c+32)
		store8(a2, po, 4*c+64)
		store8(a3, po, 4*c+96)
	}
	for ; c < d; c += 8 {
		var a0 archsimd.Float32x8
		for b := range d {
			a0 = archsimd.BroadcastFloat32x8(x[b]).MulAdd(load8(pg, 4*(b*d+c)), a0)
		}
		store8(a0, po, 4*c)
	}
}

// gramAdd256 adds four rows' outer products per pass over G, so each row
// of G is loaded and stored once for four rows of y.
func gramAdd256(y []float32, d int, g []float32) {
	_ = g[d*d-1]
	pg := unsafe.Pointer(unsafe.SliceData(g))
	n := len(y) / d
	if n == 0 {
		return
	}
	py := unsafe.Pointer(unsafe.SliceData(y))
	r := 0
	for ; r+4 <= n; r += 4 {
		p0 := unsafe.Add(py, 4*r*d)
		p1 := unsafe.Add(p0, 4*d)
		p2 := unsafe.Add(p1, 4*d)
		p3 := unsafe.Add(p2, 4*d)
		for a := range d {
			b0 := archsimd.BroadcastFloat32x8(*(*float32)(unsafe.Add(p0, 4*a)))
			b1 := archsimd.BroadcastFloat32x8(*(*float32)(unsafe.Add(p1, 4*a)))
			b2 := archsimd.BroadcastFloat32x8(*(*float32)(unsafe.Add(p2, 4*a)))
			b3 := archsimd.BroadcastFloat32x8(*(*float32)(unsafe.Add(p3, 4*a)))
			ga := unsafe.Add(pg, 4*a*d)
			for k := 0; k < d; k += 8 {
				acc := load8(ga, 4*k)
				acc = b0.MulAdd(load8(p0, 4*k), acc)
				acc = b1.MulAdd(load8(p1, 4*k), acc)
				acc = b2.MulAdd(load8(p2, 4*k), acc)
				acc = b3.MulAdd(load8(p3, 4*k), acc)
				store8(acc, ga, 4*k)
			}
		}
	}
	for ; r < n; r++ {
		p0 := unsafe.Add(py, 4*r*d)
		for a := range d {
			b0 := archsimd.BroadcastFloat32x8(*(*float32)(unsafe.Add(p0, 4*a)))
			ga := unsafe.Add(pg, 4*a*d)
			for k := 0; k < d; k += 8 {
				store8(b0.MulAdd(load8(p0, 4*k), load8(ga, 4*k)), ga, 4*k)
			}
		}
	}
}

func lincomb256(out []float32, a float32, x []float32, b float32, y []float32) {
	d := len(out)
	_ = x[d-1]
	_ = y[d-1]
	po := unsafe.Pointer(unsafe.SliceData(out))
	px := unsafe.Pointer(unsafe.SliceData(x))
	py := unsafe.Pointer(unsafe.SliceData(y))
	av, bv := archsimd.BroadcastFloat32x8(a), archsimd.BroadcastFloat32x8(b)
	for k := 0; k < d; k += 8 {
		store8(av.MulAdd(load8(px, 4*k), bv.Mul(load8(py, 4*k))), po, 4*k)
	}
}

func cgStep256(s float32, p, ap, x, r []float32) float32 {
	d := len(r)
	_ = p[d-1]
	_ = ap[d-1]
	_ = x[d-1]
	pp := unsafe.Pointer(unsafe.SliceData(p))
	pa := unsafe.Pointer(unsafe.SliceData(ap))
	px := unsafe.Pointer(unsafe.SliceData(x))
	pr := unsafe.Pointer(unsafe.SliceData(r))
	sv, nv := archsimd.BroadcastFloat32x8(s), archsimd.BroadcastFloat32x8(-s)
	var acc archsimd.Float32x8
	for k := 0; k < d; k += 8 {
		store8(sv.MulAdd(load8(pp, 4*k), load8(px, 4*k)), px, 4*k)
		rv := nv.MulAdd(load8(pa, 4*k), load8(pr, 4*k))
		store8(rv, pr, 4*k)
		acc = rv.MulAdd(rv, acc)
	}
	return hsum8(acc)
}
