//go:build race

package importer

// raceEnabled: under -race, checkptr makes parquet-go's unsafe.Slice over a
// corrupt byte-array page a fatal error instead of the recoverable panic
// it is in other builds (which archive.Recover turns into ErrCorrupt), so
// the corruption tests run only without -race (make unit).
const raceEnabled = true
