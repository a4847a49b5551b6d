// Package modelrec defines the record layouts of Eddy's compacted model
// topics, the contract between the learner (which writes them) and the
// scorer (which replays them into memory):
//
//   - <prefix>model.users: key = user_id, value = a Vector record of kind
//     KindUser (the user's latent factors plus the ids of the items the user
//     recently consumed, so the scorer can exclude them without reading the
//     feature store);
//   - <prefix>model.items: key = item_id, value = a Vector record of kind
//     KindItem (latent factors, bias and the decayed counts the scorer
//     needs for the popularity fallback and the ranker's item features);
//   - <prefix>model.ranker: key = the ranker's name ("default", or a
//     variant name), value = a Ranker record (versioned JSON).
//
// A record with a nil value is a tombstone: the key was deleted.
//
// # Vector layout (schema version 1)
//
// All integers and floats are little-endian; floats are IEEE-754 float32
// and must be finite.
//
//	offset size field
//	0      1    magic 0xED
//	1      1    schema version (1)
//	2      1    kind: 1 user, 2 item
//	3      1    flags, must be 0 in version 1
//	4      2    dim, 1–1024
//	6      2    seen count n, 0–1024 (0 for items)
//	8      8    model version (uint64)
//	16     8    update counter: updates applied to this row (uint64)
//	24     8    ts: event time of the newest applied update, unix ms (int64)
//	32     4    bias (float32; items: popularity offset, users: 0)
//	36     4    popularity: decayed positive-event count as of ts (float32 ≥ 0)
//	40     4    impressions: decayed impression count as of ts (float32 ≥ 0)
//	44     4    reserved, must be 0
//	48     4·dim latent factors (float32)
//	...         n seen item ids, each a uint16 byte length (1–256) and the
//	            UTF-8 bytes, oldest first
//
// The header is fixed-size so a reader can check a record's dimension and
// version before touching the payload, and decode the vector straight into
// a preallocated slice. Anything after the last field is an error, so a
// newer writer must bump the schema version rather than append silently.
//
// This package owns only the byte layouts. It does no I/O and knows nothing
// about Kafka or how the learner computes the values.
package modelrec
