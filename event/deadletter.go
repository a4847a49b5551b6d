package event

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"
)

// DeadLetterVersion is the "v" of the dead-letter record layout.
const DeadLetterVersion = 1

// MaxDeadLetterRaw bounds the original bytes kept in a dead letter, so that
// one oversized bad event cannot make an oversized DLQ record.
const MaxDeadLetterRaw = 64 << 10

// DeadLetter is the value of a record on the eddy.events.dlq topic: an input
// Eddy could not accept, with why, where it came from and when. Its JSON is
//
//	{"v":1,"reason":"…","index":3,"raw":"…","received_at":"2026-…Z","source":"http"}
//
// plus "truncated":true when Raw was cut. Raw that is not valid UTF-8 (a
// common reason for rejection) would be altered by a JSON string, so it is
// written base64-encoded as "raw_base64" instead of "raw".
type DeadLetter struct {
	Version int
	// Reason is the error text, e.g. `event: field "ts": required`.
	Reason string
	// Index is the element's position in its batch (Rejection.Index); 0 for
	// an input that was a single record.
	Index int
	// Raw is the original bytes, truncated to MaxDeadLetterRaw.
	Raw string
	// Truncated reports that Raw is a prefix of the input.
	Truncated bool
	// ReceivedAt is when Eddy received the input.
	ReceivedAt time.Time
	// Source names the input's origin: "http", or for records consumed from
	// Kafka "kafka:<topic>/<partition>@<offset>".
	Source string
}

// NewDeadLetter builds a version-1 dead letter, truncating raw to
// MaxDeadLetterRaw (at a rune boundary when raw is valid UTF-8, so that
// the cut does not itself make the text invalid).
func NewDeadLetter(reason string, index int, raw []byte, receivedAt time.Time, source string) DeadLetter {
	truncated := false
	if len(raw) > MaxDeadLetterRaw {
		valid := utf8.Valid(raw)
		raw, truncated = raw[:MaxDeadLetterRaw], true
		if valid {
			for len(raw) > 0 && !utf8.Valid(raw) {
				raw = raw[:len(raw)-1]
			}
		}
	}
	return DeadLetter{
		Version:    DeadLetterVersion,
		Reason:     reason,
		Index:      index,
		Raw:        string(raw),
		Truncated:  truncated,
		ReceivedAt: receivedAt.UTC(),
		Source:     source,
	}
}

// DeadLetter turns a rejection into a dead letter.
func (r Rejection) DeadLetter(receivedAt time.Time, source string) DeadLetter {
	reason := "rejected"
	if r.Err != nil {
		reason = r.Err.Error()
	}
	return NewDeadLetter(reason, r.Index, r.Raw, receivedAt, source)
}

// deadLetterJSON is the wire layout; dead letters are rare, so reflection
// is fine here.
type deadLetterJSON struct {
	V          int       `json:"v"`
	Reason     string    `json:"reason"`
	Index      int       `json:"index"`
	Raw        *string   `json:"raw,omitempty"`
	RawBase64  *string   `json:"raw_base64,omitempty"`
	Truncated  bool      `json:"truncated,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
	Source     string    `json:"source"`
}

// MarshalJSON implements json.Marshaler. A zero Version is written as
// DeadLetterVersion.
func (dl DeadLetter) MarshalJSON() ([]byte, error) {
	w := deadLetterJSON{
		V:          dl.Version,
		Reason:     dl.Reason,
		Index:      dl.Index,
		Truncated:  dl.Truncated,
		ReceivedAt: dl.ReceivedAt,
		Source:     dl.Source,
	}
	if w.V == 0 {
		w.V = DeadLetterVersion
	}
	if utf8.ValidString(dl.Raw) {
		w.Raw = &dl.Raw
	} else {
		enc := base64.StdEncoding.EncodeToString([]byte(dl.Raw))
		w.RawBase64 = &enc
	}
	return json.Marshal(w)
}

// UnmarshalJSON implements json.Unmarshaler; a "v" other than
// DeadLetterVersion is ErrUnsupportedSchema.
func (dl *DeadLetter) UnmarshalJSON(data []byte) error {
	var w deadLetterJSON
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("event: decode dead letter: %w", err)
	}
	if w.V != DeadLetterVersion {
		return fmt.Errorf("%w: dead letter v=%d", ErrUnsupportedSchema, w.V)
	}
	raw := ""
	switch {
	case w.Raw != nil && w.RawBase64 != nil:
		return fmt.Errorf("event: decode dead letter: both raw and raw_base64")
	case w.Raw != nil:
		raw = *w.Raw
	case w.RawBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*w.RawBase64)
		if err != nil {
			return fmt.Errorf("event: decode dead letter raw_base64: %w", err)
		}
		raw = string(b)
	}
	*dl = DeadLetter{
		Version:    w.V,
		Reason:     w.Reason,
		Index:      w.Index,
		Raw:        raw,
		Truncated:  w.Truncated,
		ReceivedAt: w.ReceivedAt,
		Source:     w.Source,
	}
	return nil
}
