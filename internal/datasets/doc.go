// Package datasets resolves where training and evaluation data come from
// into events or a trainset.Set: a dataset spec (movielens:DIR,
// parquet:PATH, csv:PATH, synthetic[:options]) for `eddy eval` and
// `eddy train --dataset`, or a time range of the archive for `eddy train`
// and the retrain role. It is wiring between the connectors, which read,
// and the learner packages, which do no I/O.
package datasets
