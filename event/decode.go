package event

import (
	"bytes"
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eddyrec/eddy/internal/jsonscan"
)

// DecodeOptions configures Decode and DecodeBatch. The zero value is lenient,
// unbounded and uses the wall clock.
type DecodeOptions struct {
	// Strict rejects events carrying fields the contract does not define;
	// otherwise such fields are skipped (but must still be well-formed,
	// valid-UTF-8 JSON nested at most 64 deep).
	Strict bool
	// MaxEvents bounds the number of elements of a batch, counting rejected
	// ones; a larger batch fails as a whole with ErrTooManyEvents. Zero
	// means no bound.
	MaxEvents int
	// Now is the receiver's clock for the future-skew rule; nil means
	// time.Now. It is read once per call.
	Now func() time.Time
}

func (o *DecodeOptions) decoder(buf []byte) decoder {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	return decoder{Scanner: jsonscan.Scanner{Buf: buf, Kind: ErrMalformed}, strict: o.Strict, now: now()}
}

// Decode decodes and validates one event from a single JSON object, such as
// a Kafka record value. White space may surround the object; nothing else may.
//
// The error is nil or matches exactly one of ErrEmpty, ErrMalformed (a
// *SyntaxError), ErrNotObject or ErrInvalidEvent (a *FieldError).
func Decode(data []byte, opts DecodeOptions) (Event, error) {
	d := opts.decoder(data)
	if d.AtEnd() {
		return Event{}, ErrEmpty
	}
	var e Event
	if err := d.object(&e); err != nil {
		return Event{}, err
	}
	if !d.AtEnd() {
		return Event{}, d.Errorf("data after the event object")
	}
	return e, nil
}

// DecodeInto is Decode into *e, for a caller that decodes many events one
// at a time and is done with each before the next: e is overwritten, and
// its Context map, if it has one, is cleared and reused, which saves the
// map's allocation (about a fifth of a decode with a few context keys).
// With a reused map, an event without context leaves e.Context empty
// rather than nil. Strings are new: values taken from e may be kept. On
// error *e is the zero Event with its map kept.
func DecodeInto(e *Event, data []byte, opts DecodeOptions) error {
	m := e.Context
	clear(m)
	*e = Event{}
	d := opts.decoder(data)
	d.reuse = m
	err := ErrEmpty
	if !d.AtEnd() {
		err = d.object(e)
		if err == nil && !d.AtEnd() {
			err = d.Errorf("data after the event object")
		}
	}
	if err != nil {
		*e = Event{}
		clear(m)
	}
	if e.Context == nil {
		e.Context = m
	}
	return err
}

// UnmarshalJSON implements json.Unmarshaler with Decode's rules, lenient
// and against the wall clock.
func (e *Event) UnmarshalJSON(data []byte) error {
	ev, err := Decode(data, DecodeOptions{})
	if err != nil {
		return err
	}
	*e = ev
	return nil
}

// DecodeBatch decodes a request body of events. contentType is the media
// type of the body (parameters allowed; a charset must be UTF-8):
//
//   - application/json: one object, or an array of objects, as told by the
//     first non-space byte;
//   - application/x-ndjson or application/jsonl: one object per line; lines
//     holding only white space are ignored and not counted.
//
// Events that break a rule are returned in rejected, by index, and the good
// ones are kept in order. err is non-nil only when the body as a whole is
// unusable, and then events and rejected are nil: ErrUnsupportedContentType,
// ErrEmpty, ErrTooManyEvents, or ErrMalformed when a JSON body is not
// well-formed (in NDJSON a malformed line is only that line's rejection).
//
// Rejection.Raw is a copy; events do not alias body either.
func DecodeBatch(body []byte, contentType string, opts DecodeOptions) (events []Event, rejected []Rejection, err error) {
	mt, params, perr := mime.ParseMediaType(contentType)
	if perr != nil {
		return nil, nil, fmt.Errorf("%w: %q", ErrUnsupportedContentType, contentType)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return nil, nil, fmt.Errorf("%w: charset %q (want utf-8)", ErrUnsupportedContentType, cs)
	}
	d := opts.decoder(body)
	switch mt {
	case "application/json":
		events, rejected, err = d.jsonBatch(opts.MaxEvents)
	case "application/x-ndjson", "application/jsonl":
		events, rejected, err = d.ndjsonBatch(opts.MaxEvents)
	default:
		return nil, nil, fmt.Errorf("%w: %q (want application/json, application/x-ndjson or application/jsonl)", ErrUnsupportedContentType, mt)
	}
	if err != nil {
		return nil, nil, err
	}
	return events, rejected, nil
}

func tooMany(max int) error {
	return fmt.Errorf("%w: more than %d", ErrTooManyEvents, max)
}

// jsonBatch decodes an application/json body: one object or an array.
func (d *decoder) jsonBatch(max int) ([]Event, []Rejection, error) {
	if d.AtEnd() {
		return nil, nil, ErrEmpty
	}
	switch d.Peek() {
	case '{':
		events, rejected, err := d.element(0, nil, nil)
		if err != nil {
			return nil, nil, err
		}
		if !d.AtEnd() {
			return nil, nil, d.Errorf("data after the event object")
		}
		return events, rejected, nil
	case '[':
	default:
		return nil, nil, d.Unexpected("'{' or '['")
	}
	d.Pos++
	if d.Peek() == ']' {
		d.Pos++
		if !d.AtEnd() {
			return nil, nil, d.Errorf("data after the array")
		}
		return nil, nil, ErrEmpty
	}
	// Element sizes vary; ~160 bytes is typical, so this rarely regrows.
	events := make([]Event, 0, min(len(d.Buf)/160+1, capHint(max)))
	var rejected []Rejection
	for n := 0; ; n++ {
		if max > 0 && n >= max {
			return nil, nil, tooMany(max)
		}
		var err error
		if events, rejected, err = d.element(n, events, rejected); err != nil {
			return nil, nil, err
		}
		more, err := d.Next(']')
		switch {
		case err != nil:
			return nil, nil, err
		case !more && !d.AtEnd():
			return nil, nil, d.Errorf("data after the array")
		case !more:
			return events, rejected, nil
		}
	}
}

func capHint(max int) int {
	if max > 0 {
		return max
	}
	return 1 << 16
}

// element decodes the array element (or lone object) at the cursor as event
// number index. A bad event becomes a Rejection; the returned error is
// non-nil only when the element is not well-formed JSON, which leaves the
// rest of the body unparseable.
func (d *decoder) element(index int, events []Event, rejected []Rejection) ([]Event, []Rejection, error) {
	start := d.Pos
	var err error
	if d.Peek() == '{' {
		events = append(events, Event{})
		if err = d.object(&events[len(events)-1]); err == nil {
			return events, rejected, nil
		}
		events = events[:len(events)-1]
		d.Pos = start
	} else {
		err = ErrNotObject
	}
	// Find where the element ends with the structural skipper, which does
	// not stop at the first broken rule as the decoder does.
	if serr := d.SkipValue(0, false); serr != nil {
		return nil, nil, serr
	}
	raw := bytes.TrimSpace(d.Buf[start:d.Pos])
	return events, append(rejected, Rejection{Index: index, Raw: bytes.Clone(raw), Err: err}), nil
}

// ndjsonBatch decodes an NDJSON body. JSON strings cannot hold a raw line
// feed, so splitting on '\n' never cuts an object; '\r' before it is white
// space to the decoder.
func (d *decoder) ndjsonBatch(max int) ([]Event, []Rejection, error) {
	body := d.Buf
	// Size the result by lines, but never beyond what the body could hold
	// (a valid event takes more than 64 bytes), so a body of blank lines
	// cannot make us allocate a hundred times its size.
	lines := min(bytes.Count(body, []byte{'\n'})+1, len(body)/64+1)
	if max > 0 && lines > max {
		lines = max
	}
	events := make([]Event, 0, lines)
	var rejected []Rejection
	n := 0
	for pos := 0; pos < len(body); {
		end := len(body)
		if j := bytes.IndexByte(body[pos:], '\n'); j >= 0 {
			end = pos + j
		}
		d.Buf, d.Pos = body[:end], pos
		next := end + 1
		if d.AtEnd() {
			pos = next
			continue // blank line
		}
		if max > 0 && n >= max {
			return nil, nil, tooMany(max)
		}
		events = append(events, Event{})
		err := d.object(&events[len(events)-1])
		if err == nil && !d.AtEnd() {
			err = d.Errorf("data after the event object")
		}
		if err != nil {
			events = events[:len(events)-1]
			raw := bytes.TrimSpace(body[pos:end])
			rejected = append(rejected, Rejection{Index: n, Raw: bytes.Clone(raw), Err: err})
		}
		n++
		pos = next
	}
	if n == 0 {
		return nil, nil, ErrEmpty
	}
	return events, rejected, nil
}

// Field bits, for duplicate detection and presence.
const (
	fEventID uint16 = 1 << iota
	fUserID
	fItemID
	fType
	fTs
	fValue
	fDuration
	fRequestID
	fContext
)

// lookupField maps a key to its field bit, or 0 for an unknown key. Keys are
// case-sensitive (encoding/json would also match "User_ID"; the contract
// does not).
func lookupField(k []byte) uint16 {
	switch string(k) { // no allocation: the compiler recognises switch on string(bytes)
	case "event_id":
		return fEventID
	case "user_id":
		return fUserID
	case "item_id":
		return fItemID
	case "type":
		return fType
	case "ts":
		return fTs
	case "value":
		return fValue
	case "duration":
		return fDuration
	case "request_id":
		return fRequestID
	case "context":
		return fContext
	}
	return 0
}

// decoder decodes event objects: a hand-written parser for the fixed, flat
// schema, which is several times faster than encoding/json with custom
// field types and sees the raw bytes, so it can reject invalid UTF-8 and
// duplicate keys that encoding/json would silently repair or overwrite.
type decoder struct {
	jsonscan.Scanner
	strict bool
	now    time.Time
	// reuse, if not nil, is an empty map for the context (DecodeInto).
	reuse map[string]string
}

// object decodes and validates the object at the cursor into e, which must
// be the zero Event. On error the cursor is somewhere inside the object.
func (d *decoder) object(e *Event) error {
	if d.Peek() != '{' {
		// Tell "not JSON" from "JSON, but not an object".
		if err := d.SkipValue(0, false); err != nil {
			return err
		}
		return ErrNotObject
	}
	d.Pos++
	var seen, set uint16 // keys seen; fields present and not null
	if d.Peek() == '}' {
		d.Pos++
		return d.finish(e, set)
	}
	for {
		if d.Peek() != '"' {
			return d.Unexpected("object key")
		}
		keyAt := d.Pos
		key, err := d.ReadString()
		if err != nil {
			return err
		}
		f := lookupField(key)
		switch {
		case f == 0 && d.strict:
			return fieldErr(quoteKey(key), "unknown field")
		case f == 0 && !utf8.Valid(key):
			return fieldErr(quoteKey(key), "key is not valid UTF-8")
		case f == 0:
		case seen&f != 0:
			return fieldErr(string(key), "duplicate key")
		default:
			seen |= f
		}
		if d.Peek() != ':' {
			return d.Unexpected("':'")
		}
		d.Pos++
		if f == 0 {
			if err := d.SkipValue(1, true); err != nil {
				if err == jsonscan.ErrStringNotUTF8 {
					return fieldErr(d.keyAt(keyAt), "not valid UTF-8")
				}
				return err
			}
		} else {
			present, err := d.field(e, f)
			if err != nil {
				return err
			}
			if present {
				set |= f
			}
		}
		more, err := d.Next('}')
		if err != nil {
			return err
		}
		if !more {
			return d.finish(e, set)
		}
	}
}

// keyAt re-reads the key at offset i for an error message (readString's
// result may since have been overwritten in the scratch buffer).
func (d *decoder) keyAt(i int) string {
	s := jsonscan.Scanner{Buf: d.Buf, Pos: i}
	k, err := s.ReadString()
	if err != nil {
		return "?"
	}
	return quoteKey(k)
}

// field decodes the value of field f at the cursor. present is false for
// null, which means the same as an absent key.
func (d *decoder) field(e *Event, f uint16) (present bool, err error) {
	c := d.Peek()
	if c == 'n' {
		return false, d.ReadLiteral("null")
	}
	switch f {
	case fEventID:
		e.EventID, err = d.text("event_id", c, 1, MaxEventIDBytes, false)
	case fUserID:
		e.UserID, err = d.text("user_id", c, 1, MaxIDBytes, true)
	case fItemID:
		e.ItemID, err = d.text("item_id", c, 1, MaxIDBytes, true)
	case fRequestID:
		e.RequestID, err = d.text("request_id", c, 0, MaxRequestIDBytes, false)
	case fType:
		e.Type, err = d.eventType(c)
	case fTs:
		e.Time, err = d.ts(c)
	case fValue:
		e.Value, err = d.number("value", c)
		e.HasValue = err == nil
	case fDuration:
		e.Duration, err = d.number("duration", c)
		e.HasDuration = err == nil
	case fContext:
		e.Context, err = d.context(c)
	}
	return err == nil, err
}

// wrongType reports a value of the wrong JSON type at the cursor: as a
// *SyntaxError if the value is not even well-formed (NaN, +1, tru), so that
// malformed input is always classed as ErrMalformed, else as a FieldError.
func (d *decoder) wrongType(field, rule string) error {
	if err := d.SkipValue(1, false); err != nil {
		return err
	}
	return fieldErr(field, rule)
}

// text decodes a string field and applies checkText.
func (d *decoder) text(field string, c byte, min, max int, noCtl bool) (string, error) {
	if c != '"' {
		return "", d.wrongType(field, "must be a string")
	}
	b, err := d.ReadString()
	if err != nil {
		return "", err
	}
	// Check the length before copying so an oversized value costs nothing.
	if len(b) > max {
		return "", fieldErr(field, "longer than "+strconv.Itoa(max)+" bytes")
	}
	s := string(b)
	if ferr := checkText(field, s, min, max, noCtl); ferr != nil {
		return "", ferr
	}
	return s, nil
}

func (d *decoder) eventType(c byte) (Type, error) {
	if c != '"' {
		return TypeInvalid, d.wrongType("type", "must be a string")
	}
	b, err := d.ReadString()
	if err != nil {
		return TypeInvalid, err
	}
	switch string(b) {
	case "impression":
		return Impression, nil
	case "click":
		return Click, nil
	case "watch":
		return Watch, nil
	case "like":
		return Like, nil
	case "dislike":
		return Dislike, nil
	case "skip":
		return Skip, nil
	case "purchase":
		return Purchase, nil
	case "rating":
		return Rating, nil
	}
	return TypeInvalid, fieldErr("type", "unknown type "+strconv.Quote(quoteKey(b))+" (allowed: "+allowedTypes+")")
}

// ts decodes the event time: an RFC 3339 string or a JSON integer of unix
// milliseconds. Numbers with a fraction or an exponent are refused even when
// integral (1.7e12) so that the wire form has one spelling per instant.
func (d *decoder) ts(c byte) (time.Time, error) {
	var ms int64
	switch {
	case c == '"':
		b, err := d.ReadString()
		if err != nil {
			return time.Time{}, err
		}
		var ferr *FieldError
		if ms, ferr = parseRFC3339Millis(b); ferr != nil {
			return time.Time{}, ferr
		}
	case c == '-' || jsonscan.IsDigit(c):
		num, isInt, err := d.ReadNumber()
		if err != nil {
			return time.Time{}, err
		}
		switch {
		case !isInt:
			return time.Time{}, fieldErr("ts", "must be an integer number of unix milliseconds (no fraction or exponent)")
		case num[0] == '-' && string(num) != "-0":
			return time.Time{}, fieldErr("ts", "before 1970-01-01T00:00:00Z")
		case len(num) > 16: // more digits than MaxTimeMillis; also keeps ParseInt in range
			return time.Time{}, fieldErr("ts", "after year 9999")
		}
		ms, err = strconv.ParseInt(string(num), 10, 64)
		if err != nil {
			return time.Time{}, fieldErr("ts", "not an integer")
		}
		if ferr := checkMillis(ms); ferr != nil {
			return time.Time{}, ferr
		}
	default:
		return time.Time{}, d.wrongType("ts", "must be an RFC 3339 string or integer unix milliseconds")
	}
	return time.UnixMilli(ms).UTC(), nil
}

// number decodes a finite JSON number. JSON has no NaN or Infinity literals;
// a number too large for float64 (1e999) is refused rather than turned into
// Inf, and strings such as "NaN" are the wrong type.
func (d *decoder) number(field string, c byte) (float64, error) {
	if c != '-' && !jsonscan.IsDigit(c) {
		return 0, d.wrongType(field, "must be a number")
	}
	num, _, err := d.ReadNumber()
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil || !finite(f) {
		return 0, fieldErr(field, "must be a finite number")
	}
	return f, nil
}

// context decodes the context object. Duplicate keys are refused like
// duplicate fields. An empty object decodes to a nil map, the same as an
// absent one, so that decoding is canonical.
func (d *decoder) context(c byte) (map[string]string, error) {
	if c != '{' {
		return nil, d.wrongType("context", "must be an object of string values")
	}
	d.Pos++
	if d.Peek() == '}' {
		d.Pos++
		return nil, nil
	}
	var m map[string]string
	for {
		if d.Peek() != '"' {
			return nil, d.Unexpected("object key")
		}
		kb, err := d.ReadString()
		if err != nil {
			return nil, err
		}
		if len(m) == MaxContextKeys {
			return nil, fieldErr("context", "more than "+strconv.Itoa(MaxContextKeys)+" keys")
		}
		if len(kb) > MaxContextKeyBytes {
			return nil, fieldErr("context", "key "+strconv.Quote(quoteKey(kb))+" longer than "+strconv.Itoa(MaxContextKeyBytes)+" bytes")
		}
		k := string(kb)
		if _, dup := m[k]; dup {
			return nil, fieldErr("context", "duplicate key "+strconv.Quote(quoteKey(kb)))
		}
		if d.Peek() != ':' {
			return nil, d.Unexpected("':'")
		}
		d.Pos++
		if d.Peek() != '"' {
			return nil, d.wrongType("context", "value of key "+strconv.Quote(quoteKey(kb))+" must be a string")
		}
		vb, err := d.ReadString()
		if err != nil {
			return nil, err
		}
		if len(vb) > MaxContextValueBytes {
			return nil, fieldErr("context", "value of key "+strconv.Quote(quoteKey(kb))+" longer than "+strconv.Itoa(MaxContextValueBytes)+" bytes")
		}
		v := string(vb)
		if ferr := checkContextEntry(k, v); ferr != nil {
			return nil, ferr
		}
		if m == nil {
			if m = d.reuse; m == nil {
				m = make(map[string]string, 4)
			}
		}
		m[k] = v
		more, err := d.Next('}')
		if err != nil {
			return nil, err
		}
		if !more {
			return m, nil
		}
	}
}

// finish checks what can only be checked once the whole object is read:
// required fields, the rules that tie value to type, and the clock.
func (d *decoder) finish(e *Event, set uint16) error {
	for _, r := range [...]struct {
		bit  uint16
		name string
	}{{fEventID, "event_id"}, {fUserID, "user_id"}, {fItemID, "item_id"}, {fType, "type"}, {fTs, "ts"}} {
		if set&r.bit == 0 {
			return fieldErr(r.name, "required")
		}
	}
	if err := checkValues(e); err != nil {
		return err
	}
	if err := checkFuture(e.Time, d.now); err != nil {
		return err
	}
	return nil
}
