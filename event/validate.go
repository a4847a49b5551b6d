package event

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/eddyrec/eddy/internal/jsonscan"
)

// Limits of the contract (DESIGN.md §3).
const (
	MaxEventIDBytes      = 128
	MaxIDBytes           = 256 // user_id and item_id
	MaxRequestIDBytes    = 128
	MaxContextKeys       = 16
	MaxContextKeyBytes   = 64
	MaxContextValueBytes = 256
	// MaxFutureSkew is how far past the receiver's clock an event time may
	// lie; it absorbs client clock skew without letting a wrong clock plant
	// events that would dominate time-decayed features for hours.
	MaxFutureSkew = 5 * time.Minute
	// DefaultMaxBodyBytes is the default bound on one HTTP request body.
	DefaultMaxBodyBytes = 1 << 20
	// MaxTimeMillis is 9999-12-31T23:59:59.999Z in unix milliseconds, the
	// last instant an RFC 3339 timestamp can name.
	MaxTimeMillis int64 = 253402300799999
)

// allowedTypes is the list quoted by the "unknown type" rule.
var allowedTypes = func() string {
	names := make([]string, len(Types))
	for i, t := range Types {
		names[i] = t.String()
	}
	return strings.Join(names, ", ")
}()

// Validate applies the rules of the contract to an Event built in memory (by
// an importer or a generator, say) rather than decoded. Events returned by
// Decode and DecodeBatch already satisfy it. now is the receiver's clock for
// the future-skew rule; a zero now skips that rule (replaying history).
func (e *Event) Validate(now time.Time) error {
	if err := checkText("event_id", e.EventID, 1, MaxEventIDBytes, false); err != nil {
		return err
	}
	if err := checkText("user_id", e.UserID, 1, MaxIDBytes, true); err != nil {
		return err
	}
	if err := checkText("item_id", e.ItemID, 1, MaxIDBytes, true); err != nil {
		return err
	}
	if e.Type < Impression || e.Type > Rating {
		return fieldErr("type", "unknown type "+strconv.Itoa(int(e.Type))+" (allowed: "+allowedTypes+")")
	}
	if e.Time.IsZero() {
		return fieldErr("ts", "required")
	}
	if err := checkMillis(e.Time.UnixMilli()); err != nil {
		return err
	}
	if err := checkFuture(e.Time, now); err != nil {
		return err
	}
	if err := checkValues(e); err != nil {
		return err
	}
	if err := checkText("request_id", e.RequestID, 0, MaxRequestIDBytes, false); err != nil {
		return err
	}
	if len(e.Context) > MaxContextKeys {
		return fieldErr("context", "more than "+strconv.Itoa(MaxContextKeys)+" keys")
	}
	for k, v := range e.Context {
		if err := checkContextEntry(k, v); err != nil {
			return err
		}
	}
	return nil
}

// checkText enforces the rules shared by every string field: a byte length
// in [min, max], valid UTF-8 and, when noCtl, no control characters
// (Unicode category Cc: C0, DEL and C1).
func checkText(field, s string, min, max int, noCtl bool) *FieldError {
	if len(s) < min {
		if min == 1 && len(s) == 0 {
			return fieldErr(field, "must not be empty")
		}
		return fieldErr(field, "shorter than "+strconv.Itoa(min)+" bytes")
	}
	if len(s) > max {
		return fieldErr(field, "longer than "+strconv.Itoa(max)+" bytes")
	}
	if rule := textRule(s, noCtl); rule != "" {
		return fieldErr(field, rule)
	}
	return nil
}

// textRule returns the broken rule of s, or "" when s is valid UTF-8 and,
// with noCtl, free of control characters. One pass, ASCII fast path.
func textRule(s string, noCtl bool) string {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if noCtl && (c < 0x20 || c == 0x7f) {
				return "contains a control character"
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return "not valid UTF-8"
		}
		if noCtl && unicode.IsControl(r) {
			return "contains a control character"
		}
		i += size
	}
	return ""
}

func checkContextEntry(k, v string) *FieldError {
	if len(k) == 0 {
		return fieldErr("context", "empty key")
	}
	if len(k) > MaxContextKeyBytes {
		return fieldErr("context", "key "+strconv.Quote(quoteKey([]byte(k)))+" longer than "+strconv.Itoa(MaxContextKeyBytes)+" bytes")
	}
	if rule := textRule(k, true); rule != "" {
		return fieldErr("context", "key "+strconv.Quote(quoteKey([]byte(k)))+": "+rule)
	}
	if len(v) > MaxContextValueBytes {
		return fieldErr("context", "value of key "+strconv.Quote(k)+" longer than "+strconv.Itoa(MaxContextValueBytes)+" bytes")
	}
	if rule := textRule(v, true); rule != "" {
		return fieldErr("context", "value of key "+strconv.Quote(k)+": "+rule)
	}
	return nil
}

// checkMillis enforces the representable range of ts: 1970 to year 9999.
func checkMillis(ms int64) *FieldError {
	if ms < 0 {
		return fieldErr("ts", "before 1970-01-01T00:00:00Z")
	}
	if ms > MaxTimeMillis {
		return fieldErr("ts", "after year 9999")
	}
	return nil
}

func checkFuture(t, now time.Time) *FieldError {
	if !now.IsZero() && t.After(now.Add(MaxFutureSkew)) {
		return fieldErr("ts", "more than "+MaxFutureSkew.String()+" in the future")
	}
	return nil
}

// checkValues applies the rules of value and duration, which depend on the
// event type.
func checkValues(e *Event) *FieldError {
	if e.HasValue && !finite(e.Value) {
		return fieldErr("value", "must be a finite number")
	}
	switch e.Type {
	case Watch:
		if !e.HasValue {
			return fieldErr("value", "required for watch events (seconds watched)")
		}
		if e.Value < 0 {
			return fieldErr("value", "must be >= 0")
		}
	case Rating:
		if !e.HasValue {
			return fieldErr("value", "required for rating events")
		}
		if e.Value < 0.5 || e.Value > 5 {
			return fieldErr("value", "must be between 0.5 and 5 for rating events")
		}
	default:
		if e.HasValue && e.Value < 0 {
			return fieldErr("value", "must be >= 0")
		}
	}
	if e.HasDuration {
		if !finite(e.Duration) {
			return fieldErr("duration", "must be a finite number")
		}
		if e.Duration <= 0 {
			return fieldErr("duration", "must be > 0")
		}
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// parseRFC3339Millis parses an RFC 3339 date-time (section 5.6: full-date
// "T" full-time, with "Z" or a numeric offset; "t" and "z" allowed as the
// RFC's note permits; any number of fraction digits) and returns it as unix
// milliseconds, truncating below the millisecond. It is hand-written rather
// than time.Parse because time.Parse accepts more than RFC 3339 (a comma
// before the fraction, for one), allocates, and needs a string.
func parseRFC3339Millis(b []byte) (int64, *FieldError) {
	bad := func() (int64, *FieldError) {
		return 0, fieldErr("ts", "not an RFC 3339 timestamp (want e.g. 2026-01-02T15:04:05.123Z) nor integer unix milliseconds")
	}
	if len(b) < len("2006-01-02T15:04:05Z") || len(b) > 64 {
		return bad()
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != 't') || b[13] != ':' || b[16] != ':' {
		return bad()
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return bad()
	}
	i := 19
	var frac int64
	if b[i] == '.' {
		i++
		start := i
		for i < len(b) && jsonscan.IsDigit(b[i]) {
			if i-start < 3 {
				frac = frac*10 + int64(b[i]-'0')
			}
			i++
		}
		n := i - start
		if n == 0 {
			return bad()
		}
		for ; n < 3; n++ {
			frac *= 10
		}
	}
	if i >= len(b) {
		return bad()
	}
	var offset int64 // seconds east of UTC
	switch b[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if len(b)-i != 6 || b[i+3] != ':' {
			return bad()
		}
		oh, okh := digits(b[i+1 : i+3])
		om, okm := digits(b[i+4 : i+6])
		if !okh || !okm || oh > 23 || om > 59 {
			return bad()
		}
		offset = int64(oh*3600 + om*60)
		if b[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return bad()
	}
	if i != len(b) {
		return bad()
	}
	secs := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC).Unix() - offset
	ms := secs*1000 + frac
	if err := checkMillis(ms); err != nil {
		return 0, err
	}
	return ms, nil
}

// digits parses a run of ASCII decimal digits.
func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if !jsonscan.IsDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
