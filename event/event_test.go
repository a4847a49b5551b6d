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

func TestStringEscapes(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`"\b\f\n\r\t\/\\\""`, "\b\f\n\r\t/\\\""},
		{`"\u00E9\u00e9"`, "éé"},
		{`"a\uD83D\uDE00b"`, "a😀b"},
		{`"\u20AC"`, "€"},
	} {
		s := scanner{buf: []byte(tc.in)}
		got, err := s.readString()
		if err != nil || string(got) != tc.want || s.i != len(tc.in) {
			t.Errorf("readString(%s) = %q, %v (at %d)", tc.in, got, err, s.i)
		}
	}
	for _, bad := range []string{`"\u00G0"`, `"\`, `"\u12`, `"abc`, `"\q"`, "\"\x1f\"", `"\u0041`} {
		s := scanner{buf: []byte(bad)}
		if _, err := s.readString(); err == nil {
			t.Errorf("readString(%q) accepted", bad)
		}
	}
}
