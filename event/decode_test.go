package event

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDecodeValid(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UTC()
	}
	base := Event{EventID: "e1", UserID: "u1", ItemID: "i1", Type: Click, Time: testNow}
	with := func(f func(e *Event)) Event {
		e := base
		f(&e)
		return e
	}
	tests := []struct {
		name string
		in   string
		want Event
	}{
		{"minimal", obj(), base},
		{"surrounding space", " \n\t" + obj() + "\r\n ", base},
		{"keys in any order", `{"ts":` + nowMs + `,"type":"click","item_id":"i1","user_id":"u1","event_id":"e1"}`, base},
		{"ts rfc3339 Z", obj("ts", `"2026-11-23T12:00:00Z"`), base},
		{"ts rfc3339 offset", obj("ts", `"2026-11-23T13:30:00+01:30"`), base},
		{"ts rfc3339 negative offset", obj("ts", `"2026-11-23T07:00:00-05:00"`), base},
		{"ts rfc3339 lowercase", obj("ts", `"2026-11-23t12:00:00z"`), base},
		{"ts fraction truncated to ms", obj("ts", `"2026-11-23T11:59:59.123987654Z"`),
			with(func(e *Event) { e.Time = at("2026-11-23T11:59:59.123Z") })},
		{"ts one fraction digit", obj("ts", `"2026-11-23T11:59:59.5Z"`),
			with(func(e *Event) { e.Time = at("2026-11-23T11:59:59.5Z") })},
		{"ts leap day", obj("ts", `"2024-02-29T00:00:00Z"`),
			with(func(e *Event) { e.Time = at("2024-02-29T00:00:00Z") })},
		{"ts epoch ms", obj("ts", `0`), with(func(e *Event) { e.Time = time.UnixMilli(0).UTC() })},
		{"ts negative zero", obj("ts", `-0`), with(func(e *Event) { e.Time = time.UnixMilli(0).UTC() })},
		{"ts exactly 5m ahead", obj("ts", `1795435500000`),
			with(func(e *Event) { e.Time = testNow.Add(5 * time.Minute) })},
		{"ts null? no: explicit ms", obj("ts", `1795435199999`),
			with(func(e *Event) { e.Time = testNow.Add(-time.Millisecond) })},
		{"watch zero", obj("type", `"watch"`, "value", `0`, "duration", `120.5`),
			with(func(e *Event) { e.Type, e.Value, e.HasValue, e.Duration, e.HasDuration = Watch, 0, true, 120.5, true })},
		{"rating bounds low", obj("type", `"rating"`, "value", `0.5`),
			with(func(e *Event) { e.Type, e.Value, e.HasValue = Rating, 0.5, true })},
		{"rating bounds high exp", obj("type", `"rating"`, "value", `0.5e1`),
			with(func(e *Event) { e.Type, e.Value, e.HasValue = Rating, 5, true })},
		{"click value optional", obj("value", `3`), with(func(e *Event) { e.Value, e.HasValue = 3, true })},
		{"null optional fields", obj("value", `null`, "duration", `null`, "request_id", `null`, "context", `null`), base},
		{"empty request_id", obj("request_id", `""`), base},
		{"request_id", obj("request_id", `"r-1"`), with(func(e *Event) { e.RequestID = "r-1" })},
		{"context", obj("context", `{"b":"2","a":""}`), with(func(e *Event) { e.Context = map[string]string{"a": "", "b": "2"} })},
		{"empty context is nil", obj("context", `{ }`), base},
		{"unicode ids", obj("user_id", `"ü-😀"`, "item_id", `"\u00fc-\ud83d\ude00"`),
			with(func(e *Event) { e.UserID, e.ItemID = "ü-😀", "ü-😀" })},
		{"escapes in event_id", obj("event_id", `"a\"b\\c\/d\n"`), with(func(e *Event) { e.EventID = "a\"b\\c/d\n" })},
		{"escaped key", `{"event\u005fid":"e1","user_id":"u1","item_id":"i1","type":"click","ts":` + nowMs + `}`, base},
		{"unknown fields ignored when lenient", obj("app", `{"v":[1,2.5e3,true,false,null,"x",{}]}`, "n", `-0.0`), base},
		{"id of max length", obj("user_id", `"`+strings.Repeat("u", 256)+`"`),
			with(func(e *Event) { e.UserID = strings.Repeat("u", 256) })},
		{"event_id of max length", obj("event_id", `"`+strings.Repeat("e", 128)+`"`),
			with(func(e *Event) { e.EventID = strings.Repeat("e", 128) })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode([]byte(tc.in), testOpts)
			if err != nil {
				t.Fatalf("Decode(%s): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Decode(%s)\n got %+v\nwant %+v", tc.in, got, tc.want)
			}
			if got.Time.Location() != time.UTC {
				t.Errorf("Time location %v, want UTC", got.Time.Location())
			}
		})
	}
}

func TestDecodeRules(t *testing.T) {
	long := func(n int) string { return `"` + strings.Repeat("x", n) + `"` }
	ctx17 := func() string {
		var b strings.Builder
		b.WriteByte('{')
		for i := 0; i < 17; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`"k` + string(rune('a'+i)) + `":"v"`)
		}
		b.WriteByte('}')
		return b.String()
	}()
	tests := []struct {
		name   string
		in     string
		strict bool
		class  string // errClass
		rule   string // substring of FieldError.Rule
	}{
		// event_id
		{"event_id missing", obj("event_id", absent), false, "field event_id", "required"},
		{"event_id null", obj("event_id", `null`), false, "field event_id", "required"},
		{"event_id empty", obj("event_id", `""`), false, "field event_id", "must not be empty"},
		{"event_id too long", obj("event_id", long(129)), false, "field event_id", "longer than 128 bytes"},
		{"event_id number", obj("event_id", `5`), false, "field event_id", "must be a string"},
		{"event_id invalid utf8", obj("event_id", "\"a\xffb\""), false, "field event_id", "not valid UTF-8"},
		// user_id / item_id
		{"user_id missing", obj("user_id", absent), false, "field user_id", "required"},
		{"user_id empty", obj("user_id", `""`), false, "field user_id", "must not be empty"},
		{"user_id too long", obj("user_id", long(257)), false, "field user_id", "longer than 256 bytes"},
		{"user_id number", obj("user_id", `5`), false, "field user_id", "must be a string"},
		{"user_id bool", obj("user_id", `true`), false, "field user_id", "must be a string"},
		{"user_id array", obj("user_id", `["u"]`), false, "field user_id", "must be a string"},
		{"user_id invalid utf8", obj("user_id", "\"\xc3\x28\""), false, "field user_id", "not valid UTF-8"},
		{"user_id truncated utf8", obj("user_id", "\"ab\xe2\x82\""), false, "field user_id", "not valid UTF-8"},
		{"user_id overlong utf8", obj("user_id", "\"\xc0\xaf\""), false, "field user_id", "not valid UTF-8"},
		{"user_id lone surrogate", obj("user_id", `"a\ud800b"`), false, "field user_id", "not valid UTF-8"},
		{"user_id lone low surrogate", obj("user_id", `"\udc00"`), false, "field user_id", "not valid UTF-8"},
		{"user_id surrogate then letter", obj("user_id", `"\ud800\u0041"`), false, "field user_id", "not valid UTF-8"},
		{"user_id escaped tab", obj("user_id", `"a\tb"`), false, "field user_id", "control character"},
		{"user_id escaped NUL", obj("user_id", `"\u0000"`), false, "field user_id", "control character"},
		{"user_id DEL", obj("user_id", "\"a\x7fb\""), false, "field user_id", "control character"},
		{"user_id C1 control", obj("user_id", `"a\u0085b"`), false, "field user_id", "control character"},
		{"item_id missing", obj("item_id", absent), false, "field item_id", "required"},
		{"item_id empty", obj("item_id", `""`), false, "field item_id", "must not be empty"},
		{"item_id too long", obj("item_id", long(300)), false, "field item_id", "longer than 256 bytes"},
		{"item_id object", obj("item_id", `{}`), false, "field item_id", "must be a string"},
		{"item_id invalid utf8", obj("item_id", "\"\xff\""), false, "field item_id", "not valid UTF-8"},
		{"item_id control", obj("item_id", `"\u001b[31m"`), false, "field item_id", "control character"},
		// type
		{"type missing", obj("type", absent), false, "field type", "required"},
		{"type unknown", obj("type", `"view"`), false, "field type",
			`unknown type "view" (allowed: impression, click, watch, like, dislike, skip, purchase, rating)`},
		{"type case sensitive", obj("type", `"Click"`), false, "field type", "unknown type"},
		{"type number", obj("type", `2`), false, "field type", "must be a string"},
		{"type invalid utf8", obj("type", "\"\xff\""), false, "field type", "unknown type"},
		// ts
		{"ts missing", obj("ts", absent), false, "field ts", "required"},
		{"ts null", obj("ts", `null`), false, "field ts", "required"},
		{"ts far future ms", obj("ts", `1895435200000`), false, "field ts", "more than 5m0s in the future"},
		{"ts 1ms past skew", obj("ts", `1795435500001`), false, "field ts", "more than 5m0s in the future"},
		{"ts far future rfc3339", obj("ts", `"2030-01-01T00:00:00Z"`), false, "field ts", "in the future"},
		{"ts fractional ms", obj("ts", `1795435200000.5`), false, "field ts", "integer number of unix milliseconds"},
		{"ts integral fraction", obj("ts", `1795435200000.0`), false, "field ts", "integer number"},
		{"ts exponent", obj("ts", `1.7954352e12`), false, "field ts", "integer number"},
		{"ts negative", obj("ts", `-1`), false, "field ts", "before 1970"},
		{"ts huge", obj("ts", `99999999999999999999999`), false, "field ts", "after year 9999"},
		{"ts beyond 9999", obj("ts", `253402300800000`), false, "field ts", "after year 9999"},
		{"ts before 1970 rfc3339", obj("ts", `"1969-12-31T23:59:59.999Z"`), false, "field ts", "before 1970"},
		{"ts before 1970 by offset", obj("ts", `"1970-01-01T00:30:00+01:00"`), false, "field ts", "before 1970"},
		{"ts year 10000 by offset", obj("ts", `"9999-12-31T23:30:00-01:00"`), false, "field ts", "after year 9999"},
		{"ts ms as string", obj("ts", `"1795435200000"`), false, "field ts", "not an RFC 3339 timestamp"},
		{"ts no offset", obj("ts", `"2026-11-23T12:00:00"`), false, "field ts", "not an RFC 3339"},
		{"ts space separator", obj("ts", `"2026-11-23 12:00:00Z"`), false, "field ts", "not an RFC 3339"},
		{"ts comma fraction", obj("ts", `"2026-11-23T12:00:00,5Z"`), false, "field ts", "not an RFC 3339"},
		{"ts empty fraction", obj("ts", `"2026-11-23T12:00:00.Z"`), false, "field ts", "not an RFC 3339"},
		{"ts feb 30", obj("ts", `"2026-02-30T12:00:00Z"`), false, "field ts", "not an RFC 3339"},
		{"ts feb 29 non-leap", obj("ts", `"2026-02-29T12:00:00Z"`), false, "field ts", "not an RFC 3339"},
		{"ts hour 24", obj("ts", `"2026-11-23T24:00:00Z"`), false, "field ts", "not an RFC 3339"},
		{"ts leap second", obj("ts", `"2016-12-31T23:59:60Z"`), false, "field ts", "not an RFC 3339"},
		{"ts offset hours", obj("ts", `"2026-11-23T12:00:00+24:00"`), false, "field ts", "not an RFC 3339"},
		{"ts date only", obj("ts", `"2026-11-23"`), false, "field ts", "not an RFC 3339"},
		{"ts bool", obj("ts", `true`), false, "field ts", "RFC 3339 string or integer unix milliseconds"},
		{"ts object", obj("ts", `{}`), false, "field ts", "RFC 3339 string or integer"},
		// value
		{"watch without value", obj("type", `"watch"`), false, "field value", "required for watch"},
		{"watch null value", obj("type", `"watch"`, "value", `null`), false, "field value", "required for watch"},
		{"watch negative", obj("type", `"watch"`, "value", `-1`), false, "field value", ">= 0"},
		{"rating without value", obj("type", `"rating"`), false, "field value", "required for rating"},
		{"rating too low", obj("type", `"rating"`, "value", `0.49`), false, "field value", "between 0.5 and 5"},
		{"rating too high", obj("type", `"rating"`, "value", `5.01`), false, "field value", "between 0.5 and 5"},
		{"rating zero", obj("type", `"rating"`, "value", `0`), false, "field value", "between 0.5 and 5"},
		{"click negative", obj("value", `-0.5`), false, "field value", ">= 0"},
		{"value overflow", obj("value", `1e999`), false, "field value", "finite"},
		{"value negative overflow", obj("value", `-1e400`), false, "field value", "finite"},
		{"value NaN string", obj("value", `"NaN"`), false, "field value", "must be a number"},
		{"value Infinity string", obj("value", `"Infinity"`), false, "field value", "must be a number"},
		{"value numeric string", obj("value", `"1"`), false, "field value", "must be a number"},
		{"value bool", obj("value", `true`), false, "field value", "must be a number"},
		{"value NaN literal", obj("value", `NaN`), false, "malformed", ""},
		// duration
		{"duration zero", obj("duration", `0`), false, "field duration", "> 0"},
		{"duration negative", obj("duration", `-3`), false, "field duration", "> 0"},
		{"duration overflow", obj("duration", `1e309`), false, "field duration", "finite"},
		{"duration string", obj("duration", `"60"`), false, "field duration", "must be a number"},
		// request_id
		{"request_id too long", obj("request_id", long(129)), false, "field request_id", "longer than 128 bytes"},
		{"request_id number", obj("request_id", `7`), false, "field request_id", "must be a string"},
		{"request_id invalid utf8", obj("request_id", "\"r\xfe\""), false, "field request_id", "not valid UTF-8"},
		// context
		{"context array", obj("context", `["a"]`), false, "field context", "must be an object"},
		{"context string", obj("context", `"a=b"`), false, "field context", "must be an object"},
		{"context 17 keys", obj("context", ctx17), false, "field context", "more than 16 keys"},
		{"context empty key", obj("context", `{"":"v"}`), false, "field context", "empty key"},
		{"context long key", obj("context", `{`+long(65)+`:"v"}`), false, "field context", "longer than 64 bytes"},
		{"context long value", obj("context", `{"k":`+long(257)+`}`), false, "field context", "longer than 256 bytes"},
		{"context number value", obj("context", `{"k":1}`), false, "field context", `value of key "k" must be a string`},
		{"context null value", obj("context", `{"k":null}`), false, "field context", "must be a string"},
		{"context nested value", obj("context", `{"k":{"a":"b"}}`), false, "field context", "must be a string"},
		{"context duplicate key", obj("context", `{"k":"a","k":"b"}`), false, "field context", "duplicate key"},
		{"context control in value", obj("context", `{"k":"a\nb"}`), false, "field context", "control character"},
		{"context control in key", obj("context", `{"k\u0007":"v"}`), false, "field context", "control character"},
		{"context invalid utf8 key", obj("context", "{\"k\xff\":\"v\"}"), false, "field context", "not valid UTF-8"},
		{"context invalid utf8 value", obj("context", "{\"k\":\"\xed\xa0\x80\"}"), false, "field context", "not valid UTF-8"},
		{"context lone surrogate value", obj("context", `{"k":"\udfff"}`), false, "field context", "not valid UTF-8"},
		// duplicate keys are refused rather than last-wins
		{"duplicate user_id", obj() + "", false, "ok", ""},
		{"duplicate field", strings.Replace(obj(), `"user_id":"u1"`, `"user_id":"u1","user_id":"u2"`, 1), false, "field user_id", "duplicate key"},
		{"duplicate after null", strings.Replace(obj(), `"ts":`, `"ts":null,"ts":`, 1), false, "field ts", "duplicate key"},
		{"duplicate via escape", strings.Replace(obj(), `"type":"click"`, `"type":"click","typ\u0065":"like"`, 1), false, "field type", "duplicate key"},
		// unknown fields
		{"unknown lenient", obj("extra", `1`), false, "ok", ""},
		{"unknown strict", obj("extra", `1`), true, "field extra", "unknown field"},
		{"case-different key strict", obj("User_ID", `"x"`), true, "field User_ID", "unknown field"},
		{"unknown invalid utf8 value", obj("extra", "[\"\xff\"]"), false, "field extra", "not valid UTF-8"},
		{"unknown invalid utf8 key", obj("ex\xfftra", `1`), false, "field ex\uFFFDtra", "key is not valid UTF-8"},
		{"unknown nested too deep", obj("extra", strings.Repeat("[", 100)+strings.Repeat("]", 100)), false, "malformed", ""},
		{"unknown nested ok", obj("extra", strings.Repeat("[", 60)+strings.Repeat("]", 60)), false, "ok", ""},
		// malformed input
		{"empty", "", false, "empty", ""},
		{"blank", " \n ", false, "empty", ""},
		{"array", "[" + obj() + "]", false, "notobject", ""},
		{"number", "5", false, "notobject", ""},
		{"string", `"x"`, false, "notobject", ""},
		{"truncated", obj()[:30], false, "malformed", ""},
		{"truncated after brace", "{", false, "malformed", ""},
		{"trailing comma", strings.TrimSuffix(obj(), "}") + ",}", false, "malformed", ""},
		{"missing colon", `{"event_id" "e1"}`, false, "malformed", ""},
		{"single quotes", `{'event_id':'e1'}`, false, "malformed", ""},
		{"trailing garbage", obj() + "x", false, "malformed", ""},
		{"two objects", obj() + obj(), false, "malformed", ""},
		{"raw tab in string", obj("user_id", "\"a\tb\""), false, "malformed", ""},
		{"raw newline in string", obj("user_id", "\"a\nb\""), false, "malformed", ""},
		{"bad escape", obj("user_id", `"a\xb"`), false, "malformed", ""},
		{"short unicode escape", obj("user_id", `"\u12"`), false, "malformed", ""},
		{"leading zero", obj("value", `01`), false, "malformed", ""},
		{"plus sign", obj("value", `+1`), false, "malformed", ""},
		{"bare minus", obj("value", `-`), false, "malformed", ""},
		{"dot without digits", obj("value", `1.`), false, "malformed", ""},
		{"bad literal", obj("value", `nul`), false, "malformed", ""},
		{"bad literal in unknown", obj("extra", `tru`), false, "malformed", ""},
		{"hex number", obj("value", `0x10`), false, "malformed", ""},
		{"unterminated string", `{"event_id":"e1`, false, "malformed", ""},
		{"invalid utf8 outside strings", "{\xff}", false, "malformed", ""},
		{"BOM", "\xef\xbb\xbf" + obj(), false, "malformed", ""},
		{"not json", "hello", false, "malformed", ""},
		{"NUL", "\x00", false, "malformed", ""},
		{"NUL after object", obj() + "\x00", false, "malformed", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOpts
			opts.Strict = tc.strict
			_, err := Decode([]byte(tc.in), opts)
			if got := errClass(err); got != tc.class {
				t.Fatalf("Decode(%q): error %v (class %q), want class %q", tc.in, err, got, tc.class)
			}
			if tc.rule == "" {
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !strings.Contains(fe.Rule, tc.rule) {
				t.Fatalf("Decode(%q): error %v, want rule containing %q", tc.in, err, tc.rule)
			}
			if !errors.Is(err, ErrInvalidEvent) {
				t.Errorf("errors.Is(%v, ErrInvalidEvent) = false", err)
			}
		})
	}
}

func TestFieldErrorMessage(t *testing.T) {
	_, err := Decode([]byte(obj("ts", `1895435200000`)), testOpts)
	const want = `event: field "ts": more than 5m0s in the future`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestSyntaxErrorOffset(t *testing.T) {
	_, err := Decode([]byte(`{"event_id":"e1",,}`), testOpts)
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want *SyntaxError", err)
	}
	if se.Offset != 17 {
		t.Errorf("offset %d, want 17 (the second comma): %v", se.Offset, err)
	}
	if want := `event: malformed JSON at offset 17: unexpected ',', expected object key`; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}

func TestDecodeNowDefaultsToWallClock(t *testing.T) {
	in := obj("ts", `"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"`)
	if _, err := Decode([]byte(in), DecodeOptions{}); errClass(err) != "field ts" {
		t.Fatalf("an hour ahead of the wall clock: got %v, want a ts error", err)
	}
	in = obj("ts", `"`+time.Now().UTC().Format(time.RFC3339)+`"`)
	if _, err := Decode([]byte(in), DecodeOptions{}); err != nil {
		t.Fatalf("now: %v", err)
	}
}

func TestUnmarshalJSON(t *testing.T) {
	var e Event
	if err := e.UnmarshalJSON([]byte(obj("ts", `1700000000000`))); err != nil {
		t.Fatal(err)
	}
	if e.UserID != "u1" || e.Time.UnixMilli() != 1700000000000 {
		t.Fatalf("got %+v", e)
	}
	if err := e.UnmarshalJSON([]byte(obj("user_id", `""`))); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("got %v, want ErrInvalidEvent", err)
	}
}
