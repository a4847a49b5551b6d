// Package snapshot turns a trained batch model into the rows of the model
// topics: one modelrec Vector per user and item, keyed by its id, with the
// fields the online stages keep (a user's recently consumed items, an
// item's popularity, update counts and times), and Meta, the description
// of the run that a stored snapshot carries.
//
// The package does no I/O: connectors/archive stores the rows as a Parquet
// snapshot (WriteModel) that promotion publishes as they are and an
// operator can audit with DuckDB.
package snapshot
