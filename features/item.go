package features

import (
	"fmt"
	"slices"
	"time"

	"github.com/eddyrec/eddy/event"
)

// The CTR prior: a Beta(CTRPriorClicks, CTRPriorImpressions − CTRPriorClicks)
// prior, i.e. CTRPriorImpressions pseudo-impressions with a mean of
// CTRPriorClicks/CTRPriorImpressions = 5 %. An item without data gets the
// prior mean; 20 real impressions weigh as much as the prior.
const (
	CTRPriorClicks      = 1.0
	CTRPriorImpressions = 20.0
)

// maxSources bounds the per-source-partition offsets an item keeps; it is
// the largest partition count of the events topic the item stage supports.
const maxSources = 4096

type sourceOffset struct {
	partition int32
	offset    int64
}

// ItemState is the feature state of one item, built in the item stage from
// ItemUpdates of every user partition. The zero value is an empty state. It
// is not safe for concurrent use.
type ItemState struct {
	counts    typeCounters
	firstSeen int64
	lastSeen  int64
	watchN    uint64
	watchSum  float64
	users     hll
	sources   []sourceOffset // sorted by partition
	replays   uint64         // updates dropped as already applied
}

// Apply adds one event directly (no source offset check). The item stage
// uses ApplyUpdate; Apply serves single-process use and tests.
func (s *ItemState) Apply(e *event.Event) error {
	u := NewItemUpdate(e, -1, 0)
	_, err := s.ApplyUpdate(&u)
	return err
}

// ApplyUpdate adds one item update. It returns false, and changes nothing
// but the replay counter, when the update's source offset was already
// applied. It returns an error wrapping ErrInvalidEvent for an update of an
// unknown type.
func (s *ItemState) ApplyUpdate(u *ItemUpdate) (bool, error) {
	if u.Type < event.Impression || u.Type > event.Rating {
		return false, fmt.Errorf("%w: type %d", ErrInvalidEvent, u.Type)
	}
	if u.Partition >= 0 {
		i, found := slices.BinarySearchFunc(s.sources, u.Partition, func(x sourceOffset, p int32) int {
			return int(x.partition) - int(p)
		})
		switch {
		case found && u.Offset <= s.sources[i].offset:
			s.replays++
			return false, nil
		case found:
			s.sources[i].offset = u.Offset
		case len(s.sources) >= maxSources:
			return false, fmt.Errorf("%w: source partition %d beyond %d tracked partitions", ErrInvalidEvent, u.Partition, maxSources)
		default:
			s.sources = slices.Insert(s.sources, i, sourceOffset{u.Partition, u.Offset})
		}
	}
	if s.counts.total() == 0 {
		s.firstSeen, s.lastSeen = u.Time, u.Time
	} else {
		s.firstSeen = min(s.firstSeen, u.Time)
		s.lastSeen = max(s.lastSeen, u.Time)
	}
	s.counts.add(u.Type, u.Time)
	if u.WatchRatio >= 0 {
		s.watchN++
		s.watchSum += float64(u.WatchRatio)
	}
	if u.UserHash != 0 {
		s.users.add(u.UserHash)
	}
	return true, nil
}

// Events returns the number of updates applied.
func (s *ItemState) Events() uint64 { return s.counts.total() }

// Empty reports whether nothing was applied.
func (s *ItemState) Empty() bool { return s.counts.total() == 0 }

// Replays returns the number of updates dropped as already applied.
func (s *ItemState) Replays() uint64 { return s.replays }

// DistinctUsers returns the estimated number of distinct users.
func (s *ItemState) DistinctUsers() float64 { return s.users.estimate() }

// CTR returns the smoothed click-through rate (see doc.go).
func (s *ItemState) CTR() float64 {
	return smoothedCTR(float64(s.counts[event.Click-1].Total), float64(s.counts[event.Impression-1].Total))
}

func smoothedCTR(clicks, impressions float64) float64 {
	// Clicks can outnumber logged impressions (clients that do not log
	// impressions); count such clicks as impressions too so the rate stays
	// in [0,1].
	impressions = max(impressions, clicks)
	return (clicks + CTRPriorClicks) / (impressions + CTRPriorImpressions)
}

// ItemView is the JSON form of an item's features served by
// GET /v1/items/{id}/features, with decayed values evaluated at AsOf.
type ItemView struct {
	ItemID         string               `json:"item_id"`
	AsOf           time.Time            `json:"as_of"`
	Events         uint64               `json:"events"`
	Counts         map[string]TypeCount `json:"counts"` // decayed popularity per type
	Impressions    uint64               `json:"impressions"`
	Clicks         uint64               `json:"clicks"`
	CTR            float64              `json:"ctr"`
	CTR1d          float64              `json:"ctr_1d"` // from the 1-day decayed counts
	WatchEvents    uint64               `json:"watch_events"`
	MeanWatchRatio *float64             `json:"mean_watch_ratio"`
	DistinctUsers  uint64               `json:"distinct_users"`
	FirstSeen      time.Time            `json:"first_seen"`
	LastSeen       time.Time            `json:"last_seen"`
}

// View returns the JSON view of the state for item id at query time now.
func (s *ItemState) View(id string, now time.Time) ItemView {
	ms := now.UnixMilli()
	clk, imp := &s.counts[event.Click-1], &s.counts[event.Impression-1]
	v := ItemView{
		ItemID:        id,
		AsOf:          now.UTC(),
		Events:        s.counts.total(),
		Counts:        s.counts.view(ms),
		Impressions:   imp.Total,
		Clicks:        clk.Total,
		CTR:           s.CTR(),
		CTR1d:         smoothedCTR(clk.at(1, ms), imp.at(1, ms)),
		WatchEvents:   s.watchN,
		DistinctUsers: uint64(s.users.estimate() + 0.5),
	}
	if !s.Empty() {
		v.FirstSeen = time.UnixMilli(s.firstSeen).UTC()
		v.LastSeen = time.UnixMilli(s.lastSeen).UTC()
	}
	if s.watchN > 0 {
		m := s.watchSum / float64(s.watchN)
		v.MeanWatchRatio = &m
	}
	return v
}

// itemStateVersion is the schema version byte of the ItemState encoding.
const itemStateVersion = 1

// AppendBinary appends the encoding of s (layout in doc.go) to dst.
func (s *ItemState) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, itemStateVersion)
	dst = s.counts.appendBinary(dst)
	dst = appendVarint(dst, s.firstSeen)
	dst = appendVarint(dst, s.lastSeen)
	dst = appendUvarint(dst, s.watchN)
	dst = appendF64(dst, s.watchSum)
	dst = appendUvarint(dst, s.replays)
	dst = appendUvarint(dst, uint64(len(s.sources)))
	for _, so := range s.sources {
		dst = appendVarint(dst, int64(so.partition))
		dst = appendVarint(dst, so.offset)
	}
	return s.users.appendBinary(dst), nil
}

// MarshalBinary returns the encoding of s.
func (s *ItemState) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// UnmarshalBinary replaces s with the state encoded in data. On error
// (wrapping ErrCorrupt) s is left unchanged.
func (s *ItemState) UnmarshalBinary(data []byte) error {
	var x ItemState
	r := reader{b: data}
	if v := r.byte("version"); r.err == nil && v != itemStateVersion {
		return fmt.Errorf("features: decode item state: %w", corrupt("schema version %d, want %d", v, itemStateVersion))
	}
	x.counts.decode(&r)
	x.firstSeen = r.varint("first seen")
	x.lastSeen = r.varint("last seen")
	x.watchN = r.uvarint("watch count")
	x.watchSum = r.f64("watch sum")
	x.replays = r.uvarint("replays")
	if n := r.count("source count", maxSources, 2); n > 0 {
		x.sources = make([]sourceOffset, 0, n)
		for range n {
			p := r.varint("source partition")
			o := r.varint("source offset")
			if r.err != nil {
				break
			}
			if p < 0 || p > 1<<31-1 || (len(x.sources) > 0 && int32(p) <= x.sources[len(x.sources)-1].partition) {
				r.fail("source partitions: not increasing non-negative int32")
				break
			}
			x.sources = append(x.sources, sourceOffset{int32(p), o})
		}
	}
	x.users.decode(&r)
	if r.err == nil {
		total := x.counts.total()
		switch {
		case x.watchN > total:
			r.fail("watch count exceeds events")
		case x.firstSeen > x.lastSeen:
			r.fail("first seen after last seen")
		case x.watchSum > float64(x.watchN):
			r.fail("watch sum exceeds watch count")
		}
	}
	if err := r.done("item state"); err != nil {
		return err
	}
	*s = x
	return nil
}
