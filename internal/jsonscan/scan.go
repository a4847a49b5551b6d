package jsonscan

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxNesting bounds how deeply SkipValue follows nested arrays and objects.
// The documents Eddy reads are flat or nearly so (an event's context, a
// served item's features), so anything deeper is garbage; the bound keeps
// the recursive skipper's stack small on hostile input.
const MaxNesting = 64

// SyntaxError reports input that is not well-formed JSON. Offset counts bytes
// from the start of the scanned buffer. Kind is the sentinel of the document
// being read (event.ErrMalformed, for instance): errors.Is(err, Kind) holds,
// and the message starts with it.
type SyntaxError struct {
	Offset int
	Msg    string
	Kind   error
}

func (e *SyntaxError) Error() string {
	kind := "malformed JSON"
	if e.Kind != nil {
		kind = e.Kind.Error()
	}
	return fmt.Sprintf("%s at offset %d: %s", kind, e.Offset, e.Msg)
}

// Is makes errors.Is(err, e.Kind) hold.
func (e *SyntaxError) Is(target error) bool { return e.Kind != nil && target == e.Kind }

// ErrStringNotUTF8 is returned by SkipValue, when asked to check UTF-8, for a
// string whose bytes are not valid UTF-8; the caller turns it into an error
// naming the field being skipped.
var ErrStringNotUTF8 = errors.New("string is not valid UTF-8")

// Scanner is a cursor over one buffer of JSON text. It implements exactly the
// grammar of RFC 8259 and nothing more lenient, so that a hand-written decoder
// built on it and the structural skipper (SkipValue, used to step over
// unknown fields and to find where a rejected batch element ends) agree on
// what is well-formed. Decoders embed it and move Pos themselves past the
// punctuation they have Peeked.
type Scanner struct {
	Buf []byte
	Pos int
	// Kind is put into every SyntaxError (see there).
	Kind    error
	scratch []byte // reused buffer for strings that contain escapes
}

// Errorf returns a SyntaxError at the cursor.
func (s *Scanner) Errorf(msg string) error {
	return &SyntaxError{Offset: s.Pos, Msg: msg, Kind: s.Kind}
}

// IsSpace reports JSON white space.
func IsSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// IsDigit reports an ASCII digit.
func IsDigit(c byte) bool { return '0' <= c && c <= '9' }

// SkipSpace moves the cursor past white space.
func (s *Scanner) SkipSpace() {
	for s.Pos < len(s.Buf) && IsSpace(s.Buf[s.Pos]) {
		s.Pos++
	}
}

// AtEnd skips white space and reports whether the buffer is exhausted.
func (s *Scanner) AtEnd() bool {
	s.SkipSpace()
	return s.Pos >= len(s.Buf)
}

// Peek skips white space and returns the next byte without consuming it, or
// 0 at the end of the buffer. 0 never starts a JSON token, so comparing the
// result with a token byte is safe; use AtEnd to test for the end, since the
// input itself may hold a NUL byte.
func (s *Scanner) Peek() byte {
	s.SkipSpace()
	if s.Pos < len(s.Buf) {
		return s.Buf[s.Pos]
	}
	return 0
}

// Next reads what follows a member of an object or array ending in end
// ('}' or ']'): a ',' (more is true: another member follows) or end (more
// is false: the container is closed).
// It is small enough to be inlined in the decoders' loops; the error is
// built out of line.
func (s *Scanner) Next(end byte) (more bool, err error) {
	c := s.Peek()
	if c == ',' || c == end {
		s.Pos++
		return c == ',', nil
	}
	return false, s.notNext(end)
}

func (s *Scanner) notNext(end byte) error {
	return s.Unexpected("',' or '" + string(end) + "'")
}

// Unexpected reports the byte at the cursor (or the end of input) where the
// grammar wanted what.
func (s *Scanner) Unexpected(what string) error {
	if s.Pos >= len(s.Buf) {
		return s.Errorf("unexpected end of input, expected " + what)
	}
	c := s.Buf[s.Pos]
	var found string
	if c >= 0x20 && c < 0x7f {
		found = strconv.QuoteRune(rune(c))
	} else {
		found = fmt.Sprintf("byte 0x%02x", c)
	}
	return s.Errorf("unexpected " + found + ", expected " + what)
}

// ReadString consumes the JSON string that starts at the cursor (which must
// be '"') and returns its decoded contents. The result aliases s.Buf when the
// string has no escapes and s.scratch otherwise, so it is valid only until
// the next call.
//
// The contents are not checked for UTF-8 validity here: callers do that with
// the rule of the field at hand. A \u escape holding a lone UTF-16 surrogate
// cannot be represented in UTF-8; it is decoded as the byte 0xFF, which is
// never valid UTF-8, so the caller's check rejects it instead of the string
// silently gaining a U+FFFD the sender never wrote (what encoding/json does).
func (s *Scanner) ReadString() ([]byte, error) {
	start := s.Pos + 1
	b := s.Buf
	for i := start; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			s.Pos = i + 1
			return b[start:i], nil
		case c == '\\':
			return s.readEscaped(start, i)
		case c < 0x20:
			s.Pos = i
			return nil, s.Errorf("control character in string")
		}
	}
	s.Pos = len(b)
	return nil, s.Errorf("unterminated string")
}

// readEscaped finishes ReadString from the first backslash at i, decoding
// into s.scratch.
func (s *Scanner) readEscaped(start, i int) ([]byte, error) {
	b := s.Buf
	out := append(s.scratch[:0], b[start:i]...)
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			s.Pos = i + 1
			s.scratch = out
			return out, nil
		case c < 0x20:
			s.Pos = i
			return nil, s.Errorf("control character in string")
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
				s.Pos = i
				return nil, s.Errorf(`invalid \u escape`)
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
			s.Pos = i
			return nil, s.Errorf("invalid escape in string")
		}
		i += 2
	}
	s.Pos = len(b)
	s.scratch = out
	return nil, s.Errorf("unterminated string")
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

// ReadNumber consumes the JSON number at the cursor and returns its text and
// whether it is written as an integer (no fraction, no exponent).
func (s *Scanner) ReadNumber() (num []byte, isInt bool, err error) {
	b, i, start := s.Buf, s.Pos, s.Pos
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && IsDigit(b[i]) {
			i++
		}
	default:
		s.Pos = i
		return nil, false, s.Unexpected("digit")
	}
	isInt = true
	if i < len(b) && b[i] == '.' {
		isInt = false
		i++
		if i >= len(b) || !IsDigit(b[i]) {
			s.Pos = i
			return nil, false, s.Unexpected("digit after decimal point")
		}
		for i < len(b) && IsDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		isInt = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !IsDigit(b[i]) {
			s.Pos = i
			return nil, false, s.Unexpected("digit in exponent")
		}
		for i < len(b) && IsDigit(b[i]) {
			i++
		}
	}
	s.Pos = i
	return b[start:i], isInt, nil
}

// ReadLiteral consumes lit (true, false or null) at the cursor.
func (s *Scanner) ReadLiteral(lit string) error {
	if len(s.Buf)-s.Pos < len(lit) || string(s.Buf[s.Pos:s.Pos+len(lit)]) != lit {
		return s.Unexpected("value")
	}
	s.Pos += len(lit)
	return nil
}

// SkipValue consumes one JSON value of any kind. With checkUTF8 it also
// returns ErrStringNotUTF8 at the first string (key or value) whose contents
// are not valid UTF-8.
func (s *Scanner) SkipValue(depth int, checkUTF8 bool) error {
	switch c := s.Peek(); {
	case c == '"':
		str, err := s.ReadString()
		if err != nil {
			return err
		}
		if checkUTF8 && !utf8.Valid(str) {
			return ErrStringNotUTF8
		}
		return nil
	case c == '{' || c == '[':
		if depth >= MaxNesting {
			return s.Errorf("nesting deeper than " + strconv.Itoa(MaxNesting))
		}
		s.Pos++
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		if s.Peek() == end {
			s.Pos++
			return nil
		}
		for {
			if c == '{' {
				if s.Peek() != '"' {
					return s.Unexpected("object key")
				}
				key, err := s.ReadString()
				if err != nil {
					return err
				}
				if checkUTF8 && !utf8.Valid(key) {
					return ErrStringNotUTF8
				}
				if s.Peek() != ':' {
					return s.Unexpected("':'")
				}
				s.Pos++
			}
			if err := s.SkipValue(depth+1, checkUTF8); err != nil {
				return err
			}
			if more, err := s.Next(end); !more {
				return err
			}
		}
	case c == '-' || IsDigit(c):
		_, _, err := s.ReadNumber()
		return err
	case c == 't':
		return s.ReadLiteral("true")
	case c == 'f':
		return s.ReadLiteral("false")
	case c == 'n':
		return s.ReadLiteral("null")
	}
	return s.Unexpected("value")
}
