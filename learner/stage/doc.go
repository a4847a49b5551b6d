// Package stage runs Eddy's online matrix factorisation as two streaming
// stages on the partition task runtime (stream/task), the topology of
// DESIGN.md §1:
//
//   - the user stage (group eddy-learner-users, source <prefix>events, keyed
//     by user_id) keeps each user's vector in its partition's state, takes
//     one SGD step per event with learner.(*MF).UserStep, and produces the
//     item halves of the step to <prefix>item-grads (key = item_id) and the
//     user's new vector to the compacted <prefix>model.users;
//   - the item stage (group eddy-learner-items, source <prefix>item-grads,
//     keyed by item_id) applies each gradient with
//     learner.(*MF).ApplyItemGradient and publishes the item's vector, bias,
//     decayed popularity and impressions to the compacted
//     <prefix>model.items.
//
// Both stages call the functions learner.Model composes in memory for
// `eddy eval prequential`, in the same order (see Model.Learn): what is
// evaluated is what runs. Scaling is by partitions: each user partition and
// each item partition is an independent task, and more instances of `eddy
// learn` share them through the consumer groups.
//
// # Exactly once
//
// A batch's state changes, its gradients and its model records are
// committed in one Kafka transaction with the source offset (stream/task).
// Readers use read_committed, so every event is applied to its user once
// and every gradient to its item once, across kill -9 and rebalances. No
// de-duplication by (partition, offset) is needed on the item stage: a
// replayed batch's earlier gradients belong to an aborted transaction and
// are never delivered.
//
// The update counter of a vector (modelrec.Vector.Updates) is deterministic:
// the user stage's negative sampler, its random state and its item
// catalogue are part of the partition's state (keys under 0x00, which no
// user id can start with), so a replay draws the same negatives for the same
// events, and a crash or a rebalance ends with the counters of a clean run.
// The vectors themselves are not bit-identical to a clean run, because of
// the item replica below.
//
// # The item replica (parameter sync)
//
// UserStep needs the current vectors of the event's item and of the sampled
// negatives, which live in the item stage. The user stage keeps an
// in-memory replica of <prefix>model.items (read from the beginning,
// read_committed, no consumer group), as Monolith's workers keep a copy of
// the parameter servers' tables. The replica lags the item stage by about
// one item-stage batch plus one fetch (typically tens of milliseconds on one
// machine, exported as eddy_learner_item_replica_delay_seconds), so a user
// step may read an item vector that misses the item's latest gradients.
// Online SGD tolerates this staleness (asynchronous SGD, Hogwild-style); what
// it costs in quality is measured against the in-memory learner.Model in
// the tests. Items not in the replica yet start from learner.InitRow with the
// item seed, the same vector the item stage creates on their first gradient.
// The user stage waits for the replica to catch up before its first batch.
//
// # Records on item-grads
//
// The value is a learner.ItemGradient (its documented binary layout) or,
// for impressions, a 4-byte little-endian count; the header GradHeader
// (GradHeaderLen bytes: kind, event time) says which, and whether the
// gradient comes from a positive event, an explicit negative or a sampled
// negative (see GradKind). The record's Kafka timestamp is the source
// event's, so the item stage can export end-to-end model staleness.
// Impressions train nothing; the user stage sums them per item per batch
// and the item stage keeps their decayed count for the scorer's CTR.
//
// # Model version
//
// Config.ModelVersion (default 1) is written into every record. It names
// the lineage of the online model: a full retrain that publishes a new
// version bumps it, and online learning continues from that version.
//
// This package owns the stages' state layouts, their record envelope and
// their metrics. It does not own the maths (learner), the record layouts
// the scorer reads (learner/modelrec), nor the runtime (stream/task).
package stage
