package event

import (
	"math"
	"testing"
)

func TestTypeNames(t *testing.T) {
	want := []string{"impression", "click", "watch", "like", "dislike", "skip", "purchase", "rating"}
	for i, typ := range Types {
		if typ.String() != want[i] {
			t.Errorf("Types[%d].String() = %q, want %q", i, typ.String(), want[i])
		}
		if got, ok := ParseType(want[i]); !ok || got != typ {
			t.Errorf("ParseType(%q) = %v, %v", want[i], got, ok)
		}
	}
	if _, ok := ParseType("Click"); ok {
		t.Error("ParseType is case-sensitive")
	}
	if TypeInvalid.String() != "invalid" || Type(200).String() != "invalid" {
		t.Error("out-of-range types must print as invalid")
	}
}

func TestWatchRatio(t *testing.T) {
	for _, tc := range []struct {
		e    Event
		want float64
	}{
		{Event{Type: Watch, Value: 30, HasValue: true, Duration: 120, HasDuration: true}, 0.25},
		{Event{Type: Watch, Value: 300, HasValue: true, Duration: 120, HasDuration: true}, 1},
		{Event{Type: Watch, Value: -1, HasValue: true, Duration: 120, HasDuration: true}, 0},
		{Event{Type: Watch, Value: 30, HasValue: true}, -1},
		{Event{Type: Watch, Value: 30, HasValue: true, HasDuration: true}, -1},
		{Event{Type: Click, Value: 30, HasValue: true, Duration: 120, HasDuration: true}, -1},
	} {
		if got := tc.e.WatchRatio(); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("WatchRatio(%+v) = %v, want %v", tc.e, got, tc.want)
		}
	}
}
