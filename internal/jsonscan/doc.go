// Package jsonscan is the JSON cursor under Eddy's hand-written decoders of
// outside input: events (package event) and served lists (internal/recs).
// It implements exactly RFC 8259, returns strings without allocating when
// they carry no escapes, and leaves what a value means to its caller, so
// that a decoder validates a document in one pass without reflection or
// per-field allocations (encoding/json, 5–20× slower on these documents,
// stays the reference the fuzz tests compare against).
package jsonscan
