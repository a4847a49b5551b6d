// Package movielens reads the GroupLens MovieLens rating files (ml-100k
// u.data, ml-1m ratings.dat, ml-latest / ml-latest-small ratings.csv) and
// turns them into a time-ordered stream of event.Event values of type
// rating, for replays such as `eddy eval prequential`.
//
// It owns parsing and ordering only. It never bundles or downloads the data:
// the files are licensed by GroupLens for research use and are read from a
// directory the caller names.
package movielens
