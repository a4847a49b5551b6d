// Package archive keeps Eddy's events and served lists beyond Kafka's
// retention: the archive role writes <prefix>events and <prefix>recs to
// Parquet files, exactly once, and Scan reads them back for full
// retraining, offline evaluation, audits and replays. Files open in any
// Parquet reader (DuckDB, pyarrow, Spark); the CI reads them with pyarrow
// and DuckDB.
//
// It owns the file layout, the schema, the exactly-once protocol and the
// reader. It does not own the events' meaning (package event) or what is
// trained on them (learner).
//
// # Layout
//
//	<root>/events/dt=YYYY-MM-DD/hour=HH/part-<partition>-<first>-<last>.parquet
//	<root>/recs/dt=YYYY-MM-DD/hour=HH/part-<partition>-<first>-<last>.parquet
//	<root>/_state/<kind>/partition-<partition>.json
//
// The event's own time (a served list's serving time) decides dt and hour,
// in UTC, so history imported today lands in the hours it happened in.
// Each flush of a partition covers the offset range [first, last] (every
// record read since the previous flush) and writes one file per hour its
// records fall in; the range is in the file's name and footer. Rows are
// sorted by ts within a file. Names starting with '.' are temporary files,
// which readers skip (DuckDB's and pyarrow's globs do too).
//
// The root is a local directory or an S3-compatible bucket
// (s3://bucket/prefix), through minio-go: a small, well-kept client
// (Apache-2.0) for AWS S3 and S3-compatible services; the AWS SDK v2 would
// bring a dozen modules for the five calls used here.
//
// # Schema, version 1
//
// Events (EventRow): event_id, user_id, item_id, type (strings; the ids
// and type dictionary-encoded), ts (TIMESTAMP(MILLIS, UTC)), value,
// duration (optional DOUBLE), request_id (optional string), context
// (MAP<string,string>), kafka_partition (INT32), kafka_offset (INT64),
// kafka_timestamp (TIMESTAMP(MILLIS, UTC): when the record was produced).
//
// Served lists (RecsRow): request_id, user_id, variant, model_version,
// policy (optional strings), fallback (BOOLEAN), ts, items (LIST of
// {item_id, position INT32, score DOUBLE, features MAP<string,DOUBLE>}),
// kafka_partition, kafka_offset, kafka_timestamp.
//
// Every file carries, in its footer's key-value metadata,
// eddy.archive.schema ("eddy.archive.events/1" or "eddy.archive.recs/1"),
// eddy.archive.topic, .partition, .first_offset and .last_offset. A change
// of columns, types or meaning bumps SchemaVersion; Scan refuses a file of
// another version with ErrSchemaVersion rather than misread it.
//
// Files are zstd-compressed, with version-1 data pages (the ones every
// reader takes), column statistics, and row groups of at most
// RowGroupRows rows: Scan skips hour folders and row groups (by their ts
// min/max) outside the range it is asked for.
//
// # Exactly once
//
// A partition's progress is its state file in the archive itself (not the
// group's offsets), so any instance that is assigned the partition, on any
// machine that reaches the archive, resumes after its last archived
// offset. A flush is committed thus (partitionState):
//
//  1. the state names the flush as pending: its range and its files;
//  2. each file is written atomically: locally to a temporary name,
//     fsynced, renamed and the folder fsynced; on S3 one PUT;
//  3. the state moves past the range and drops the pending flush.
//
// A crash before 3 leaves a pending flush: at the next assignment its files
// are deleted and the range is read again from Kafka, whole. Scan reads
// only committed files, so a reader beside the role or after a crash sees
// every record once. Records that are not valid events (or served lists)
// are counted (eddy_archive_invalid_records_total) and not archived; their
// offsets are still covered. Retention that deleted records before they
// were archived is logged and counted (eddy_archive_retention_gap_records_total).
//
// A failed write (a full disk, an unreachable bucket) is retried with the
// same records after a backoff; meanwhile the partition stops fetching,
// so memory stays bounded, and readiness fails with the error. Once the
// store can be written again the role goes on, losing nothing.
//
// # Reading
//
//	st, _ := archive.OpenStore(ctx, "/data/archive", archive.S3Options{})
//	stats, err := archive.Scan(ctx, st, from, to, func(r *archive.EventRow) error { ...; return nil })
//
// SQL over the archive with DuckDB:
//
//	SELECT type, count(*) FROM read_parquet('data/archive/events/*/*/*.parquet', hive_partitioning = true) GROUP BY type;
//
// # Model snapshots
//
// The batch trainer leaves its models beside the data they were trained
// on, under models/ (WriteModel, ReadModel): one Parquet file per model, a
// row per user and item with the fields of its model-topic record
// (learner/modelrec), the run's description in the footer, schema
// "eddy.model/1". Scan never reads them.
package archive
