//go:build race

package stage

// raceEnabled: the race detector slows the stages about tenfold, which
// changes how stale each partition's item replica is (see
// TestServiceEndToEnd).
const raceEnabled = true
