// Package snapshot is the file a batch training run leaves behind: every
// user and item row of the trained model as modelrec records — the very
// bytes the model topics carry — plus a JSON description of the run, so
// that promotion (`eddy retrain`) can publish the rows as they are and an
// operator can inspect or archive a model without a broker.
//
// # Layout (version 1)
//
// Little-endian throughout.
//
//	offset size  field
//	0      8     magic "EDDYSNAP"
//	8      4     version (1)
//	12     4     meta length m (≤ 1 MiB)
//	16     m     meta: a JSON object (Meta)
//	...          records, each:
//	               1 kind (modelrec.KindUser or KindItem)
//	               2 key length k (1–256), k bytes of UTF-8 key (the id)
//	               4 value length v (≤ 1 MiB), v bytes of a modelrec Vector
//	end−12 8     record count (uint64)
//	end−4  4     CRC-32C (Castagnoli) of every byte before it
//
// Write creates the file next to its final name and renames it into place
// after an fsync, so a reader never sees half a snapshot; Read checks the
// CRC before it trusts a byte, then decodes every record with modelrec's
// own checks.
package snapshot
