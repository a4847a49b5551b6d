package event

import (
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends the canonical JSON of e to dst and returns the extended
// buffer. The canonical form is what Eddy writes to Kafka:
//
//	{"event_id":…,"user_id":…,"item_id":…,"type":…,"ts":<unix ms>[,"value":…][,"duration":…][,"request_id":…][,"context":{…}]}
//
// Keys come in that order, context keys sorted; ts is an integer of unix
// milliseconds; value and duration appear only when HasValue/HasDuration,
// request_id and context only when non-empty. Numbers use the shortest
// representation that parses back to the same float64, so Decode returns an
// Event equal to e for every e that Decode can produce.
//
// AppendJSON does not validate e (call Validate for events built in memory).
// It always emits well-formed JSON: invalid UTF-8 becomes U+FFFD and a
// non-finite number becomes null.
func (e *Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"event_id":`...)
	dst = appendString(dst, e.EventID)
	dst = append(dst, `,"user_id":`...)
	dst = appendString(dst, e.UserID)
	dst = append(dst, `,"item_id":`...)
	dst = appendString(dst, e.ItemID)
	dst = append(dst, `,"type":"`...)
	dst = append(dst, e.Type.String()...)
	dst = append(dst, `","ts":`...)
	dst = strconv.AppendInt(dst, e.Time.UnixMilli(), 10)
	if e.HasValue {
		dst = append(dst, `,"value":`...)
		dst = appendFloat(dst, e.Value)
	}
	if e.HasDuration {
		dst = append(dst, `,"duration":`...)
		dst = appendFloat(dst, e.Duration)
	}
	if e.RequestID != "" {
		dst = append(dst, `,"request_id":`...)
		dst = appendString(dst, e.RequestID)
	}
	if len(e.Context) > 0 {
		dst = append(dst, `,"context":{`...)
		// A valid event has at most MaxContextKeys keys: sort them in a
		// stack array so that encoding does not allocate.
		var arr [MaxContextKeys]string
		keys := arr[:0]
		for k := range e.Context {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			dst = appendString(dst, e.Context[k])
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// MarshalJSON implements json.Marshaler with the canonical form of AppendJSON.
func (e Event) MarshalJSON() ([]byte, error) {
	return e.AppendJSON(make([]byte, 0, 256)), nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. It escapes what JSON requires
// (quote, backslash, C0 controls) and, like encoding/json, U+2028 and U+2029
// so that the output is also safe inside JavaScript.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendFloat appends f the way encoding/json does: shortest round-trip
// digits, exponent notation only for very small or very large magnitudes.
func appendFloat(dst []byte, f float64) []byte {
	if !finite(f) {
		return append(dst, "null"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}
