package event

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestDeadLetterJSON(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 5_000_000, time.UTC)
	dl := NewDeadLetter(`event: field "ts": required`, 3, []byte(`{"event_id":"e"}`), at, "http")
	b, err := json.Marshal(dl)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"v":1,"reason":"event: field \"ts\": required","index":3,"raw":"{\"event_id\":\"e\"}",` +
		`"received_at":"2026-11-23T12:00:00.005Z","source":"http"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	var back DeadLetter
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, dl) {
		t.Fatalf("round trip: got %+v, want %+v", back, dl)
	}
}

func TestDeadLetterInvalidUTF8Raw(t *testing.T) {
	raw := []byte("{\"user_id\":\"\xff\"}")
	dl := Rejection{Index: 7, Raw: raw, Err: errors.New("bad")}.DeadLetter(time.Unix(0, 0), "kafka:eddy.events/0@12")
	b, err := json.Marshal(dl)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"raw_base64":`) || strings.Contains(string(b), `"raw":`) {
		t.Fatalf("invalid UTF-8 raw must be base64: %s", b)
	}
	var back DeadLetter
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Raw != string(raw) || back.Index != 7 || back.Reason != "bad" {
		t.Fatalf("got %+v", back)
	}
}

func TestDeadLetterTruncation(t *testing.T) {
	// 3-byte runes so that the limit falls inside one.
	raw := []byte(strings.Repeat("€", MaxDeadLetterRaw/3+10))
	dl := NewDeadLetter("r", 0, raw, time.Unix(0, 0), "http")
	if !dl.Truncated || len(dl.Raw) > MaxDeadLetterRaw || len(dl.Raw) < MaxDeadLetterRaw-3 || !utf8.ValidString(dl.Raw) {
		t.Fatalf("truncated=%v len=%d valid=%v", dl.Truncated, len(dl.Raw), utf8.ValidString(dl.Raw))
	}
	b, _ := json.Marshal(dl)
	if !strings.Contains(string(b), `"truncated":true`) {
		t.Fatal("truncated flag not written")
	}
	small := NewDeadLetter("r", 0, []byte("x"), time.Unix(0, 0), "http")
	if small.Truncated || small.Raw != "x" {
		t.Fatalf("got %+v", small)
	}
	bin := NewDeadLetter("r", 0, append([]byte{0xff}, make([]byte, MaxDeadLetterRaw)...), time.Unix(0, 0), "http")
	if len(bin.Raw) != MaxDeadLetterRaw || !bin.Truncated {
		t.Fatalf("binary raw cut to %d", len(bin.Raw))
	}
}

func TestDeadLetterVersion(t *testing.T) {
	var dl DeadLetter
	err := json.Unmarshal([]byte(`{"v":2,"reason":"x"}`), &dl)
	if !errors.Is(err, ErrUnsupportedSchema) {
		t.Fatalf("got %v, want ErrUnsupportedSchema", err)
	}
	if err := json.Unmarshal([]byte(`{"v":1,"raw":"a","raw_base64":"YQ=="}`), &dl); err == nil {
		t.Fatal("both raw and raw_base64 accepted")
	}
}

func TestParseSchemaHeader(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{{"", 1, true}, {"event/v1", 1, true}, {"event/v2", 0, false}, {"dlq/v1", 0, false}} {
		v, err := ParseSchemaHeader(tc.in)
		if v != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseSchemaHeader(%q) = %d, %v", tc.in, v, err)
		}
		if err != nil && !errors.Is(err, ErrUnsupportedSchema) {
			t.Errorf("error %v is not ErrUnsupportedSchema", err)
		}
	}
}
