package drift

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/eddyrec/eddy/internal/recs"
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

// ServedItem is one item of a served list (recs.Item). Features are the
// ranker's feature values at serving time, sorted by name, for
// training–serving skew signals (feature.<name>).
type ServedItem = recs.Item

// Feature is one named feature value of a ServedItem.
type Feature = recs.Feature

// Features are a ServedItem's feature values, sorted by name.
type Features = recs.Features

// MaxServedItems bounds the items of a served list.
const MaxServedItems = recs.MaxItems

type servedListJSON struct {
	RequestID    string       `json:"request_id"`
	UserID       string       `json:"user_id"`
	ModelVersion string       `json:"model_version"`
	Variant      string       `json:"variant,omitempty"`
	Fallback     bool         `json:"fallback"`
	TS           int64        `json:"ts"`
	Items        []ServedItem `json:"items"`
}

// MarshalJSON writes ts as Unix milliseconds.
func (l ServedList) MarshalJSON() ([]byte, error) {
	return json.Marshal(servedListJSON{
		RequestID: l.RequestID, UserID: l.UserID, ModelVersion: l.ModelVersion,
		Variant: l.Variant, Fallback: l.Fallback, TS: l.Time.UnixMilli(), Items: l.Items,
	})
}

// ErrInvalidServedList is wrapped by every DecodeServedList validation error.
var ErrInvalidServedList = errors.New("drift: invalid served list")

// DecodeServedList decodes and validates one eddy.recs record value with a
// fresh recs.Decoder; a reader of many records keeps its own Decoder and
// calls decodeServedList, which interns feature names across records.
func DecodeServedList(data []byte) (ServedList, error) {
	var d recs.Decoder
	return decodeServedList(&d, data)
}

func decodeServedList(d *recs.Decoder, data []byte) (ServedList, error) {
	r, err := d.Decode(data)
	if err != nil {
		return ServedList{}, fmt.Errorf("%w: %v", ErrInvalidServedList, err)
	}
	return ServedList{
		RequestID: r.RequestID, UserID: r.UserID, ModelVersion: r.ModelVersion,
		Variant: r.Variant, Fallback: r.Fallback, Time: time.UnixMilli(r.TsMillis).UTC(), Items: r.Items,
	}, nil
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
	if len(l.ModelVersion) > recs.MaxIDBytes || len(l.Variant) > recs.MaxIDBytes {
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
		if len(it.Features) > recs.MaxFeatures {
			return bad(fmt.Sprintf("items[%d].features", i), fmt.Sprintf("at most %d", recs.MaxFeatures))
		}
		for k, f := range it.Features {
			if math.IsNaN(f.Value) || math.IsInf(f.Value, 0) {
				return bad(fmt.Sprintf("items[%d].features[%q]", i, f.Name), "must be finite")
			}
			if k > 0 && it.Features[k-1].Name >= f.Name {
				return bad(fmt.Sprintf("items[%d].features", i), "sorted by name, without duplicates")
			}
		}
	}
	return nil
}

func validID(s string) bool {
	return s != "" && len(s) <= recs.MaxIDBytes && utf8.ValidString(s)
}
