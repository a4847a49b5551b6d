// Package ranker learns the scorer's ranking weights online, in the
// streaming path (DESIGN.md §4): it joins the served lists the scorer logs
// to <prefix>recs with the engagements that answer them in <prefix>events
// into labelled examples, trains an FTRL-Proximal logistic regression
// (learner.FTRL) on them, and publishes the weights to the compacted
// <prefix>model.ranker as modelrec.Ranker records, which the scorer replays
// and re-ranks with.
//
// # Topology
//
//	<prefix>events ─▶ [forward: events with a request_id] ─┐
//	                                                      ├─▶ <prefix>ranker.input (key = user_id)
//	<prefix>recs ───▶ [forward: served lists] ─────────────┘
//	<prefix>ranker.input ─▶ [joiner, per partition] ─▶ <prefix>ranker.examples (1 partition)
//	<prefix>ranker.examples ─▶ [trainer: FTRL, one task] ─▶ <prefix>model.ranker (compacted)
//
// The task runtime reads one source topic per runtime, and the join needs a
// user's served lists and engagements in one partition: two task.Forwarders
// (the pattern drift uses) copy both sources, keyed by user id and marked
// with SourceHeader, into ranker.input. The events forwarder keeps only
// events whose JSON carries a request_id (a byte scan, no decode): the
// others can answer no served list. The joiner scales with ranker.input's
// partitions across processes; the trainer is one task on a one-partition
// topic (its records are keyed by Config.Name, so a topic created with more
// partitions still sends every example to one), because one model needs
// one total order of examples. Its load is one small record per served
// item; FTRL's update over a handful of dense features costs well under a
// microsecond.
//
// # Labels
//
// Each item of a served list (request_id, user_id, ts, items with position,
// score and the ranker's features at serving time) becomes one example.
// The first decisive answer to it — an event of the same user with the
// list's request_id and the item's item_id — decides it, within
// Config.LabelWindow (default 30 min, event time) of the list's ts:
//
//   - click, like, purchase, a watch of ratio ≥ the confidence's
//     WatchPositiveAt (0.3) or without a duration, a rating ≥
//     RatingPositiveAt (4): positive (ReasonEngaged);
//   - dislike, skip, a watch abandoned under WatchNegativeBelow (0.1), a
//     rating under RatingWeakAt (3): negative (ReasonRejected), at once:
//     the user saw the item and turned it down;
//   - a watch between the two ratios, a middling rating: decides the item
//     without an example (neither label is honest);
//   - impressions and events without a request_id answer nothing.
//
// Later answers to a decided item are duplicates and count for nothing
// (a click followed by a like is one positive; a click followed by a
// dislike stays a positive: the ranker predicts engagement, and the MF
// learns the dislike). Items still undecided when the window has passed
// become negatives (ReasonExpired). An answer after the window is late and
// ignored. Fallback lists (popularity for unknown users) and the lists of
// an experiment's popularity arm ("policy": "popularity", not marked as
// fallbacks) are skipped: they carry no ranker features. The lists of a
// "retrieval" arm (ranker off) are learnt from like bootstrapping lists;
// those of a "frozen" arm like any other list (its features are live).
//
// Bootstrapping: a scorer serves lists without features until it has a
// ranker record, and logs the retrieval score as each item's score. The
// joiner then gives such an item the single feature mf_score = score, so
// the first weights are learnt from the MF score; once a record is
// published the scorer computes and logs every feature the record names.
//
// # Event time
//
// Each joiner partition keeps two clocks: the newest event time of the
// forwarded events and of the served lists. A list is decided when the
// events' clock has passed its ts + window: only the events can tell that
// no answer is still to come, whichever forwarder is ahead in a backlog
// (a partition whose users send no events with a request_id keeps its
// lists until one arrives, within the bounds). Because the two forwarders copy independently, an engagement can
// arrive before its list: it is held as an orphan until the list arrives
// (and then applied) or until the lists' clock is a window past it
// (dropped). A list arriving after its window is decided at once, with its
// orphans. Lists and orphans are bounded per user (MaxListsPerUser,
// MaxOrphansPerUser) and per partition (MaxPendingLists, MaxOrphans); the
// oldest are dropped without examples beyond the bounds (counted): under
// overload the ranker loses examples rather than learning false negatives.
//
// # Exactly once
//
// The joiner's state (per-user pending lists and orphans, two deadline
// queues in chunks, the clocks) and the trainer's (the FTRL z and n, the
// feature vocabulary, the example and loss counts) live in their
// partitions' task state; examples and ranker records are emitted in the
// batch's Kafka transaction. A kill -9 or a rebalance therefore neither
// loses nor repeats an example: given the committed ranker.input, the
// examples are a pure function of it (no wall clock is read), and the
// weights a pure function of ranker.examples. Only when the trainer
// publishes depends on the wall clock.
//
// # Publishing
//
// The trainer publishes after a batch once Config.PublishEvery examples
// (default 10,000) were learnt since its last publish, or once
// PublishInterval (1 s) has passed with at least one new example. The
// runtime calls a processor only with records, so the Service that owns
// the trainer produces a tick record (TickHeader) to ranker.examples when
// examples have waited unpublished for an interval; ticks change no state.
// A record's ModelVersion is Config.ModelVersion (the online model's
// lineage, as on the vector records: the scorer reports the highest one it
// applied), its ts the event time of the newest label.
//
// This package owns the joiner, the trainer, the example record layout
// (example.go) and the eddy_ranker_* metrics. It does not own the FTRL
// maths (learner), the Ranker record (learner/modelrec), the served-list
// log (the scorer) nor the runtime (stream/task).
package ranker
