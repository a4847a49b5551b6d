// Package importer brings history into Eddy: MovieLens rating files, CSV
// files of any layout (columns named by a mapping) and Parquet files with
// the archive's columns (Eddy's own archive, or any file that has them),
// published as events to Kafka or to an ingest URL.
//
// It owns reading the sources, the rows-to-events mapping, deterministic
// event ids, ordering by time, pacing-free publishing and the import's
// progress and summary. It does not own the event contract (package
// event) or the transport's guarantees (package ingest, franz-go).
//
// # Guarantees
//
//   - Deterministic event ids. A row without an event_id gets
//     "imp-" + the first 16 bytes (hex) of SHA-256 over the source kind, the
//     file's base name, the row's line (or row) number and the row's bytes.
//     A second import of the same file publishes the same ids, which the
//     feature store's de-duplication drops (and which reach the archive as
//     the same event_id, for readers that de-duplicate).
//   - Times. The event's own time goes to ts (optionally compressed toward
//     the import's start, TimeCompress); the Kafka record's timestamp is the
//     time of import, so the topic's time retention does not delete an old
//     event the moment it is produced.
//   - Order. Rows are published sorted by ts (ties in file order), so the
//     online learner replays history as it happened.
//   - Bad rows. Each is reported with its file and line and counted; the
//     rest are imported. A source that cannot be opened or read is an error
//     at start.
//   - Interruption. A cancelled context stops publishing; everything
//     handed to the sink before is flushed and counted in the summary, and
//     re-running the same import completes it without duplicates
//     downstream.
package importer
