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
// Hot path: concurrent requests share passes over the item matrix through
// a topk.Coalescer; the response body and the served-list record are
// written by hand-rolled encoders that produce the bytes encoding/json
// would (tested and fuzzed against it), because reflection and the
// per-item feature maps were a third of a request's allocations.
//
// What it does not own: the model maths (learner), how model records are
// produced (learner's stages), drift statistics over eddy.recs (drift).
package scorer
