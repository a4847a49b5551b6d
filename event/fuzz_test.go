package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/eddyrec/eddy/internal/jsonscan"
)

// fuzzOpts accepts any representable time, so that fuzzing explores the
// codec rather than the clock.
var fuzzOpts = DecodeOptions{Now: func() time.Time { return time.UnixMilli(MaxTimeMillis).UTC() }}

func addSeeds(f *testing.F) {
	for _, s := range []string{
		obj(),
		obj("ts", `"2026-11-23T13:30:00.123+01:30"`),
		obj("type", `"watch"`, "value", `12.5`, "duration", `1e2`, "request_id", `"r"`, "context", `{"a":"b","c":"\u00fc"}`),
		obj("type", `"rating"`, "value", `4.5`),
		obj("user_id", `"\ud83d\ude00\u2028"`, "extra", `[{"x":null},true,-0.1e-3]`),
		obj("user_id", "\"\xff\""),
		obj("user_id", `"\ud800"`),
		obj("ts", `1.5`),
		obj("value", `1e999`),
		`{"event_id":"e","event_id":"f"}`,
		"[" + obj() + ",1]",
		"",
		"{",
	} {
		f.Add([]byte(s))
	}
}

func FuzzDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, strict := range []bool{false, true} {
			opts := fuzzOpts
			opts.Strict = strict
			e, err := Decode(data, opts)
			if err != nil {
				// Every error is one of the documented classes.
				if c := errClass(err); strings.HasPrefix(c, "other") || c == "toomany" || c == "contenttype" {
					t.Fatalf("unexpected error class %q: %v", c, err)
				}
				if errors.Is(err, ErrMalformed) && json.Valid(data) && bytes.Count(data, []byte{'['})+bytes.Count(data, []byte{'{'}) < jsonscan.MaxNesting {
					t.Fatalf("called malformed, but encoding/json finds it valid: %v", err)
				}
				continue
			}
			// Accepted input is JSON that encoding/json reads the same way.
			// UseNumber: an ignored unknown field may hold 1e700, which is
			// valid JSON but not a float64.
			var m map[string]any
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.UseNumber()
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("accepted %q, but encoding/json: %v", data, err)
			}
			if m["user_id"] != e.UserID || m["item_id"] != e.ItemID || m["event_id"] != e.EventID || m["type"] != e.Type.String() {
				t.Fatalf("encoding/json reads %v, we read %+v", m, e)
			}
			if !utf8.ValidString(e.UserID) || !utf8.ValidString(e.ItemID) || !utf8.ValidString(e.EventID) || !utf8.ValidString(e.RequestID) {
				t.Fatalf("accepted invalid UTF-8: %+v", e)
			}
			if err := e.Validate(opts.Now()); err != nil {
				t.Fatalf("decoded event fails Validate: %v", err)
			}
			// Round trip through the canonical form, strict.
			out := e.AppendJSON(nil)
			if !json.Valid(out) {
				t.Fatalf("AppendJSON produced invalid JSON %q", out)
			}
			back, err := Decode(out, DecodeOptions{Strict: true, Now: opts.Now})
			if err != nil {
				t.Fatalf("canonical %q does not decode: %v", out, err)
			}
			if !reflect.DeepEqual(back, e) {
				t.Fatalf("round trip of %q\n got %+v\nwant %+v", out, back, e)
			}
			if out2 := back.AppendJSON(nil); !bytes.Equal(out, out2) {
				t.Fatalf("canonical form not stable:\n%s\n%s", out, out2)
			}
		}
	})
}

var fuzzContentTypes = []string{"application/json", "application/x-ndjson", "application/jsonl; charset=utf-8", "text/plain"}

func FuzzDecodeBatch(f *testing.F) {
	for _, s := range []string{
		"[" + obj() + "," + obj("user_id", `""`) + ",1]",
		obj() + "\n\n" + obj("ts", `"x"`) + "\n{\n",
		"[]",
		" ",
	} {
		for ct := range fuzzContentTypes {
			f.Add([]byte(s), uint8(ct), uint8(0))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, ctIndex, maxEvents uint8) {
		ct := fuzzContentTypes[int(ctIndex)%len(fuzzContentTypes)]
		opts := fuzzOpts
		opts.MaxEvents = int(maxEvents % 8)
		events, rejected, err := DecodeBatch(body, ct, opts)
		if err != nil {
			if events != nil || rejected != nil {
				t.Fatalf("body error %v with results", err)
			}
			if c := errClass(err); strings.HasPrefix(c, "other") || c == "notobject" || strings.HasPrefix(c, "field") {
				t.Fatalf("unexpected body error class %q: %v", c, err)
			}
			if ct == "text/plain" != errors.Is(err, ErrUnsupportedContentType) {
				t.Fatalf("content type %q: %v", ct, err)
			}
			// A body that is JSON but neither object nor array is malformed
			// by the contract; otherwise malformed must mean invalid JSON.
			first := bytes.TrimLeft(body, " \t\r\n")
			if ct == "application/json" && errors.Is(err, ErrMalformed) && json.Valid(body) &&
				(first[0] == '{' || first[0] == '[') &&
				bytes.Count(body, []byte{'['})+bytes.Count(body, []byte{'{'}) < jsonscan.MaxNesting {
				t.Fatalf("called malformed, but encoding/json finds it valid: %v", err)
			}
			return
		}
		if ct == "text/plain" {
			t.Fatal("text/plain accepted")
		}
		n := len(events) + len(rejected)
		if n == 0 {
			t.Fatal("no error and no events")
		}
		if opts.MaxEvents > 0 && n > opts.MaxEvents {
			t.Fatalf("%d elements with MaxEvents %d", n, opts.MaxEvents)
		}
		if ct == "application/json" && !json.Valid(body) {
			t.Fatalf("JSON body accepted but encoding/json finds it invalid")
		}
		last := -1
		for _, r := range rejected {
			if r.Index <= last || r.Index >= n || r.Err == nil {
				t.Fatalf("bad rejection %+v after index %d of %d", r, last, n)
			}
			last = r.Index
			if !bytes.Contains(body, r.Raw) {
				t.Fatalf("Raw %q is not part of the body", r.Raw)
			}
		}
		for i := range events {
			back, err := Decode(events[i].AppendJSON(nil), opts)
			if err != nil || !reflect.DeepEqual(back, events[i]) {
				t.Fatalf("event %d does not round-trip: %v", i, err)
			}
		}
	})
}

// FuzzParseRFC3339 checks the hand-written timestamp parser against
// time.Parse: whatever it accepts, time.Parse must read as the same instant.
func FuzzParseRFC3339(f *testing.F) {
	for _, s := range []string{"2026-11-23T12:00:00Z", "2026-11-23T12:00:00.123456+05:30", "2024-02-29t00:00:00z", "1970-01-01T00:00:00-00:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, ferr := parseRFC3339Millis([]byte(s))
		if ferr != nil {
			return
		}
		// time.Parse wants upper-case T and Z, which RFC 3339 does not.
		ref, err := time.Parse(time.RFC3339Nano, strings.NewReplacer("t", "T", "z", "Z").Replace(s))
		if err != nil {
			t.Fatalf("accepted %q, time.Parse: %v", s, err)
		}
		if want := ref.UnixMilli(); ms != want {
			t.Fatalf("%q: %d, time.Parse %d", s, ms, want)
		}
	})
}

// FuzzDecodeInto: DecodeInto into an Event that holds an earlier event
// (with a context map to reuse) decodes as Decode does — same error, same
// event — except that an event without context has an empty map, not nil.
func FuzzDecodeInto(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		prev, err := Decode([]byte(obj("type", `"watch"`, "value", `1`, "context", `{"a":"b","zz":"y"}`)), fuzzOpts)
		if err != nil {
			t.Fatal(err)
		}
		for _, strict := range []bool{false, true} {
			opts := fuzzOpts
			opts.Strict = strict
			want, werr := Decode(data, opts)
			got := prev
			gerr := DecodeInto(&got, data, opts)
			if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
				t.Fatalf("Decode: %v; DecodeInto: %v", werr, gerr)
			}
			if len(got.Context) == 0 && len(want.Context) == 0 {
				got.Context, want.Context = nil, nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("DecodeInto\n got %+v\nwant %+v", got, want)
			}
			prev = got
			if prev.Context == nil {
				prev.Context = map[string]string{"left": "over"}
			}
		}
	})
}
