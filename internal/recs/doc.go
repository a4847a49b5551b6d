// Package recs reads the served-list log, <prefix>recs (recs/v1): one
// JSON record per served response, written by the scorer and read by the
// drift role and the ranker's label joiner.
//
// Why a hand-written decoder: a served list carries the ranker's feature
// values for every item, and encoding/json spent 33–38 µs and 157
// allocations on a list of 10 items × the default ranker's 5 features
// (166–210 µs and 747 allocations with 31 features), most of it on the
// per-item feature maps: the largest per-record cost of the drift role and
// of the ranker's label joiner, which reads every list. Decoder reads the
// same JSON with internal/jsonscan in one pass (9.5 µs and 19 allocations;
// 42–45 µs and 22 with 31 features, half of it float parsing), keeps each
// item's features as a slice sorted by name over one array per list, and
// interns feature names across records. The fuzz test holds it to
// encoding/json's reading of every document it accepts.
package recs
