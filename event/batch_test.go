package event

import (
	"bytes"
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestDecodeBatch(t *testing.T) {
	good := obj()
	bad := obj("user_id", `""`)
	type rej struct {
		index int
		class string
	}
	tests := []struct {
		name     string
		ct       string
		body     string
		max      int
		class    string // errClass of the body error
		accepted int
		rejected []rej
	}{
		{"object", "application/json", good, 0, "ok", 1, nil},
		{"object with charset", "application/json; charset=UTF-8", good, 0, "ok", 1, nil},
		{"bad object is a rejection", "application/json", bad, 0, "ok", 0, []rej{{0, "field user_id"}}},
		{"malformed object", "application/json", good[:20], 0, "malformed", 0, nil},
		{"object then garbage", "application/json", good + "]", 0, "malformed", 0, nil},
		{"array", "application/json", " [" + good + " ,\n" + good + "] ", 0, "ok", 2, nil},
		{"array with a bad event", "application/json", "[" + good + "," + bad + "," + good + "]", 0, "ok", 2, []rej{{1, "field user_id"}}},
		{"array with non-objects", "application/json", `[1,` + good + `,"x",[],null]`, 0, "ok", 1,
			[]rej{{0, "notobject"}, {2, "notobject"}, {3, "notobject"}, {4, "notobject"}}},
		{"array with malformed element", "application/json", "[" + good + `,{"a":}]`, 0, "malformed", 0, nil},
		{"truncated array", "application/json", "[" + good + "," + good[:40], 0, "malformed", 0, nil},
		{"unterminated array", "application/json", "[" + good, 0, "malformed", 0, nil},
		{"array trailing comma", "application/json", "[" + good + ",]", 0, "malformed", 0, nil},
		{"array missing comma", "application/json", "[" + good + good + "]", 0, "malformed", 0, nil},
		{"array then garbage", "application/json", "[" + good + "]x", 0, "malformed", 0, nil},
		{"empty array", "application/json", " [ ] ", 0, "empty", 0, nil},
		{"empty body", "application/json", "", 0, "empty", 0, nil},
		{"blank body", "application/json", " \r\n\t", 0, "empty", 0, nil},
		{"not json", "application/json", "hello", 0, "malformed", 0, nil},
		{"json scalar", "application/json", "42", 0, "malformed", 0, nil},
		{"NUL body", "application/json", "\x00", 0, "malformed", 0, nil},
		{"NUL after object", "application/json", "{}\x00", 0, "malformed", 0, nil},
		{"NUL after array", "application/json", "[" + good + "]\x00", 0, "malformed", 0, nil},
		{"ndjson NUL line is not blank", "application/x-ndjson", good + "\n\x00\n" + good, 0, "ok", 2, []rej{{1, "malformed"}}},
		{"array at max", "application/json", "[" + good + "," + good + "]", 2, "ok", 2, nil},
		{"array over max", "application/json", "[" + good + "," + good + "," + good + "]", 2, "toomany", 0, nil},
		{"array over max counts rejections", "application/json", "[1,2,3]", 2, "toomany", 0, nil},
		{"ndjson", "application/x-ndjson", good + "\n" + good + "\n", 0, "ok", 2, nil},
		{"jsonl no final newline", "application/jsonl", good + "\n" + good, 0, "ok", 2, nil},
		{"ndjson crlf", "application/x-ndjson", good + "\r\n" + good + "\r\n", 0, "ok", 2, nil},
		{"ndjson blank lines not counted", "application/x-ndjson",
			"\n  \n" + good + "\n\n\t\r\n" + bad + "\n" + good + "\n\n", 0, "ok", 2, []rej{{1, "field user_id"}}},
		{"ndjson malformed line", "application/x-ndjson", good + "\n{\"event_id\":\n" + good, 0, "ok", 2, []rej{{1, "malformed"}}},
		{"ndjson two objects on a line", "application/x-ndjson", good + good + "\n" + good, 0, "ok", 1, []rej{{0, "malformed"}}},
		{"ndjson array line", "application/x-ndjson", "[" + good + "]\n" + good, 0, "ok", 1, []rej{{0, "notobject"}}},
		{"ndjson all lines bad", "application/x-ndjson", "x\ny\n", 0, "ok", 0, []rej{{0, "malformed"}, {1, "malformed"}}},
		{"ndjson only blank lines", "application/x-ndjson", "\n \n\r\n", 0, "empty", 0, nil},
		{"ndjson at max", "application/x-ndjson", good + "\n\n" + good + "\n", 2, "ok", 2, nil},
		{"ndjson over max", "application/x-ndjson", good + "\n" + good + "\n" + good, 2, "toomany", 0, nil},
		{"text/plain", "text/plain", good, 0, "contenttype", 0, nil},
		{"no content type", "", good, 0, "contenttype", 0, nil},
		{"latin1", "application/json; charset=iso-8859-1", good, 0, "contenttype", 0, nil},
		{"garbage content type", "application/json; ;", good, 0, "contenttype", 0, nil},
		{"content type case", "Application/JSON", good, 0, "ok", 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOpts
			opts.MaxEvents = tc.max
			events, rejected, err := DecodeBatch([]byte(tc.body), tc.ct, opts)
			if got := errClass(err); got != tc.class {
				t.Fatalf("error %v (class %q), want class %q", err, got, tc.class)
			}
			if err != nil {
				if events != nil || rejected != nil {
					t.Fatalf("body error %v came with %d events and %d rejections", err, len(events), len(rejected))
				}
				return
			}
			if len(events) != tc.accepted {
				t.Errorf("accepted %d, want %d", len(events), tc.accepted)
			}
			var got []rej
			for _, r := range rejected {
				got = append(got, rej{r.Index, errClass(r.Err)})
			}
			if !reflect.DeepEqual(got, tc.rejected) {
				t.Errorf("rejected %v, want %v", got, tc.rejected)
			}
		})
	}
}

// TestDecodeBatchLarge: one bad event in the middle of 10,000 costs only
// that event, in both framings.
func TestDecodeBatchLarge(t *testing.T) {
	const n, badAt = 10_000, 5_000
	events := realisticEvents(n)
	bad := []byte(obj("type", `"teleport"`))
	var arr, nd []byte
	arr = append(arr, '[')
	for i := range events {
		if i > 0 {
			arr = append(arr, ",\n"...)
		}
		line := events[i].AppendJSON(nil)
		if i == badAt {
			line = bad
		}
		arr = append(arr, line...)
		nd = append(append(nd, line...), '\n')
	}
	arr = append(arr, ']')
	for _, tc := range []struct {
		ct   string
		body []byte
	}{{"application/json", arr}, {"application/x-ndjson", nd}} {
		t.Run(tc.ct, func(t *testing.T) {
			got, rejected, err := DecodeBatch(tc.body, tc.ct, testOpts)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != n-1 {
				t.Fatalf("accepted %d, want %d", len(got), n-1)
			}
			if len(rejected) != 1 || rejected[0].Index != badAt {
				t.Fatalf("rejected %+v, want one at index %d", rejected, badAt)
			}
			if !bytes.Equal(rejected[0].Raw, bad) {
				t.Errorf("Raw = %q, want %q", rejected[0].Raw, bad)
			}
			var fe *FieldError
			if !errors.As(rejected[0].Err, &fe) || fe.Field != "type" {
				t.Errorf("Err = %v, want a type FieldError", rejected[0].Err)
			}
			// The accepted events are the others, in order.
			want := append(append([]Event(nil), events[:badAt]...), events[badAt+1:]...)
			if !reflect.DeepEqual(got, want) {
				t.Fatal("accepted events differ from the encoded ones")
			}
		})
	}
}

func TestRejectionRawIsACopy(t *testing.T) {
	body := []byte("[" + obj("user_id", `""`) + "]")
	_, rejected, err := DecodeBatch(body, "application/json", testOpts)
	if err != nil || len(rejected) != 1 {
		t.Fatalf("got %v, %v", rejected, err)
	}
	want := string(rejected[0].Raw)
	if want != strings.Trim(string(body), "[]") {
		t.Fatalf("Raw = %q", want)
	}
	for i := range body {
		body[i] = 'X'
	}
	if string(rejected[0].Raw) != want {
		t.Fatal("Raw aliases the body")
	}
}

func TestDecodeBatchStrict(t *testing.T) {
	body := []byte(obj() + "\n" + obj("extra", `1`) + "\n")
	for _, strict := range []bool{false, true} {
		opts := testOpts
		opts.Strict = strict
		events, rejected, err := DecodeBatch(body, "application/x-ndjson", opts)
		if err != nil {
			t.Fatal(err)
		}
		wantAccepted := 2
		if strict {
			wantAccepted = 1
		}
		if len(events) != wantAccepted || len(events)+len(rejected) != 2 {
			t.Errorf("strict=%v: accepted %d rejected %d, want accepted %d", strict, len(events), len(rejected), wantAccepted)
		}
	}
}

// TestDecodeBatchBlankLinesBoundedMemory: a body of blank lines must not
// make the decoder reserve room for one event per line.
func TestDecodeBatchBlankLinesBoundedMemory(t *testing.T) {
	body := append(bytes.Repeat([]byte{'\n'}, 1<<20), obj()...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	events, _, err := DecodeBatch(body, "application/x-ndjson", testOpts)
	runtime.ReadMemStats(&after)
	if err != nil || len(events) != 1 {
		t.Fatalf("got %d events, %v", len(events), err)
	}
	// One event per line would be ~140 MiB; the bound is a few MiB.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Fatalf("decoding a 1 MiB body allocated %d MiB", grew>>20)
	}
}
