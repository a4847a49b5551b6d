//go:build goexperiment.simd && amd64

package topk

import (
	"simd/archsimd"
	"unsafe"
)

func init() {
	switch {
	case archsimd.X86.AVX512():
		kernelImpl, kernelName = scoreBlock512, "avx512"
	case archsimd.X86.AVX2() && archsimd.X86.FMA():
		kernelImpl, kernelName = scoreBlock256, "avx2"
	}
}

// simdKernels lists the SIMD kernels this CPU can run, for tests.
func simdKernels() map[string]blockKernel {
	k := map[string]blockKernel{}
	if archsimd.X86.AVX512() {
		k["avx512"] = scoreBlock512
	}
	if archsimd.X86.AVX2() && archsimd.X86.FMA() {
		k["avx2"] = scoreBlock256
	}
	return k
}

// f32at returns the float32 at p + 4·i.
func f32at(p unsafe.Pointer, i int) float32 { return *(*float32)(unsafe.Add(p, 4*i)) }

func vec16(p unsafe.Pointer, off int) archsimd.Float32x16 {
	return archsimd.LoadFloat32x16((*[16]float32)(unsafe.Add(p, off)))
}

func vec8(p unsafe.Pointer, off int) archsimd.Float32x8 {
	return archsimd.LoadFloat32x8((*[8]float32)(unsafe.Add(p, off)))
}

// scoreBlock512 is the AVX-512 kernel: one 16-lane register holds a block's
// scores for one query; four queries share every load of the block: four
// independent FMA chains hide the FMA latency, and eight measured slower
// (the compiler spills registers).
func scoreBlock512(blk, bias []float32, dim int, qs, thr, out []float32, mask []uint16) {
	nq := len(thr)
	_ = blk[dim*BlockWidth-1]
	_ = qs[nq*dim-1]
	_ = out[nq*BlockWidth-1]
	_ = mask[nq-1]
	b := archsimd.LoadFloat32x16((*[16]float32)(bias))
	pb := unsafe.Pointer(unsafe.SliceData(blk))
	pq := unsafe.Pointer(unsafe.SliceData(qs))
	po := unsafe.Pointer(unsafe.SliceData(out))
	q := 0
	for ; q+4 <= nq; q += 4 {
		p0 := unsafe.Add(pq, 4*q*dim)
		p1 := unsafe.Add(p0, 4*dim)
		p2 := unsafe.Add(p1, 4*dim)
		p3 := unsafe.Add(p2, 4*dim)
		a0, a1, a2, a3 := b, b, b, b
		for d := range dim {
			v := vec16(pb, 64*d)
			a0 = archsimd.BroadcastFloat32x16(f32at(p0, d)).MulAdd(v, a0)
			a1 = archsimd.BroadcastFloat32x16(f32at(p1, d)).MulAdd(v, a1)
			a2 = archsimd.BroadcastFloat32x16(f32at(p2, d)).MulAdd(v, a2)
			a3 = archsimd.BroadcastFloat32x16(f32at(p3, d)).MulAdd(v, a3)
		}
		store16(po, thr, mask, q, a0)
		store16(po, thr, mask, q+1, a1)
		store16(po, thr, mask, q+2, a2)
		store16(po, thr, mask, q+3, a3)
	}
	for ; q < nq; q++ {
		p0 := unsafe.Add(pq, 4*q*dim)
		a0 := b
		for d := range dim {
			a0 = archsimd.BroadcastFloat32x16(f32at(p0, d)).MulAdd(vec16(pb, 64*d), a0)
		}
		store16(po, thr, mask, q, a0)
	}
}

// store16 writes query q's block scores and its threshold mask.
func store16(po unsafe.Pointer, thr []float32, mask []uint16, q int, a archsimd.Float32x16) {
	a.Store((*[16]float32)(unsafe.Add(po, 64*q)))
	mask[q] = a.Greater(archsimd.BroadcastFloat32x16(thr[q])).ToBits()
}

// scoreBlock256 is the AVX2+FMA kernel: two 8-lane registers per query.
func scoreBlock256(blk, bias []float32, dim int, qs, thr, out []float32, mask []uint16) {
	nq := len(thr)
	_ = blk[dim*BlockWidth-1]
	_ = qs[nq*dim-1]
	_ = out[nq*BlockWidth-1]
	_ = mask[nq-1]
	pbias := unsafe.Pointer(unsafe.SliceData(bias))
	blo, bhi := vec8(pbias, 0), vec8(pbias, 32)
	pb := unsafe.Pointer(unsafe.SliceData(blk))
	pq := unsafe.Pointer(unsafe.SliceData(qs))
	po := unsafe.Pointer(unsafe.SliceData(out))
	q := 0
	for ; q+2 <= nq; q += 2 {
		p0 := unsafe.Add(pq, 4*q*dim)
		p1 := unsafe.Add(p0, 4*dim)
		l0, h0, l1, h1 := blo, bhi, blo, bhi
		for d := range dim {
			vl, vh := vec8(pb, 64*d), vec8(pb, 64*d+32)
			x0 := archsimd.BroadcastFloat32x8(f32at(p0, d))
			x1 := archsimd.BroadcastFloat32x8(f32at(p1, d))
			l0, h0 = x0.MulAdd(vl, l0), x0.MulAdd(vh, h0)
			l1, h1 = x1.MulAdd(vl, l1), x1.MulAdd(vh, h1)
		}
		l0.Store((*[8]float32)(unsafe.Add(po, 64*q)))
		h0.Store((*[8]float32)(unsafe.Add(po, 64*q+32)))
		l1.Store((*[8]float32)(unsafe.Add(po, 64*(q+1))))
		h1.Store((*[8]float32)(unsafe.Add(po, 64*(q+1)+32)))
		t0, t1 := archsimd.BroadcastFloat32x8(thr[q]), archsimd.BroadcastFloat32x8(thr[q+1])
		mask[q] = uint16(l0.Greater(t0).ToBits()) | uint16(h0.Greater(t0).ToBits())<<8
		mask[q+1] = uint16(l1.Greater(t1).ToBits()) | uint16(h1.Greater(t1).ToBits())<<8
	}
	for ; q < nq; q++ {
		p0 := unsafe.Add(pq, 4*q*dim)
		l0, h0 := blo, bhi
		for d := range dim {
			x0 := archsimd.BroadcastFloat32x8(f32at(p0, d))
			l0, h0 = x0.MulAdd(vec8(pb, 64*d), l0), x0.MulAdd(vec8(pb, 64*d+32), h0)
		}
		l0.Store((*[8]float32)(unsafe.Add(po, 64*q)))
		h0.Store((*[8]float32)(unsafe.Add(po, 64*q+32)))
		t0 := archsimd.BroadcastFloat32x8(thr[q])
		mask[q] = uint16(l0.Greater(t0).ToBits()) | uint16(h0.Greater(t0).ToBits())<<8
	}
}
