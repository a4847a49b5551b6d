package retrain

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// RequestSchemaVersion is the version of the Request JSON, shared with
// drift.RetrainRequest (a superset: the drift role's requests decode here).
const RequestSchemaVersion = 1

// The kinds of control records the retrain role acts on. Others on the
// control topic are for other roles and are skipped.
const (
	KindRetrain  = "retrain"
	KindRollback = "rollback"
)

// The triggers a version records.
const (
	TriggerDrift    = "drift"
	TriggerManual   = "manual"
	TriggerSchedule = "schedule"
	TriggerRollback = "rollback"
)

// Request asks the retrain role for a run (KindRetrain) or a rollback
// (KindRollback). The drift role writes retrain requests with report ids
// and no trigger; eddy retrain --now, --schedule and eddy model rollback
// write theirs with one.
type Request struct {
	Schema    int       `json:"schema"`
	Kind      string    `json:"kind"`
	ID        string    `json:"id"`
	Time      time.Time `json:"ts"`
	Trigger   string    `json:"trigger,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	ReportIDs []string  `json:"report_ids,omitempty"`
	// Version is the version a rollback restores.
	Version uint64 `json:"version,omitempty"`
}

// MaxRequestBytes bounds a control record the role decodes.
const MaxRequestBytes = 64 << 10

// ErrBadRequest is wrapped by every decoding error of DecodeRequest.
var ErrBadRequest = errors.New("retrain: bad control record")

// errOtherKind marks a well-formed control record for another role.
var errOtherKind = errors.New("retrain: not a retrain or rollback request")

// DecodeRequest reads a control record. A record of another kind returns
// an error for which IsOtherKind is true.
func DecodeRequest(b []byte) (Request, error) {
	var r Request
	if len(b) > MaxRequestBytes {
		return r, fmt.Errorf("%w: %d bytes (max %d)", ErrBadRequest, len(b), MaxRequestBytes)
	}
	if !utf8.Valid(b) {
		return r, fmt.Errorf("%w: not UTF-8", ErrBadRequest)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	switch {
	case r.Kind != KindRetrain && r.Kind != KindRollback:
		return r, errOtherKind
	case r.Schema != RequestSchemaVersion:
		return r, fmt.Errorf("%w: schema %d (this build reads %d)", ErrBadRequest, r.Schema, RequestSchemaVersion)
	case r.ID == "" || len(r.ID) > 256:
		return r, fmt.Errorf("%w: id of %d bytes: want 1–256", ErrBadRequest, len(r.ID))
	case r.Kind == KindRollback && r.Version == 0:
		return r, fmt.Errorf("%w: a rollback names no version", ErrBadRequest)
	case len(r.ReportIDs) > 1024:
		return r, fmt.Errorf("%w: %d report ids (max 1024)", ErrBadRequest, len(r.ReportIDs))
	}
	switch r.Trigger {
	case "":
		r.Trigger = TriggerDrift
		if r.Kind == KindRollback {
			r.Trigger = TriggerRollback
		}
	case TriggerDrift, TriggerManual, TriggerSchedule, TriggerRollback:
	default:
		return r, fmt.Errorf("%w: trigger %q: want drift, manual, schedule or rollback", ErrBadRequest, r.Trigger)
	}
	return r, nil
}

// IsOtherKind reports whether err says a control record is for another
// role (not an error for the retrain role).
func IsOtherKind(err error) bool { return errors.Is(err, errOtherKind) }

// Encode returns the request's JSON.
func (r Request) Encode() ([]byte, error) {
	r.Schema = RequestSchemaVersion
	return json.Marshal(r)
}
