// Package topk owns the scorer's retrieval kernel: exact top-K maximum
// inner-product search over an in-memory item matrix.
//
// The Matrix keeps item vectors in float32 blocks of BlockWidth items laid
// out dimension-major inside the block (element d of item j of block b at
// b·BlockWidth·dim + d·BlockWidth + j). Scoring one block for one query is
// then dim broadcast-multiply-adds of a whole block-wide vector, with no
// horizontal sums, and the scores of BlockWidth items come out in one
// register, compared against the query's current heap threshold at once.
// A block (4 KiB at dim 64) stays in L1 while every query of a batch is
// scored against it, so a batch of B concurrent queries streams the matrix
// from memory once instead of B times (matrix–matrix instead of
// matrix–vector): that, not the multiply-adds, is what bounds a plain loop.
//
// The kernel has a SIMD implementation built with Go's experimental
// simd/archsimd package (GOEXPERIMENT=simd, amd64, chosen at run time by
// CPU feature: AVX-512 or AVX2+FMA) and a portable Go implementation used
// everywhere else; tests check both against a plain float64 reference.
//
// Index is the retrieval interface the scorer calls; Exact is its exact
// implementation, and the reference any approximate index added later must
// be measured against (recall@K). Coalescer batches concurrent Search
// calls into one pass over the matrix.
//
// The package knows nothing about ids, Kafka or HTTP: items are dense
// int32 indices assigned by the caller.
package topk
