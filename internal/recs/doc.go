// Package recs reads the served-list log, <prefix>recs (recs/v1): one
// JSON record per served response, written by the scorer and read by the
// drift role and the ranker's label joiner.
//
// Why a hand-written decoder: a served list carries the ranker's feature
// values for every item (10 items × 31 features is common), and
// encoding/json decoded one in ~190 µs with ~750 allocations, most of them
// for the per-item feature maps — the largest per-record cost of the drift
// role and of the joiner, which reads every list. Decoder reads the same
// JSON with internal/jsonscan in one pass, keeps each item's features as a
// slice sorted by name over one array per list, and interns feature names
// across records. The fuzz test holds it to encoding/json's reading of
// every document it accepts.
package recs
