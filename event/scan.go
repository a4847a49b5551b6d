package event

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxNesting bounds how deeply the value of an unknown field may nest arrays
// and objects. The event schema itself is flat (context is the only nested
// object), so anything deeper is garbage; the bound keeps the recursive
// skipper's stack small on hostile input.
const maxNesting = 64

// SyntaxError reports input that is not well-formed JSON. Offset counts bytes
// from the start of the buffer handed to Decode or DecodeBatch.
// errors.Is(err, ErrMalformed) is true for every SyntaxError.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("event: malformed JSON at offset %d: %s", e.Offset, e.Msg)
}

// Is makes errors.Is(err, ErrMalformed) hold.
func (e *SyntaxError) Is(target error) bool { return target == ErrMalformed }

// errStringNotUTF8 is returned by skipValue, when asked to check UTF-8, for a
// string whose bytes are not valid UTF-8; the caller turns it into a
// FieldError naming the field being skipped.
var errStringNotUTF8 = errors.New("string is not valid UTF-8")

// scanner is a cursor over one buffer of JSON text. It implements exactly the
// grammar of RFC 8259 and nothing more lenient, so that the hand-written event
// decoder and the structural skipper (used to find where a rejected batch
// element ends) agree on what is well-formed.
type scanner struct {
	buf     []byte
	i       int
	scratch []byte // reused buffer for strings that contain escapes
}

func (s *scanner) errorf(msg string) error { return &SyntaxError{Offset: s.i, Msg: msg} }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func (s *scanner) skipSpace() {
	for s.i < len(s.buf) && isSpace(s.buf[s.i]) {
		s.i++
	}
}

// atEnd skips white space and reports whether the buffer is exhausted.
func (s *scanner) atEnd() bool {
	s.skipSpace()
	return s.i >= len(s.buf)
}

// peek skips white space and returns the next byte without consuming it, or
// 0 at the end of the buffer. 0 never starts a JSON token, so comparing the
// result with a token byte is safe; use atEnd to test for the end, since the
// input itself may hold a NUL byte.
func (s *scanner) peek() byte {
	s.skipSpace()
	if s.i < len(s.buf) {
		return s.buf[s.i]
	}
	return 0
}

// unexpected reports the byte at the cursor (or the end of input) where the
// grammar wanted what.
func (s *scanner) unexpected(what string) error {
	if s.i >= len(s.buf) {
		return s.errorf("unexpected end of input, expected " + what)
	}
	c := s.buf[s.i]
	var found string
	if c >= 0x20 && c < 0x7f {
		found = strconv.QuoteRune(rune(c))
	} else {
		found = fmt.Sprintf("byte 0x%02x", c)
	}
	return s.errorf("unexpected " + found + ", expected " + what)
}

// readString consumes the JSON string that starts at the cursor (which must
// be '"') and returns its decoded contents. The result aliases s.buf when the
// string has no escapes and s.scratch otherwise, so it is valid only until
// the next call.
//
// The contents are not checked for UTF-8 validity here: callers do that with
// the rule of the field at hand. A \u escape holding a lone UTF-16 surrogate
// cannot be represented in UTF-8; it is decoded as the byte 0xFF, which is
// never valid UTF-8, so the caller's check rejects it instead of the string
// silently gaining a U+FFFD the sender never wrote (what encoding/json does).
func (s *scanner) readString() ([]byte, error) {
	start := s.i + 1
	b := s.buf
	for i := start; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			return b[start:i], nil
		case c == '\\':
			return s.readEscaped(start, i)
		case c < 0x20:
			s.i = i
			return nil, s.errorf("control character in string")
		}
	}
	s.i = len(b)
	return nil, s.errorf("unterminated string")
}

// readEscaped finishes readString from the first backslash at i, decoding
// into s.scratch.
func (s *scanner) readEscaped(start, i int) ([]byte, error) {
	b := s.buf
	out := append(s.scratch[:0], b[start:i]...)
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			s.i = i + 1
			s.scratch = out
			return out, nil
		case c < 0x20:
			s.i = i
			return nil, s.errorf("control character in string")
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(b) {
			break
		}
		switch e := b[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(b, i+2)
			if !ok {
				s.i = i
				return nil, s.errorf(`invalid \u escape`)
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if r < 0xdc00 && i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
					if r2, ok := hex4(b, i+2); ok && 0xdc00 <= r2 && r2 < 0xe000 {
						out = utf8.AppendRune(out, utf16.DecodeRune(r, r2))
						i += 6
						continue
					}
				}
				out = append(out, 0xff) // lone surrogate: deliberately invalid UTF-8
				continue
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			s.i = i
			return nil, s.errorf("invalid escape in string")
		}
		i += 2
	}
	s.i = len(b)
	s.scratch = out
	return nil, s.errorf("unterminated string")
}

// hex4 decodes the four hex digits at b[i:i+4].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// readNumber consumes the JSON number at the cursor and returns its text and
// whether it is written as an integer (no fraction, no exponent).
func (s *scanner) readNumber() (num []byte, isInt bool, err error) {
	b, i, start := s.buf, s.i, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		s.i = i
		return nil, false, s.unexpected("digit")
	}
	isInt = true
	if i < len(b) && b[i] == '.' {
		isInt = false
		i++
		if i >= len(b) || !isDigit(b[i]) {
			s.i = i
			return nil, false, s.unexpected("digit after decimal point")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		isInt = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			s.i = i
			return nil, false, s.unexpected("digit in exponent")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	s.i = i
	return b[start:i], isInt, nil
}

// readLiteral consumes lit (true, false or null) at the cursor.
func (s *scanner) readLiteral(lit string) error {
	if len(s.buf)-s.i < len(lit) || string(s.buf[s.i:s.i+len(lit)]) != lit {
		return s.unexpected("value")
	}
	s.i += len(lit)
	return nil
}

// skipValue consumes one JSON value of any kind. With checkUTF8 it also
// returns errStringNotUTF8 at the first string (key or value) whose contents
// are not valid UTF-8.
func (s *scanner) skipValue(depth int, checkUTF8 bool) error {
	switch c := s.peek(); {
	case c == '"':
		str, err := s.readString()
		if err != nil {
			return err
		}
		if checkUTF8 && !utf8.Valid(str) {
			return errStringNotUTF8
		}
		return nil
	case c == '{' || c == '[':
		if depth >= maxNesting {
			return s.errorf("nesting deeper than " + strconv.Itoa(maxNesting))
		}
		s.i++
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		if s.peek() == end {
			s.i++
			return nil
		}
		for {
			if c == '{' {
				if s.peek() != '"' {
					return s.unexpected("object key")
				}
				key, err := s.readString()
				if err != nil {
					return err
				}
				if checkUTF8 && !utf8.Valid(key) {
					return errStringNotUTF8
				}
				if s.peek() != ':' {
					return s.unexpected("':'")
				}
				s.i++
			}
			if err := s.skipValue(depth+1, checkUTF8); err != nil {
				return err
			}
			switch s.peek() {
			case ',':
				s.i++
			case end:
				s.i++
				return nil
			default:
				return s.unexpected("',' or '" + string(end) + "'")
			}
		}
	case c == '-' || isDigit(c):
		_, _, err := s.readNumber()
		return err
	case c == 't':
		return s.readLiteral("true")
	case c == 'f':
		return s.readLiteral("false")
	case c == 'n':
		return s.readLiteral("null")
	}
	return s.unexpected("value")
}
