// Package ials is Eddy's batch trainer: implicit alternating least squares
// over a user–item matrix, the full retrain that catches long-idle users up
// with items that moved while they were away.
//
// # The model and its loss
//
// Each user u has a row w_u and each item i a row h_i of Dim float32s; the
// score is ŷ_ui = ⟨w_u, h_i⟩. A Matrix holds the observed pairs S, each with
// a confidence c_ui > 0 and a target t_ui ∈ [0, 1] (1 for positives, 0 for
// an explicit negative such as a dislike; events on the same pair are
// merged into their weighted mean). Train minimises
//
//	L = Σ_{(u,i)∈S} c_ui (t_ui − ŷ_ui)²            (observed pairs)
//	  + α₀ Σ_u Σ_i ŷ_ui²                             (every pair, "unobserved")
//	  + λ Σ_u (|I_u| + α₀|I|)^ν ‖w_u‖² + λ Σ_i (|U_i| + α₀|U|)^ν ‖h_i‖²
//
// which is the formulation of Rendle, Krichene, Zhang and Koren, "Revisiting
// the Performance of iALS on Item Recommendation Benchmarks" (RecSys 2022):
// the unobserved weight α₀ (UnobservedWeight), frequency-scaled
// regularisation with exponent ν (RegExponent; ν = 0 is plain λ), and rows
// initialised from N(0, σ²/Dim) (InitScale = σ).
//
// # The solver
//
// With the items fixed, the loss is quadratic in each w_u, whose minimiser
// solves
//
//	(α₀ G + λ_u I + Σ_{i∈I_u} c_ui h_i h_iᵀ) w_u = Σ_{i∈I_u} c_ui t_ui h_i,
//
// G = Σ_i h_i h_iᵀ being the item Gramian. G is computed once per
// half-epoch (the "Gramian trick"), so the unobserved term costs Dim² per
// row instead of a pass over the whole catalogue. Rather than factorise the
// Dim × Dim system per row, Train runs CGSteps steps of conjugate gradient
// warm-started from the row's current value (Takács, Pilászy and Tikk,
// "Applications of the conjugate gradient method for implicit feedback
// collaborative filtering", RecSys 2011), as the `implicit` library does:
// three steps per row and epoch are enough because each epoch starts where
// the last one left off. The items are then solved the same way against
// the users.
//
// # Speed and determinism
//
// Rows are solved in parallel on Threads goroutines; each row's solve reads
// only the other side's factors and the Gramian, so the result does not
// depend on which goroutine solved it. The Gramian is summed over fixed
// chunks of rows in a fixed order, so the whole run is bit-for-bit the
// same for a seed, whatever the thread count. The hot loops (the per-row
// gather of h_i·p and the symmetric product G·p) use AVX2/FMA kernels
// through simd/archsimd when the build has GOEXPERIMENT=simd on amd64, the
// CPU has them and Dim is a multiple of 8, and gonum's BLAS otherwise
// (SSE assembly on amd64, Go elsewhere; about 2.3× slower). The two round
// differently, so a run is reproducible for a seed within one kind of
// build; the tests check the kernels against each other and both against
// a direct solve.
//
// The package does no I/O. Train reports each epoch through a callback
// (loss, time and an optional validation metric) and stops with an error,
// publishing nothing, when a factor or the loss stops being finite.
package ials
