// Package learner owns Eddy's model mathematics: the online matrix
// factorisation used for retrieval, the FTRL-Proximal logistic ranker, and
// the small values that travel between learner stages.
//
// The MF update is split in two halves so that it can run in the streaming
// topology of DESIGN.md §1, where user vectors live with the user's
// partition task and item vectors with an item stage keyed by item id:
//
//   - (*MF).UserStep updates a user Row from one event's examples (the
//     event's item plus popularity-sampled negatives) and writes one
//     ItemGradient per example;
//   - (*MF).ApplyItemGradient applies such a gradient to an item Row.
//
// ItemGradient has a documented little-endian binary layout with a header
// and schema version (see GradientSchemaVersion, AppendItemGradient and
// DecodeItemGradient) so the user stage can publish it to the item-grads
// topic. The FTRL ranker's state has one too (FTRL.MarshalBinary). Model composes both halves in memory for evaluation and tests; it
// calls exactly the functions the streaming stages call, so `eddy eval
// prequential` measures the learner the product runs.
//
// The package holds no I/O: no Kafka, no Badger. The stream runtime wraps
// these functions and owns state storage, offsets and delivery.
package learner
