//go:build !(goexperiment.simd && amd64)

package topk

// simdKernels lists the SIMD kernels of this build: none without
// GOEXPERIMENT=simd on amd64.
func simdKernels() map[string]blockKernel { return nil }
