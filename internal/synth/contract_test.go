package synth

import (
	"reflect"
	"testing"
	"time"

	"github.com/eddyrec/eddy/event"
)

// TestEventsMeetContract checks generated events against the event
// package's own rules and codec: every event validates, and its JSON decodes
// (strictly) back to the same Event. The determinism hash uses this
// package's canonical form instead, so codec changes cannot move it.
func TestEventsMeetContract(t *testing.T) {
	c := smallConfig(31)
	c.DriftAt, c.DriftKind = 20_000, DriftWatchRatio
	g := mustNew(t, c)
	var buf []byte
	for i := range 50_000 {
		var e event.Event
		g.Next(&e)
		now := e.Time
		if err := e.Validate(now); err != nil {
			t.Fatalf("event %d %+v: %v", i, e, err)
		}
		buf = e.AppendJSON(buf[:0])
		back, err := event.Decode(buf, event.DecodeOptions{Strict: true, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatalf("event %d: decode %s: %v", i, buf, err)
		}
		if !back.Time.Equal(e.Time) {
			t.Fatalf("event %d: time %v decoded as %v", i, e.Time, back.Time)
		}
		back.Time = e.Time
		if !reflect.DeepEqual(back, e) {
			t.Fatalf("event %d: JSON round trip\n%+v\n%+v", i, e, back)
		}
	}
}
