package event

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestAppendJSONGolden(t *testing.T) {
	e := Event{
		EventID:     "e-1",
		UserID:      "u \"q\" \\ \n\t\u0001 ü\u2028",
		ItemID:      "i-1",
		Type:        Watch,
		Time:        time.Date(2026, 11, 23, 11, 59, 59, 123_999_999, time.FixedZone("x", 3600)),
		Value:       12.5,
		HasValue:    true,
		Duration:    1e21,
		HasDuration: true,
		RequestID:   "r-9",
		Context:     map[string]string{"z": "1", "a": "2", "m": ""},
	}
	// Written by hand from the contract: fixed key order, ts as unix ms
	// (truncated), sorted context, encoding/json's escaping and number style.
	const want = `{"event_id":"e-1","user_id":"u \"q\" \\ \n\t\u0001 ü\u2028","item_id":"i-1","type":"watch",` +
		`"ts":1795431599123,"value":12.5,"duration":1e+21,"request_id":"r-9","context":{"a":"2","m":"","z":"1"}}`
	got := string(e.AppendJSON(nil))
	if got != want {
		t.Fatalf("AppendJSON\n got %s\nwant %s", got, want)
	}
	// encoding/json is an independent reader of the same text.
	var m map[string]any
	if err := json.Unmarshal([]byte(got), &m); err != nil {
		t.Fatal(err)
	}
	if m["user_id"] != e.UserID || m["ts"] != float64(1795431599123) || m["duration"] != 1e21 {
		t.Errorf("encoding/json read %v", m)
	}
}

func TestAppendJSONOmitsAbsent(t *testing.T) {
	e := Event{EventID: "e", UserID: "u", ItemID: "i", Type: Click, Time: time.UnixMilli(5)}
	const want = `{"event_id":"e","user_id":"u","item_id":"i","type":"click","ts":5}`
	if got := string(e.AppendJSON(nil)); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	e.HasValue = true // a zero value that is present is written
	if got := string(e.AppendJSON(nil)); !strings.Contains(got, `"value":0`) {
		t.Fatalf("got %s, want value 0", got)
	}
}

func TestAppendJSONAlwaysWellFormed(t *testing.T) {
	e := Event{EventID: "a\xffb", UserID: "\xc3", Value: math.NaN(), HasValue: true, Duration: math.Inf(1), HasDuration: true}
	got := e.AppendJSON(nil)
	if !json.Valid(got) {
		t.Fatalf("invalid JSON: %s", got)
	}
	if !strings.Contains(string(got), `"event_id":"a\ufffdb"`) || !strings.Contains(string(got), `"value":null`) {
		t.Fatalf("got %s", got)
	}
}

func TestFloatFormat(t *testing.T) {
	// Expected strings are encoding/json's, computed by it below.
	for _, f := range []float64{0, 1, -0.5, 0.1, 1.0 / 3, 1e-6, 1e-7, 123456789, 1e20, 1e21, 5e-324, math.MaxFloat64} {
		want, _ := json.Marshal(f)
		if got := string(appendFloat(nil, f)); got != string(want) {
			t.Errorf("appendFloat(%v) = %s, encoding/json %s", f, got, want)
		}
	}
}

func TestStringEscapingMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\s/", "\x00\x01\x1f\x7f", "\b\f\n\r\t", "ü😀", "\u2028\u2029", "<>&"} {
		want, _ := json.Marshal(s)
		got := appendString(nil, s)
		// encoding/json also escapes <, > and & for HTML; we don't need to.
		var a, b string
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("appendString(%q) = %s: %v", s, got, err)
		}
		_ = json.Unmarshal(want, &b)
		if a != s || b != s {
			t.Errorf("appendString(%q) = %s reads back as %q", s, got, a)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	events := append(realisticEvents(200),
		Event{EventID: "e", UserID: "ü😀\u2028", ItemID: `"\`, Type: Rating, Time: time.UnixMilli(0).UTC(), Value: 0.5, HasValue: true},
		Event{EventID: "\x00\n", UserID: "u", ItemID: "i", Type: Purchase, Time: time.UnixMilli(MaxTimeMillis - 1).UTC(),
			Value: 1e-7, HasValue: true, Duration: 5e-324, HasDuration: true, RequestID: "\t",
			Context: map[string]string{"k": strings.Repeat("v", MaxContextValueBytes), strings.Repeat("k", MaxContextKeyBytes): ""}},
		Event{EventID: "e", UserID: "u", ItemID: "i", Type: Watch, Time: time.UnixMilli(1).UTC(), Value: math.MaxFloat64, HasValue: true},
	)
	opts := DecodeOptions{Strict: true} // canonical output has no unknown fields
	opts.Now = func() time.Time { return time.UnixMilli(MaxTimeMillis).UTC() }
	for i := range events {
		e := &events[i]
		if err := e.Validate(time.Time{}); err != nil {
			t.Fatalf("event %d invalid: %v", i, err)
		}
		b := e.AppendJSON(nil)
		got, err := Decode(b, opts)
		if err != nil {
			t.Fatalf("Decode(%s): %v", b, err)
		}
		if !reflect.DeepEqual(&got, e) {
			t.Fatalf("round trip of %s\n got %+v\nwant %+v", b, got, *e)
		}
		if b2 := got.AppendJSON(nil); string(b2) != string(b) {
			t.Fatalf("re-encoding differs:\n%s\n%s", b, b2)
		}
	}
}

func TestMarshalJSON(t *testing.T) {
	e := realisticEvents(1)[0]
	b, err := json.Marshal(struct{ E Event }{e})
	if err != nil {
		t.Fatal(err)
	}
	var back struct{ E Event }
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.E, e) {
		t.Fatalf("got %+v, want %+v", back.E, e)
	}
}

func TestValidate(t *testing.T) {
	good := Event{EventID: "e", UserID: "u", ItemID: "i", Type: Click, Time: testNow}
	tests := []struct {
		name  string
		edit  func(e *Event)
		class string
	}{
		{"good", func(e *Event) {}, "ok"},
		{"empty event_id", func(e *Event) { e.EventID = "" }, "field event_id"},
		{"control in user_id", func(e *Event) { e.UserID = "a\x00" }, "field user_id"},
		{"invalid utf8 item_id", func(e *Event) { e.ItemID = "\xff" }, "field item_id"},
		{"invalid type", func(e *Event) { e.Type = TypeInvalid }, "field type"},
		{"type out of range", func(e *Event) { e.Type = Rating + 1 }, "field type"},
		{"zero time", func(e *Event) { e.Time = time.Time{} }, "field ts"},
		{"pre-1970", func(e *Event) { e.Time = time.Unix(-1, 0) }, "field ts"},
		{"future", func(e *Event) { e.Time = testNow.Add(time.Hour) }, "field ts"},
		{"NaN value", func(e *Event) { e.Value, e.HasValue = math.NaN(), true }, "field value"},
		{"watch without value", func(e *Event) { e.Type = Watch }, "field value"},
		{"zero duration", func(e *Event) { e.HasDuration = true }, "field duration"},
		{"long request_id", func(e *Event) { e.RequestID = strings.Repeat("r", 129) }, "field request_id"},
		{"big context", func(e *Event) {
			e.Context = map[string]string{}
			for i := 0; i < 17; i++ {
				e.Context[string(rune('a'+i))] = ""
			}
		}, "field context"},
		{"context control", func(e *Event) { e.Context = map[string]string{"k": "\x1b"} }, "field context"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := good
			tc.edit(&e)
			if got := errClass(e.Validate(testNow)); got != tc.class {
				t.Fatalf("Validate: class %q, want %q", got, tc.class)
			}
		})
	}
	future := good
	future.Time = testNow.Add(time.Hour)
	if err := future.Validate(time.Time{}); err != nil {
		t.Errorf("zero now must skip the future rule: %v", err)
	}
}

// TestParseRFC3339AgainstTimePackage checks the hand-written parser against
// time.Parse, an independent implementation, on inputs both must accept.
func TestParseRFC3339AgainstTimePackage(t *testing.T) {
	for _, s := range []string{
		"1970-01-01T00:00:00Z", "2000-02-29T23:59:59.999Z", "2026-11-23T12:00:00.1+14:00",
		"2026-11-23T12:00:00.123456789-12:59", "9999-12-31T23:59:59.999999999Z", "2024-12-31T00:00:00+00:00",
		"2026-11-23T12:00:00-00:00", "1999-06-30T12:34:56.7891Z",
	} {
		got, ferr := parseRFC3339Millis([]byte(s))
		if ferr != nil {
			t.Errorf("parse %q: %v", s, ferr)
			continue
		}
		ref, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		if want := ref.UnixMilli(); got != want {
			t.Errorf("parse %q = %d, time.Parse says %d", s, got, want)
		}
	}
}
