// Package topk owns the scorer's retrieval kernel: top-K maximum
// inner-product search over an in-memory item matrix, exact (Exact) or by
// an int8 scan with an exact re-score (Quantized).
//
// The Matrix keeps item vectors in float32 blocks of BlockWidth items laid
// out dimension-major inside the block (element d of item j of block b at
// b·BlockWidth·dim + d·BlockWidth + j). Scoring one block for one query is
// then dim broadcast-multiply-adds of a whole block-wide vector, with no
// horizontal sums, and the scores of BlockWidth items come out in one
// register, compared against the query's current threshold at once.
// A block (4 KiB at dim 64) stays in L1 while every query of a batch is
// scored against it, so a batch of B concurrent queries streams the matrix
// from memory once instead of B times (matrix–matrix instead of
// matrix–vector): that, not the multiply-adds, is what bounds a plain loop.
//
// Quantized scans an int8 copy of the matrix instead (one scale per item,
// 63 levels; queries with 127 levels): a quarter of the bytes to stream,
// and 64 multiply-adds per instruction with AVX-512 VNNI (VPDPBUSD, in
// assembly because simd/archsimd does not expose it) or three instructions
// with AVX-512BW/AVX2. It keeps the best K + margin by int8 score and
// re-scores those exactly from a row-major float32 copy, so its results
// carry exact scores; recall@10 and @200 against Exact measured 1.0 on
// 1,000 random queries over 100k items of dim 64 (TestQuantizedRecallServing).
// It costs 1.25× the float32 bytes in memory (the float32 rows plus the
// int8 copy) against Exact's 1×.
//
// Both keep each query's best results in a collector: an append buffer of
// about 2K integer keys compacted by quickselect, whose floor is the
// threshold the kernels compare whole blocks against. The int8 kernels scan
// on by themselves until some query has a candidate, so the Go code runs
// only for the few blocks that hold one.
//
// The kernels have SIMD implementations built with Go's experimental
// simd/archsimd package (GOEXPERIMENT=simd, amd64, chosen at run time by
// CPU feature: AVX-512 VNNI, AVX-512 or AVX2+FMA) and portable Go ones used
// everywhere else; tests check all of them against plain references.
//
// Index is the retrieval interface the scorer calls; Exact is the reference
// any approximate index must be measured against (RecallAtK). Coalescer
// batches concurrent Search calls into one pass over the matrix.
//
// The package knows nothing about ids, Kafka or HTTP: items are dense
// int32 indices assigned by the caller.
package topk
