// Package scorer owns recommendation serving: a hot in-memory replica of
// the compacted model topics (State, filled by Consumer), retrieval of the
// top candidates over all items (package topk, batched and SIMD: an int8
// scan with an exact float32 re-score by default, Config.Index "exact" for
// a float32 scan), ranker re-scoring of the top candidates, the
// decayed-popularity fallback, the HTTP API GET /v1/recommendations
// (DESIGN.md §3), and the served-list log to the recs topic.
//
// The State is fed only from Kafka (record layouts in learner/modelrec):
// the scorer never opens Badger, uses no consumer group, and replays every
// partition from the beginning, so any number of scorers can run side by
// side, each holding the whole model. Items are interned to dense indices
// (map[string]int32 + []string) and their vectors kept contiguous in a
// topk.Matrix; updates are applied in batches under a write lock that
// searches wait for at most one batch.
//
// Fallback: an unknown user or an empty model is answered with the items of
// highest decayed popularity, marked "fallback": true. A scorer that loses
// Kafka keeps serving its last state (personalised for known users) and
// reports the loss in /readyz and eddy_scorer_kafka_connected.
//
// Served lists are published without blocking responses: a bounded queue,
// dropped (and counted) when full.
//
// Experiments: Config.Variants ("--variants online=9,popularity=1") splits
// users between variants by a hash of their user_id (UserPoint, Assign):
// deterministic across processes and restarts, no state, no coordination.
// Each variant has a policy: online (retrieval then ranker, the default),
// retrieval (ranker off), popularity (the decayed-popularity list for
// everyone) or frozen (online over a copy of the model taken when the
// scorer caught up, re-taken every --frozen-refresh: what a model
// retrained in batches would serve; see PolicyFrozen). The variant's name is in the response, the served list and
// the request metrics' variant label; the served list also carries the
// policy. A popularity arm's lists say "fallback": false: the fallback
// flag and eddy_scorer_fallback_total mean "could not serve what the
// variant serves" (unknown user, empty model), which a popularity arm
// never is, and the fallback-rate alert must not fire because of an
// experiment. Unknown users in an online or retrieval arm still get the
// fallback, as without experiments. Analysis: package scorer/abtest and
// `eddy report ab`. The frozen copy costs a second copy of the item matrix
// and of the user vectors (about 2× the hot-state memory) and about
// 120 ms of the consumer's time at 100k × 64 (requests go on meanwhile:
// the consumer is the state's only writer and takes the copy between
// batches), so it exists only when a variant asks for it.
//
// Hot path: concurrent requests share passes over the item matrix through
// a topk.Coalescer; the response body and the served-list record are
// written by hand-rolled encoders that produce the bytes encoding/json
// would (tested and fuzzed against it), because reflection and the
// per-item feature maps were a third of a request's allocations.
//
// What it does not own: the model maths (learner), how model records are
// produced (learner's stages), drift statistics over eddy.recs (drift).
package scorer
