package features

import (
	"errors"
	"fmt"
	"time"

	"github.com/eddyrec/eddy/event"
)

// Definitions fixed by the feature contract (see doc.go for the reasoning).
const (
	// RecentCapacity is the length of a user's recent-items list.
	RecentCapacity = 50
	// SessionGap is the inactivity that ends a session: an event more than
	// SessionGap after the previous one starts a new session.
	SessionGap = 30 * time.Minute
	// AllowedLateness is how far behind a user's latest event time an event
	// may be and still count in sessions. It must not exceed SessionGap:
	// that bound is what makes the streaming session count equal to the
	// count over the time-sorted stream (see doc.go).
	AllowedLateness = SessionGap
)

const (
	sessionGapMs      = int64(SessionGap / time.Millisecond)
	allowedLatenessMs = int64(AllowedLateness / time.Millisecond)
	maxIDLen          = 256 // event contract: user_id and item_id are at most 256 bytes
)

// ErrInvalidEvent is returned (wrapped) by Apply for an event that the
// event contract would have rejected: an unknown type or an empty item id.
// The runtime validates events before they reach features, so this marks a
// bug upstream, not bad user input.
var ErrInvalidEvent = errors.New("features: invalid event")

// recentItem is one entry of the recent-items list.
type recentItem struct {
	id   string
	hash uint64
	typ  event.Type
	t    int64 // unix ms
}

// UserState is the feature state of one user, built from that user's events
// in event time. The zero value is an empty state, ready for Apply. It is not
// safe for concurrent use: one partition task owns it.
type UserState struct {
	counts    typeCounters
	firstSeen int64 // unix ms; meaningful once counts.total() > 0
	lastSeen  int64 // unix ms, the user's event-time watermark

	watchN   uint64  // watch events with a defined watch ratio
	watchSum float64 // sum of their ratios

	sessions           uint64
	curStart, curEnd   int64 // the last session
	hasPrev            bool
	prevStart, prevEnd int64 // the session before it, kept to merge the two
	late, tooLate      uint64
	recent             []recentItem // most recent first, distinct items
	seen               seenSet
}

// Apply adds one event to the state. Events may arrive in any order; see
// doc.go for what lateness changes. It returns an error wrapping
// ErrInvalidEvent, and leaves the state unchanged, for an event of an
// unknown type or without an item id.
func (u *UserState) Apply(e *event.Event) error {
	if e.Type < event.Impression || e.Type > event.Rating || e.ItemID == "" {
		return fmt.Errorf("%w: type %q, item id %q", ErrInvalidEvent, e.Type, e.ItemID)
	}
	t := e.Time.UnixMilli()
	first := u.counts.total() == 0
	u.counts.add(e.Type, t)

	lateness := int64(0)
	if first {
		u.firstSeen, u.lastSeen = t, t
	} else {
		lateness = u.lastSeen - t
		u.firstSeen = min(u.firstSeen, t)
		u.lastSeen = max(u.lastSeen, t)
	}
	if lateness > 0 {
		u.late++
	}
	if r := e.WatchRatio(); r >= 0 {
		u.watchN++
		u.watchSum += r
	}
	var h uint64
	if e.Type != event.Impression {
		h = Hash64(e.ItemID)
		u.addRecent(e.ItemID, h, e.Type, t)
	}
	if consumed(e.Type) {
		u.seen.add(h)
	}
	if lateness > allowedLatenessMs || !u.addSession(t, first) {
		u.tooLate++
	}
	return nil
}

// addSession updates the session count with an event at t whose lateness is
// within AllowedLateness. It reports false for an event it cannot place.
func (u *UserState) addSession(t int64, first bool) bool {
	switch {
	case first:
		u.sessions = 1
		u.curStart, u.curEnd = t, t
	case t-u.curEnd > sessionGapMs:
		u.prevStart, u.prevEnd, u.hasPrev = u.curStart, u.curEnd, true
		u.curStart, u.curEnd = t, t
		u.sessions++
	case u.curStart-t <= sessionGapMs:
		// Joins the last session; a late event may move its start back
		// and so close the gap to the session before, merging the two.
		u.curEnd = max(u.curEnd, t)
		if t < u.curStart {
			u.curStart = t
			if u.hasPrev && t-u.prevEnd <= sessionGapMs {
				u.curStart = u.prevStart
				u.hasPrev = false
				u.sessions--
			}
		}
	default:
		// More than SessionGap before the last session: unreachable while
		// AllowedLateness ≤ SessionGap, kept so a future change cannot
		// corrupt the count silently.
		return false
	}
	return true
}

// addRecent keeps recent as the RecentCapacity distinct items with the
// latest event times, most recent first. The result does not depend on the
// arrival order (ties in time aside): an item's entry carries its latest
// time, and an item pushed out can come back only with a later time.
func (u *UserState) addRecent(id string, h uint64, typ event.Type, t int64) {
	for i := range u.recent {
		if r := &u.recent[i]; r.hash == h && r.id == id {
			if t < r.t {
				return
			}
			u.recent = append(u.recent[:i], u.recent[i+1:]...)
			break
		}
	}
	pos := len(u.recent)
	for i := range u.recent {
		if u.recent[i].t <= t {
			pos = i
			break
		}
	}
	if pos >= RecentCapacity {
		return
	}
	if len(u.recent) < RecentCapacity {
		u.recent = append(u.recent, recentItem{})
	}
	copy(u.recent[pos+1:], u.recent[pos:])
	u.recent[pos] = recentItem{id: id, hash: h, typ: typ, t: t}
}

// Events returns the number of events applied.
func (u *UserState) Events() uint64 { return u.counts.total() }

// Empty reports whether no event was applied.
func (u *UserState) Empty() bool { return u.counts.total() == 0 }

// LastSeen returns the latest event time applied (zero time when empty).
func (u *UserState) LastSeen() time.Time {
	if u.Empty() {
		return time.Time{}
	}
	return time.UnixMilli(u.lastSeen).UTC()
}

// Sessions returns the number of sessions.
func (u *UserState) Sessions() uint64 { return u.sessions }

// HasSeen reports whether the seen set holds itemID.
func (u *UserState) HasSeen(itemID string) bool { return u.seen.contains(Hash64(itemID)) }

// RecentItem is one entry of a user's recent items.
type RecentItem struct {
	ItemID string    `json:"item_id"`
	Type   string    `json:"type"`
	Time   time.Time `json:"ts"`
}

// UserView is the JSON form of a user's features served by
// GET /v1/users/{id}/features, with decayed counts evaluated at AsOf.
type UserView struct {
	UserID         string               `json:"user_id"`
	AsOf           time.Time            `json:"as_of"`
	Events         uint64               `json:"events"`
	Counts         map[string]TypeCount `json:"counts"`
	RecentItems    []RecentItem         `json:"recent_items"`
	FirstSeen      time.Time            `json:"first_seen"`
	LastSeen       time.Time            `json:"last_seen"`
	Sessions       uint64               `json:"sessions"`
	WatchEvents    uint64               `json:"watch_events"`
	MeanWatchRatio *float64             `json:"mean_watch_ratio"` // null without watch events
	SeenItems      int                  `json:"seen_items"`
	LateEvents     uint64               `json:"late_events"`
	TooLateEvents  uint64               `json:"too_late_events"`
}

// View returns the JSON view of the state for user id, with decayed counts
// evaluated at now (a query time before the last event is treated as the
// last event's time).
func (u *UserState) View(id string, now time.Time) UserView {
	ms := now.UnixMilli()
	v := UserView{
		UserID:        id,
		AsOf:          now.UTC(),
		Events:        u.counts.total(),
		Counts:        u.counts.view(ms),
		RecentItems:   make([]RecentItem, len(u.recent)),
		Sessions:      u.sessions,
		WatchEvents:   u.watchN,
		SeenItems:     u.seen.len(),
		LateEvents:    u.late,
		TooLateEvents: u.tooLate,
	}
	for i, r := range u.recent {
		v.RecentItems[i] = RecentItem{ItemID: r.id, Type: r.typ.String(), Time: time.UnixMilli(r.t).UTC()}
	}
	if !u.Empty() {
		v.FirstSeen = time.UnixMilli(u.firstSeen).UTC()
		v.LastSeen = time.UnixMilli(u.lastSeen).UTC()
	}
	if u.watchN > 0 {
		m := u.watchSum / float64(u.watchN)
		v.MeanWatchRatio = &m
	}
	return v
}

// userStateVersion is the schema version byte of the UserState encoding.
const userStateVersion = 1

// AppendBinary appends the encoding of u (layout in doc.go) to dst.
func (u *UserState) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, userStateVersion)
	dst = u.counts.appendBinary(dst)
	dst = appendVarint(dst, u.firstSeen)
	dst = appendVarint(dst, u.lastSeen)
	dst = appendUvarint(dst, u.watchN)
	dst = appendF64(dst, u.watchSum)
	dst = appendUvarint(dst, u.sessions)
	dst = appendVarint(dst, u.curStart)
	dst = appendVarint(dst, u.curEnd)
	if u.hasPrev {
		dst = append(dst, 1)
		dst = appendVarint(dst, u.prevStart)
		dst = appendVarint(dst, u.prevEnd)
	} else {
		dst = append(dst, 0)
	}
	dst = appendUvarint(dst, u.late)
	dst = appendUvarint(dst, u.tooLate)
	dst = appendUvarint(dst, uint64(len(u.recent)))
	for _, r := range u.recent {
		dst = appendString(dst, r.id)
		dst = append(dst, byte(r.typ))
		dst = appendVarint(dst, r.t)
	}
	return u.seen.appendBinary(dst), nil
}

// MarshalBinary returns the encoding of u.
func (u *UserState) MarshalBinary() ([]byte, error) { return u.AppendBinary(nil) }

// UnmarshalBinary replaces u with the state encoded in data. On error
// (wrapping ErrCorrupt) u is left unchanged.
func (u *UserState) UnmarshalBinary(data []byte) error {
	var s UserState
	r := reader{b: data}
	if v := r.byte("version"); r.err == nil && v != userStateVersion {
		return fmt.Errorf("features: decode user state: %w", corrupt("schema version %d, want %d", v, userStateVersion))
	}
	s.counts.decode(&r)
	s.firstSeen = r.varint("first seen")
	s.lastSeen = r.varint("last seen")
	s.watchN = r.uvarint("watch count")
	s.watchSum = r.f64("watch sum")
	s.sessions = r.uvarint("sessions")
	s.curStart = r.varint("session start")
	s.curEnd = r.varint("session end")
	switch r.byte("previous session flag") {
	case 0:
	case 1:
		s.hasPrev = true
		s.prevStart = r.varint("previous session start")
		s.prevEnd = r.varint("previous session end")
	default:
		r.fail("previous session flag: not 0 or 1")
	}
	s.late = r.uvarint("late events")
	s.tooLate = r.uvarint("too-late events")
	if n := r.count("recent count", RecentCapacity, 3); n > 0 {
		// The ids share one allocation: decode happens on every cache
		// miss of the runtime, and per-id strings were most of its cost.
		ids := make([][]byte, 0, n)
		size := 0
		s.recent = make([]recentItem, 0, n)
		for range n {
			id := r.bytes("recent item", maxIDLen)
			it := recentItem{typ: event.Type(r.byte("recent type")), t: r.varint("recent time")}
			if r.err != nil {
				break
			}
			switch {
			case len(id) == 0:
				r.fail("recent item: empty id")
			case it.typ <= event.Impression || it.typ > event.Rating:
				r.fail("recent type: out of range")
			case len(s.recent) > 0 && s.recent[len(s.recent)-1].t < it.t:
				r.fail("recent items: not most recent first")
			}
			if r.err != nil {
				break
			}
			ids = append(ids, id)
			size += len(id)
			s.recent = append(s.recent, it)
		}
		if r.err == nil {
			all := make([]byte, 0, size)
			for _, id := range ids {
				all = append(all, id...)
			}
			str := string(all)
			off := 0
			for i, id := range ids {
				s.recent[i].id = str[off : off+len(id)]
				s.recent[i].hash = Hash64(s.recent[i].id)
				off += len(id)
			}
		}
	}
	s.seen.decode(&r)
	total := s.counts.total()
	if r.err == nil {
		switch {
		case total == 0 && (s.sessions != 0 || s.watchN != 0 || len(s.recent) != 0 || s.seen.len() != 0):
			r.fail("empty state with contents")
		case s.sessions > total || s.watchN > total || s.late > total || s.tooLate > total:
			r.fail("counters exceed the number of events")
		case s.firstSeen > s.lastSeen:
			r.fail("first seen after last seen")
		case s.watchSum > float64(s.watchN):
			r.fail("watch sum exceeds watch count")
		}
	}
	if err := r.done("user state"); err != nil {
		return err
	}
	*u = s
	return nil
}
