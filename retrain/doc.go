// Package retrain is the retrain role: it closes Eddy's loop
// (events → online learning → serving → drift → full retrain → serving).
//
// # Requests
//
// The role reads <prefix>control (read_committed). The drift role writes
// its RetrainRequests there; eddy retrain --now, --schedule and eddy model
// rollback write theirs. Requests waiting when a run starts are answered
// together by it (one run at a time); a rollback is a run of its own.
//
// # A run
//
//  1. The events topic's last stable offsets are taken: everything
//     acknowledged so far. The run waits until the archive holds them.
//  2. The archived events up to those offsets (the last --window of them)
//     are divided at a cut-off, the start of the newest --holdout: the
//     challenger (learner/ials) learns from the events before it.
//  3. The champion is the live model as the scorer saw it at the cut-off:
//     the model topics' rows of the live version last updated before it.
//  4. Both are judged on the held-out events with one protocol (each
//     held-out positive ranked against the user's unseen items:
//     offline.SplitAt), and the gate (GateConfig.Decide) promotes the
//     challenger only if it is better on the primary metric by more than
//     a tolerance, on enough users, and no guardrail (coverage, popularity
//     bias) is worse beyond its tolerance.
//  5. A promoted configuration is trained again on every event read, so
//     the served model misses nothing acknowledged before the run; the
//     stages re-apply what came after (Version.Data.ReplayOffsets).
//
// # Versions and promotion
//
// Every run ends with a Version record on <prefix>model.versions
// (compacted, keyed by version): promoted, rejected or failed, with the
// data range, hyperparameters, both models' metrics, the reason, the code
// version and the control offset it answers. A promoted version's vectors
// are kept as a Parquet snapshot under <archive>/models/<version>/ and
// written to the model topics, marked with HeaderVersion, in one Kafka
// transaction with its record: a reader sees the whole version or
// nothing. The scorer builds it beside the live one and swaps it in when
// complete; the learner's stages adopt it in one of their transactional
// batches and re-apply the events after its data (learner/stage).
// A rollback publishes an earlier version's snapshot as a new version
// whose parent it is: the same path, gated by the operator alone.
//
// # Exactly once
//
// The role's position is the newest control offset a committed version
// answers (History.ControlOffset): a role killed during a run reads the
// request again and runs it again; one whose version was committed never
// runs it twice. A transactional id fences a second instance.
package retrain
