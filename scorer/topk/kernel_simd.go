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
		q8KernelImpl, q8KernelName = scanQ8x512, "avx512"
		if archsimd.X86.AVX512VNNI() {
			q8KernelImpl, q8KernelName = scanQ8VNNI, "avx512vnni"
		}
		rowDot = dot512
	case archsimd.X86.AVX2() && archsimd.X86.FMA():
		kernelImpl, kernelName = scoreBlock256, "avx2"
		q8KernelImpl, q8KernelName = scanQ8x256, "avx2"
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

// simdQ8Kernels lists the SIMD int8 kernels this CPU can run, for tests.
func simdQ8Kernels() map[string]q8Kernel {
	k := map[string]q8Kernel{}
	if archsimd.X86.AVX512() {
		k["avx512"] = scanQ8x512
		if archsimd.X86.AVX512VNNI() {
			k["avx512vnni"] = scanQ8VNNI
		}
	}
	if archsimd.X86.AVX2() && archsimd.X86.FMA() {
		k["avx2"] = scanQ8x256
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
	// The last one to three queries score alone, with the same summation
	// order as above: a query's scores must not depend on which queries
	// shared its pass. (Four partial sums for a lone query were tried: no
	// faster, since one query's pass is bound by streaming the matrix.)
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

func i32at(p unsafe.Pointer, off int) int32 { return *(*int32)(unsafe.Add(p, off)) }

// scanQ8x512 is the AVX-512 int8 kernel. Per 4-dimension group and
// query: one VPMADDUBSW (64 byte products summed in pairs to int16), one
// VPMADDWD against ones (pairs of those to int32) and one add, for 64
// multiply-adds where the float32 kernel needs four FMAs; and a quarter of
// the bytes to stream. Four queries share each load of the block.
func scanQ8x512(data []uint8, scale, bias []float32, groups, b0, b1 int, qs []int8, corr []int32, qscale, thr, out []float32, mask []uint16, _ []int32) (int, int) {
	nq := len(thr)
	n := groups * 4
	bb := n * BlockWidth
	if b1 <= b0 {
		return b1, b1
	}
	_ = data[b1*bb-1]
	_ = scale[b1*BlockWidth-1]
	_ = bias[b1*BlockWidth-1]
	_ = qs[nq*n-1]
	_ = out[nq*BlockWidth-1]
	_ = mask[nq-1]
	_ = corr[nq-1]
	_ = qscale[nq-1]
	pq := unsafe.Pointer(unsafe.SliceData(qs))
	po := unsafe.Pointer(unsafe.SliceData(out))
	ones := archsimd.BroadcastInt16x32(1)
	for b := b0; b < b1; b++ {
		pb := unsafe.Pointer(&data[b*bb])
		sv := archsimd.LoadFloat32x16((*[16]float32)(scale[b*BlockWidth:]))
		bv := archsimd.LoadFloat32x16((*[16]float32)(bias[b*BlockWidth:]))
		var hit uint16
		finish := func(q int, acc archsimd.Int32x16) {
			s := acc.Sub(archsimd.BroadcastInt32x16(corr[q])).ConvertToFloat32().Mul(sv).MulAdd(archsimd.BroadcastFloat32x16(qscale[q]), bv)
			s.Store((*[16]float32)(unsafe.Add(po, 64*q)))
			m := s.Greater(archsimd.BroadcastFloat32x16(thr[q])).ToBits()
			mask[q] = m
			hit |= m
		}
		q := 0
		for ; q+4 <= nq; q += 4 {
			p0 := unsafe.Add(pq, q*n)
			p1 := unsafe.Add(p0, n)
			p2 := unsafe.Add(p1, n)
			p3 := unsafe.Add(p2, n)
			var a0, a1, a2, a3 archsimd.Int32x16
			for g := range groups {
				v := archsimd.LoadUint8x64((*[64]uint8)(unsafe.Add(pb, 64*g)))
				a0 = a0.Add(v.DotProductPairsSaturated(archsimd.BroadcastInt32x16(i32at(p0, 4*g)).AsInt8x64()).DotProductPairs(ones))
				a1 = a1.Add(v.DotProductPairsSaturated(archsimd.BroadcastInt32x16(i32at(p1, 4*g)).AsInt8x64()).DotProductPairs(ones))
				a2 = a2.Add(v.DotProductPairsSaturated(archsimd.BroadcastInt32x16(i32at(p2, 4*g)).AsInt8x64()).DotProductPairs(ones))
				a3 = a3.Add(v.DotProductPairsSaturated(archsimd.BroadcastInt32x16(i32at(p3, 4*g)).AsInt8x64()).DotProductPairs(ones))
			}
			finish(q, a0)
			finish(q+1, a1)
			finish(q+2, a2)
			finish(q+3, a3)
		}
		for ; q < nq; q++ {
			p0 := unsafe.Add(pq, q*n)
			var a0 archsimd.Int32x16
			for g := range groups {
				v := archsimd.LoadUint8x64((*[64]uint8)(unsafe.Add(pb, 64*g)))
				a0 = a0.Add(v.DotProductPairsSaturated(archsimd.BroadcastInt32x16(i32at(p0, 4*g)).AsInt8x64()).DotProductPairs(ones))
			}
			finish(q, a0)
		}
		if hit != 0 {
			return b, b + 1
		}
	}
	return b1, b1
}

// scanQ8x256 is the AVX2 int8 kernel: two 8-item halves per block.
func scanQ8x256(data []uint8, scale, bias []float32, groups, b0, b1 int, qs []int8, corr []int32, qscale, thr, out []float32, mask []uint16, _ []int32) (int, int) {
	nq := len(thr)
	n := groups * 4
	bb := n * BlockWidth
	if b1 <= b0 {
		return b1, b1
	}
	_ = data[b1*bb-1]
	_ = scale[b1*BlockWidth-1]
	_ = bias[b1*BlockWidth-1]
	_ = qs[nq*n-1]
	_ = out[nq*BlockWidth-1]
	_ = mask[nq-1]
	_ = corr[nq-1]
	_ = qscale[nq-1]
	pq := unsafe.Pointer(unsafe.SliceData(qs))
	po := unsafe.Pointer(unsafe.SliceData(out))
	ones := archsimd.BroadcastInt16x16(1)
	for b := b0; b < b1; b++ {
		pb := unsafe.Pointer(&data[b*bb])
		ps := unsafe.Pointer(&scale[b*BlockWidth])
		pbias := unsafe.Pointer(&bias[b*BlockWidth])
		slo, shi := vec8(ps, 0), vec8(ps, 32)
		blo, bhi := vec8(pbias, 0), vec8(pbias, 32)
		var hit uint16
		for q := range nq {
			p0 := unsafe.Add(pq, q*n)
			var lo, hi archsimd.Int32x8
			for g := range groups {
				x := archsimd.BroadcastInt32x8(i32at(p0, 4*g)).AsInt8x32()
				vl := archsimd.LoadUint8x32((*[32]uint8)(unsafe.Add(pb, 64*g)))
				vh := archsimd.LoadUint8x32((*[32]uint8)(unsafe.Add(pb, 64*g+32)))
				lo = lo.Add(vl.DotProductPairsSaturated(x).DotProductPairs(ones))
				hi = hi.Add(vh.DotProductPairsSaturated(x).DotProductPairs(ones))
			}
			c := archsimd.BroadcastInt32x8(corr[q])
			qsc := archsimd.BroadcastFloat32x8(qscale[q])
			l := lo.Sub(c).ConvertToFloat32().Mul(slo).MulAdd(qsc, blo)
			h := hi.Sub(c).ConvertToFloat32().Mul(shi).MulAdd(qsc, bhi)
			l.Store((*[8]float32)(unsafe.Add(po, 64*q)))
			h.Store((*[8]float32)(unsafe.Add(po, 64*q+32)))
			t := archsimd.BroadcastFloat32x8(thr[q])
			m := uint16(l.Greater(t).ToBits()) | uint16(h.Greater(t).ToBits())<<8
			mask[q] = m
			hit |= m
		}
		if hit != 0 {
			return b, b + 1
		}
	}
	return b1, b1
}

// In kernel_vnni_amd64.s.
//
//go:noescape
func dotBlocksVNNI(blk *uint8, nblk, groups int, qs *int8, nq int, acc *int32)

//go:noescape
func dot4VNNI(blk *uint8, nblk, groups int, qs *int8, acc *int32)

// scanQ8VNNI is the AVX-512 VNNI int8 kernel: the integer sums come from
// VPDPBUSD in assembly (one instruction per 64 multiply-adds, against three
// with VPMADDUBSW), q8Span(nq) blocks per call, four queries sharing each
// load of a block; scaling and thresholds as in scanQ8x512.
func scanQ8VNNI(data []uint8, scale, bias []float32, groups, b0, b1 int, qs []int8, corr []int32, qscale, thr, out []float32, mask []uint16, acc []int32) (int, int) {
	nq := len(thr)
	n := groups * 4
	bb := n * BlockWidth
	if b1 <= b0 {
		return b1, b1
	}
	_ = data[b1*bb-1]
	_ = scale[b1*BlockWidth-1]
	_ = bias[b1*BlockWidth-1]
	_ = qs[nq*n-1]
	_ = corr[nq-1]
	_ = qscale[nq-1]
	_ = out[q8Rows*BlockWidth-1]
	_ = acc[q8Rows*BlockWidth-1]
	_ = mask[q8Rows-1]
	po := unsafe.Pointer(unsafe.SliceData(out))
	pa := unsafe.Pointer(unsafe.SliceData(acc))
	q4 := nq &^ 3
	for b := b0; b < b1; {
		span := min(q8Span(nq), b1-b)
		// acc holds [block][query][16] sums.
		switch {
		case nq == 4:
			dot4VNNI(&data[b*bb], span, groups, &qs[0], &acc[0])
		case nq < 4:
			dotBlocksVNNI(&data[b*bb], span, groups, &qs[0], nq, &acc[0])
		default:
			for s := range span {
				blk := &data[(b+s)*bb]
				for q := 0; q < q4; q += 4 {
					dot4VNNI(blk, 1, groups, &qs[q*n], &acc[(s*nq+q)*BlockWidth])
				}
				if q4 < nq {
					dotBlocksVNNI(blk, 1, groups, &qs[q4*n], nq-q4, &acc[(s*nq+q4)*BlockWidth])
				}
			}
		}
		var hit uint16
		for s := range span {
			w := (b + s) * BlockWidth
			sv := archsimd.LoadFloat32x16((*[16]float32)(scale[w:]))
			bv := archsimd.LoadFloat32x16((*[16]float32)(bias[w:]))
			for q := range nq {
				r := s*nq + q
				a := archsimd.LoadInt32x16((*[16]int32)(unsafe.Add(pa, 64*r)))
				v := a.Sub(archsimd.BroadcastInt32x16(corr[q])).ConvertToFloat32().Mul(sv).MulAdd(archsimd.BroadcastFloat32x16(qscale[q]), bv)
				v.Store((*[16]float32)(unsafe.Add(po, 64*r)))
				m := v.Greater(archsimd.BroadcastFloat32x16(thr[q])).ToBits()
				mask[r] = m
				hit |= m
			}
		}
		if hit != 0 {
			return b, b + span
		}
		b += span
	}
	return b1, b1
}

// dot512 is dot with 16-lane FMAs when len(a) is a multiple of 16 (else
// dot): the re-score of a row is then four loads and four FMAs, and the
// loads of successive rows, each a likely cache miss, overlap.
func dot512(a, b []float32) float32 {
	n := len(a)
	if n%16 != 0 {
		return dot(a, b)
	}
	b = b[:n]
	var acc archsimd.Float32x16
	for d := 0; d < n; d += 16 {
		acc = archsimd.LoadFloat32x16((*[16]float32)(a[d:])).MulAdd(archsimd.LoadFloat32x16((*[16]float32)(b[d:])), acc)
	}
	s8 := acc.GetLo().Add(acc.GetHi())
	s4 := s8.GetLo().Add(s8.GetHi())
	s2 := s4.AddPairs(s4)
	return s2.GetElem(0) + s2.GetElem(1)
}
