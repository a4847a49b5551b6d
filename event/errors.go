package event

import (
	"errors"
	"fmt"
	"strings"

	"github.com/eddyrec/eddy/internal/jsonscan"
)

// Sentinel errors callers branch on. Every error returned by this package
// matches at most one of them under errors.Is.
var (
	// ErrMalformed: the input is not well-formed JSON (see SyntaxError), or
	// a batch body is neither an object nor an array.
	ErrMalformed = errors.New("event: malformed JSON")
	// ErrEmpty: the body holds no event at all (only white space, an
	// empty array, or NDJSON with only blank lines).
	ErrEmpty = errors.New("event: empty body")
	// ErrTooManyEvents: a batch holds more than DecodeOptions.MaxEvents.
	ErrTooManyEvents = errors.New("event: too many events in batch")
	// ErrUnsupportedContentType: DecodeBatch was given a media type other
	// than application/json, application/x-ndjson or application/jsonl, or
	// a charset other than UTF-8.
	ErrUnsupportedContentType = errors.New("event: unsupported content type")
	// ErrNotObject: a batch element or a record value is well-formed JSON
	// but not an object.
	ErrNotObject = errors.New("event: not a JSON object")
	// ErrInvalidEvent: the event is well-formed JSON but breaks a rule of
	// the contract. Every *FieldError matches it.
	ErrInvalidEvent = errors.New("event: invalid event")
	// ErrUnsupportedSchema: a record names a schema version this build
	// cannot read (see ParseSchemaHeader and DeadLetter.UnmarshalJSON).
	ErrUnsupportedSchema = errors.New("event: unsupported schema version")
)

// FieldError is a validation failure: the field that broke a rule and the
// rule, in words meant for the API user who sent the event.
type FieldError struct {
	Field string // wire name: "user_id", "ts", "context", or an unknown key
	Rule  string // e.g. "longer than 256 bytes", "more than 5m0s in the future"
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("event: field %q: %s", e.Field, e.Rule)
}

// Is makes errors.Is(err, ErrInvalidEvent) hold.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidEvent }

func fieldErr(field, rule string) *FieldError { return &FieldError{Field: field, Rule: rule} }

// Rejection is one element of a batch that was not accepted.
type Rejection struct {
	// Index is the element's position in the batch: its index in the JSON
	// array, or its ordinal among the non-blank lines of an NDJSON body,
	// counting from 0. A single-object body is index 0.
	Index int
	// Raw is a copy of the element's bytes (a line of NDJSON without its
	// line terminator), suitable for a dead-letter record.
	Raw []byte
	// Err says why: a *FieldError (ErrInvalidEvent), a *SyntaxError
	// (ErrMalformed, NDJSON only) or ErrNotObject.
	Err error
}

// quoteKey renders a key taken from the input for an error message: bounded
// in length and always valid UTF-8 so the message itself is safe to log and
// to put in a JSON response.
func quoteKey(k []byte) string {
	const max = 64
	suffix := ""
	if len(k) > max {
		k, suffix = k[:max], "..."
	}
	return strings.ToValidUTF8(string(k), "\uFFFD") + suffix
}

// SyntaxError reports input that is not well-formed JSON: Offset counts
// bytes from the start of the buffer handed to Decode or DecodeBatch, and
// errors.Is(err, ErrMalformed) is true for every SyntaxError of this
// package. The scanner is shared with the other hand-written decoders
// (internal/jsonscan).
type SyntaxError = jsonscan.SyntaxError
