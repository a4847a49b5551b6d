package drift

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// ServedListSchemaHeaderValue is the value of the event.SchemaHeader record
// header on eddy.recs records. Records without the header are read as this
// version.
const ServedListSchemaHeaderValue = "recs/v1"

// ServedList is one record of eddy.recs: a list the scorer served. The
// scorer writes it; drift reads it for prediction signals and the outcome
// join. Time is written as integer Unix milliseconds ("ts") and read from
// either milliseconds or an RFC 3339 string.
type ServedList struct {
	RequestID    string       `json:"request_id"`
	UserID       string       `json:"user_id"`
	ModelVersion string       `json:"model_version"`
	Variant      string       `json:"variant,omitempty"`
	Fallback     bool         `json:"fallback"`
	Time         time.Time    `json:"-"`
	Items        []ServedItem `json:"items"`
}

// ServedItem is one item of a served list. Features are the ranker's
// feature values at serving time, by name, for training–serving skew
// signals (feature.<name>).
type ServedItem struct {
	ItemID   string             `json:"item_id"`
	Position int                `json:"position"`
	Score    float64            `json:"score"`
	Features map[string]float64 `json:"features,omitempty"`
}

// Limits a decoded ServedList must respect.
const (
	MaxServedItems    = 1000
	maxServedIDBytes  = 256
	maxServedFeatures = 256
)

type servedListJSON struct {
	RequestID    string          `json:"request_id"`
	UserID       string          `json:"user_id"`
	ModelVersion string          `json:"model_version"`
	Variant      string          `json:"variant,omitempty"`
	Fallback     bool            `json:"fallback"`
	TS           json.RawMessage `json:"ts"`
	Items        []ServedItem    `json:"items"`
}

// MarshalJSON writes ts as Unix milliseconds.
func (l ServedList) MarshalJSON() ([]byte, error) {
	return json.Marshal(servedListJSON{
		RequestID: l.RequestID, UserID: l.UserID, ModelVersion: l.ModelVersion,
		Variant: l.Variant, Fallback: l.Fallback,
		TS:    strconv.AppendInt(nil, l.Time.UnixMilli(), 10),
		Items: l.Items,
	})
}

// ErrInvalidServedList is wrapped by every DecodeServedList validation error.
var ErrInvalidServedList = errors.New("drift: invalid served list")

// DecodeServedList reads and validates one eddy.recs record value.
func DecodeServedList(data []byte) (ServedList, error) {
	var j servedListJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return ServedList{}, fmt.Errorf("%w: %v", ErrInvalidServedList, err)
	}
	l := ServedList{
		RequestID: j.RequestID, UserID: j.UserID, ModelVersion: j.ModelVersion,
		Variant: j.Variant, Fallback: j.Fallback, Items: j.Items,
	}
	ts, err := parseTS(j.TS)
	if err != nil {
		return ServedList{}, fmt.Errorf("%w: ts: %v", ErrInvalidServedList, err)
	}
	l.Time = ts
	if err := l.Validate(); err != nil {
		return ServedList{}, err
	}
	return l, nil
}

func parseTS(raw json.RawMessage) (time.Time, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, errors.New("required")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, err
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, err
		}
		if ms := t.UnixMilli(); ms < 0 || ms > 1<<53 {
			return time.Time{}, fmt.Errorf("%s out of range", s)
		}
		return t.UTC(), nil
	}
	ms, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("want integer Unix milliseconds or RFC 3339: %v", err)
	}
	if ms < 0 || ms > 1<<53 {
		return time.Time{}, fmt.Errorf("%d out of range", ms)
	}
	return time.UnixMilli(ms).UTC(), nil
}

// Validate checks ids (1–256 bytes of UTF-8; request_id and user_id
// required), at most MaxServedItems items with non-empty ids, finite
// scores and features, and a non-zero time.
func (l *ServedList) Validate() error {
	bad := func(field, rule string) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidServedList, field, rule)
	}
	if !validID(l.RequestID) {
		return bad("request_id", "required, 1–256 bytes of UTF-8")
	}
	if !validID(l.UserID) {
		return bad("user_id", "required, 1–256 bytes of UTF-8")
	}
	if len(l.ModelVersion) > maxServedIDBytes || len(l.Variant) > maxServedIDBytes {
		return bad("model_version/variant", "at most 256 bytes")
	}
	if l.Time.IsZero() {
		return bad("ts", "required")
	}
	if len(l.Items) > MaxServedItems {
		return bad("items", fmt.Sprintf("at most %d", MaxServedItems))
	}
	for i := range l.Items {
		it := &l.Items[i]
		if !validID(it.ItemID) {
			return bad(fmt.Sprintf("items[%d].item_id", i), "required, 1–256 bytes of UTF-8")
		}
		if math.IsNaN(it.Score) || math.IsInf(it.Score, 0) {
			return bad(fmt.Sprintf("items[%d].score", i), "must be finite")
		}
		if len(it.Features) > maxServedFeatures {
			return bad(fmt.Sprintf("items[%d].features", i), fmt.Sprintf("at most %d", maxServedFeatures))
		}
		for k, v := range it.Features {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return bad(fmt.Sprintf("items[%d].features[%q]", i, k), "must be finite")
			}
		}
	}
	return nil
}

func validID(s string) bool {
	return s != "" && len(s) <= maxServedIDBytes && utf8.ValidString(s)
}
