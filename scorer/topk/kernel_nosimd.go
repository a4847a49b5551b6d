//go:build !(goexperiment.simd && amd64)

package topk

// simdKernels lists the SIMD kernels of this build: none without
// GOEXPERIMENT=simd on amd64.
func simdKernels() map[string]blockKernel { return nil }

// simdQ8Kernels lists the SIMD int8 kernels of this build: none.
func simdQ8Kernels() map[string]q8Kernel { return nil }
