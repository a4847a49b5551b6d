package synth

import (
	"testing"

	"github.com/eddyrec/eddy/event"
)

// BenchmarkNext measures the steady-state cost of one event read into a
// reused Event (the way a producer loop uses the generator).
func BenchmarkNext(b *testing.B) {
	g := mustNew(b, DefaultConfig())
	var e event.Event
	b.ReportAllocs()
	for b.Loop() {
		g.Next(&e)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkNextFresh reads every event into a new Event, so each gets its
// own Context map (the way a caller that keeps events uses it).
func BenchmarkNextFresh(b *testing.B) {
	g := mustNew(b, DefaultConfig())
	b.ReportAllocs()
	for b.Loop() {
		var e event.Event
		g.Next(&e)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkNew measures model construction and calibration at the defaults.
func BenchmarkNew(b *testing.B) {
	c := DefaultConfig()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(c); err != nil {
			b.Fatal(err)
		}
	}
}
