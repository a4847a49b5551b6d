package scorer

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// The response body and the served-list record are the two JSON documents
// written per request. encoding/json builds them by reflection, and the
// served list's per-item feature maps cost a map each; together that was a
// third of a request's allocations. These encoders write the same bytes as
// json.Marshal of the same values (tests compare them, and fuzz the string
// and float encoders), into a caller's buffer.

var errNotFinite = errors.New("scorer: score is not a finite number")

// appendResponse appends r as json.Marshal would, for a response without
// explanations (those go through encoding/json). It fails on a NaN or
// infinite score, as json.Marshal does.
func appendResponse(b []byte, r *Response) ([]byte, error) {
	b = append(b, `{"user_id":`...)
	b = appendJSONString(b, r.UserID)
	b = append(b, `,"request_id":`...)
	b = appendJSONString(b, r.RequestID)
	b = append(b, `,"model_version":`...)
	b = appendJSONString(b, r.ModelVersion)
	b = append(b, `,"variant":`...)
	b = appendJSONString(b, r.Variant)
	b = append(b, `,"fallback":`...)
	b = strconv.AppendBool(b, r.Fallback)
	b = append(b, `,"items":`...)
	if r.Items == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, it := range r.Items {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"item_id":`...)
			b = appendJSONString(b, it.ItemID)
			b = append(b, `,"score":`...)
			var err error
			if b, err = appendJSONFloat(b, it.Score); err != nil {
				return b, err
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// appendServedList appends the ServedList of r served at tsMillis, as
// json.Marshal(servedList(r, t)) would. order lists the indices of r.names
// to write, in the order encoding/json writes a map's keys (see
// featureOrder).
func appendServedList(b []byte, r *Response, tsMillis int64, order []int) ([]byte, error) {
	b = append(b, `{"request_id":`...)
	b = appendJSONString(b, r.RequestID)
	b = append(b, `,"user_id":`...)
	b = appendJSONString(b, r.UserID)
	b = append(b, `,"model_version":`...)
	b = appendJSONString(b, r.ModelVersion)
	if r.Variant != "" {
		b = append(b, `,"variant":`...)
		b = appendJSONString(b, r.Variant)
	}
	if r.policy != "" {
		b = append(b, `,"policy":`...)
		b = appendJSONString(b, r.policy)
	}
	b = append(b, `,"fallback":`...)
	b = strconv.AppendBool(b, r.Fallback)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, tsMillis, 10)
	b = append(b, `,"items":[`...)
	var err error
	for i, it := range r.Items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"item_id":`...)
		b = appendJSONString(b, it.ItemID)
		b = append(b, `,"position":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"score":`...)
		if b, err = appendJSONFloat(b, it.Score); err != nil {
			return b, err
		}
		if i < len(r.features) && len(order) > 0 {
			b = append(b, `,"features":{`...)
			for n, f := range order {
				if n > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, r.names[f])
				b = append(b, ':')
				if b, err = appendJSONFloat(b, float64(r.features[i][f])); err != nil {
					return b, err
				}
			}
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	return append(b, "]}"...), nil
}

// featureOrder returns the indices of names in the order json.Marshal
// writes the keys of a map built by assigning names in order: sorted, and
// for a repeated name the last index.
func featureOrder(names []string) []int {
	order := make([]int, 0, len(names))
	for i := range names {
		order = append(order, i)
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case names[a] < names[b]:
			return -1
		case names[a] > names[b]:
			return 1
		}
		return 0
	})
	out := order[:0]
	for i, f := range order {
		if i+1 < len(order) && names[order[i+1]] == names[f] {
			continue // a later index of the same name wins
		}
		out = append(out, f)
	}
	return out
}

// appendJSONFloat formats f as encoding/json formats a float64.
func appendJSONFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, errNotFinite
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9, as encoding/json does.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does with HTML escaping (its
// default): <, > and & as \u003c etc., control characters, invalid UTF-8
// as \ufffd, and U+2028/U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
