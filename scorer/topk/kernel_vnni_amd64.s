//go:build goexperiment.simd

#include "textflag.h"

// The AVX-512 VNNI int8 dot products (VPDPBUSD: 64 unsigned-byte ×
// signed-byte products summed in fours into 16 int32 lanes, without
// saturation), which simd/archsimd does not expose. Only the integer
// accumulation is here; scan in kernel_simd.go scales, thresholds and masks
// the sums with archsimd.

// func dotBlocksVNNI(blk *uint8, nblk, groups int, qs *int8, nq int, acc *int32)
// acc[(b·nq+q)·16 + j] = Σ_d blk[b·groups·64 + (d/4)·64 + 4j + d%4] · qs[q·groups·4 + d]
// for nblk blocks and nq queries; each query keeps four partial sums over
// interleaved groups so that consecutive VPDPBUSDs do not wait on each other.
TEXT ·dotBlocksVNNI(SB), NOSPLIT, $0-48
	MOVQ blk+0(FP), SI
	MOVQ nblk+8(FP), R12
	MOVQ groups+16(FP), CX
	MOVQ qs+24(FP), DX
	MOVQ nq+32(FP), BX
	MOVQ acc+40(FP), DI
	MOVQ CX, R8
	SHLQ $2, R8          // query stride: groups*4 bytes
	MOVQ CX, R13
	SHLQ $6, R13         // block stride: groups*64 bytes
bloop:
	TESTQ R12, R12
	JEQ done
	MOVQ DX, R14         // query pointer
	MOVQ BX, R15         // queries left
qloop:
	TESTQ R15, R15
	JEQ qdone
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	MOVQ SI, R9
	MOVQ R14, R10
	MOVQ CX, R11
g4:
	CMPQ R11, $4
	JLT g1
	VMOVDQU32 (R9), Z4
	VPDPBUSD.BCST (R10), Z4, Z0
	VMOVDQU32 64(R9), Z5
	VPDPBUSD.BCST 4(R10), Z5, Z1
	VMOVDQU32 128(R9), Z6
	VPDPBUSD.BCST 8(R10), Z6, Z2
	VMOVDQU32 192(R9), Z7
	VPDPBUSD.BCST 12(R10), Z7, Z3
	ADDQ $256, R9
	ADDQ $16, R10
	SUBQ $4, R11
	JMP g4
g1:
	TESTQ R11, R11
	JEQ gdone
	VMOVDQU32 (R9), Z4
	VPDPBUSD.BCST (R10), Z4, Z0
	ADDQ $64, R9
	ADDQ $4, R10
	DECQ R11
	JMP g1
gdone:
	VPADDD Z1, Z0, Z0
	VPADDD Z3, Z2, Z2
	VPADDD Z2, Z0, Z0
	VMOVDQU32 Z0, (DI)
	ADDQ $64, DI
	ADDQ R8, R14
	DECQ R15
	JMP qloop
qdone:
	ADDQ R13, SI
	DECQ R12
	JMP bloop
done:
	VZEROUPPER
	RET

// func dot4VNNI(blk *uint8, nblk, groups int, qs *int8, acc *int32)
// The same for exactly four queries (acc[(b·4+q)·16 + j]), each 64-byte
// group of a block loaded once for all four.
TEXT ·dot4VNNI(SB), NOSPLIT, $0-40
	MOVQ blk+0(FP), SI
	MOVQ nblk+8(FP), R12
	MOVQ groups+16(FP), CX
	MOVQ qs+24(FP), DX
	MOVQ acc+32(FP), DI
	MOVQ CX, R8
	SHLQ $2, R8
b4loop:
	TESTQ R12, R12
	JEQ d4done
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	MOVQ DX, R10
	LEAQ (DX)(R8*1), R11
	LEAQ (R11)(R8*1), R13
	LEAQ (R13)(R8*1), R14
	MOVQ CX, R15
g4l:
	VMOVDQU32 (SI), Z4
	VPDPBUSD.BCST (R10), Z4, Z0
	VPDPBUSD.BCST (R11), Z4, Z1
	VPDPBUSD.BCST (R13), Z4, Z2
	VPDPBUSD.BCST (R14), Z4, Z3
	ADDQ $64, SI
	ADDQ $4, R10
	ADDQ $4, R11
	ADDQ $4, R13
	ADDQ $4, R14
	DECQ R15
	JNE g4l
	VMOVDQU32 Z0, (DI)
	VMOVDQU32 Z1, 64(DI)
	VMOVDQU32 Z2, 128(DI)
	VMOVDQU32 Z3, 192(DI)
	ADDQ $256, DI
	DECQ R12
	JMP b4loop
d4done:
	VZEROUPPER
	RET
