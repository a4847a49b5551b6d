package snapshot

import (
	"slices"
	"testing"
	"time"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/ials"
	"github.com/eddyrec/eddy/learner/modelrec"
	"github.com/eddyrec/eddy/learner/trainset"
)

func TestRowsByHand(t *testing.T) {
	at := func(s int) time.Time { return time.UnixMilli(int64(s)) }
	s := trainset.FromEvents([]event.Event{
		{UserID: "u1", ItemID: "a", Type: event.Click, Time: at(1)},
		{UserID: "u1", ItemID: "b", Type: event.Click, Time: at(2)},
		{UserID: "u1", ItemID: "a", Type: event.Like, Time: at(3)}, // a again: moves to the end
		{UserID: "u1", ItemID: "c", Type: event.Click, Time: at(4)},
		{UserID: "u2", ItemID: "d", Type: event.Impression, Time: at(5)}, // no weight: no rows
	}, learner.DefaultConfidence())
	f := &ials.Factors{Dim: 2, Users: []float32{1, 2, 3, 4}, Items: []float32{5, 6, 7, 8, 9, 10, 11, 12}}
	rs := Rows(s, f, 2, 7)
	if len(rs) != 4 {
		t.Fatalf("%d records, want u1, a, b, c", len(rs))
	}
	u := rs[0]
	if u.Key != "u1" || u.Vector.Kind != modelrec.KindUser || !slices.Equal(u.Vector.Seen, []string{"a", "c"}) ||
		u.Vector.Updates != 4 || u.Vector.TsMillis != 4 || u.Vector.ModelVersion != 7 || !slices.Equal(u.Vector.Vec, []float32{1, 2}) {
		t.Fatalf("user %+v", u)
	}
	a := rs[1]
	if a.Key != "a" || a.Vector.Kind != modelrec.KindItem || a.Vector.Popularity != 2 || a.Vector.Updates != 2 ||
		a.Vector.TsMillis != 3 || !slices.Equal(a.Vector.Vec, []float32{5, 6}) {
		t.Fatalf("item %+v", a)
	}
	for _, r := range rs {
		if _, err := modelrec.AppendVector(nil, &r.Vector); err != nil {
			t.Fatalf("%s: %v", r.Key, err)
		}
	}
}
