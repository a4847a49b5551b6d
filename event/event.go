package event

import "time"

// Type is the kind of interaction an Event records.
type Type uint8

// The interaction types of the contract (DESIGN.md §3). The zero value is
// invalid so that a missing "type" is caught by validation.
const (
	TypeInvalid Type = iota
	Impression
	Click
	Watch
	Like
	Dislike
	Skip
	Purchase
	Rating
)

// Types lists every valid Type in contract order.
var Types = []Type{Impression, Click, Watch, Like, Dislike, Skip, Purchase, Rating}

var typeNames = [...]string{
	TypeInvalid: "invalid",
	Impression:  "impression",
	Click:       "click",
	Watch:       "watch",
	Like:        "like",
	Dislike:     "dislike",
	Skip:        "skip",
	Purchase:    "purchase",
	Rating:      "rating",
}

// String returns the wire name of t ("click", "watch", ...).
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "invalid"
}

// ParseType returns the Type with wire name s.
func ParseType(s string) (Type, bool) {
	for _, t := range Types {
		if typeNames[t] == s {
			return t, true
		}
	}
	return TypeInvalid, false
}

// Event is one user–item interaction, the unit that flows through Eddy.
//
// Value and Duration are optional on the wire; HasValue and HasDuration say
// whether they were present, because zero is a meaningful value (a watch of
// zero seconds).
type Event struct {
	EventID     string
	UserID      string
	ItemID      string
	Type        Type
	Time        time.Time // event time, UTC, millisecond precision
	Value       float64
	HasValue    bool
	Duration    float64
	HasDuration bool
	RequestID   string
	Context     map[string]string
}

// WatchRatio is Value/Duration clipped to [0,1] for watch events with a
// positive duration, and -1 when it is not defined.
func (e *Event) WatchRatio() float64 {
	if e.Type != Watch || !e.HasValue || !e.HasDuration || e.Duration <= 0 {
		return -1
	}
	r := e.Value / e.Duration
	switch {
	case r < 0:
		return 0
	case r > 1:
		return 1
	}
	return r
}
