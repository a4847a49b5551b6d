package trainset

import (
	"errors"
	"hash/fnv"
	"slices"
	"testing"
	"time"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/learner"
)

func TestBuilderDedupsSortsAndWeighs(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(1_700_000_000+int64(s), 0) }
	b := NewBuilder(learner.DefaultConfidence())
	events := []event.Event{
		{EventID: "e3", UserID: "u2", ItemID: "i1", Type: event.Like, Time: at(3)},
		{EventID: "e1", UserID: "u1", ItemID: "i1", Type: event.Click, Time: at(1)},
		{EventID: "e1", UserID: "u1", ItemID: "i9", Type: event.Click, Time: at(9)}, // resent id
		{EventID: "e2", UserID: "u1", ItemID: "i2", Type: event.Impression, Time: at(1)},
		{UserID: "u1", ItemID: "i2", Type: event.Dislike, Time: at(2)}, // no id: kept
		{UserID: "u1", ItemID: "i2", Type: event.Dislike, Time: at(2)},
	}
	var added []bool
	for i := range events {
		added = append(added, b.Add(&events[i]))
	}
	if !slices.Equal(added, []bool{true, true, false, true, true, true}) {
		t.Fatalf("added %v", added)
	}
	s := b.Set()
	if s.Len() != 5 || s.Duplicates != 1 {
		t.Fatalf("len %d duplicates %d", s.Len(), s.Duplicates)
	}
	// Sorted by time, stable: e1 and e2 (both at 1) keep their order.
	if !slices.IsSorted(s.TsMillis) || s.Items.ID(s.Item[0]) != "i1" || s.Items.ID(s.Item[1]) != "i2" {
		t.Fatalf("order: ts %v items %v", s.TsMillis, s.Item)
	}
	if s.Consumes[1] || s.Weight[1] != 0 || !s.Positive[0] || s.Positive[2] || s.Label[2] != 0 || s.Weight[2] != 1 {
		t.Fatalf("signals: consumes %v weight %v positive %v label %v", s.Consumes, s.Weight, s.Positive, s.Label)
	}
	if s.Users.ID(s.User[4]) != "u2" || s.Weight[4] != 2 {
		t.Fatalf("like: user %q weight %v", s.Users.ID(s.User[4]), s.Weight[4])
	}
	if first, last := s.Span(); !first.Equal(at(1)) || !last.Equal(at(3)) {
		t.Fatalf("span %v – %v", first, last)
	}
}

func TestMatrixTooSmall(t *testing.T) {
	var es []event.Event
	for i := range 12 {
		es = append(es, event.Event{UserID: "u", ItemID: string(rune('a' + i)), Type: event.Click, Time: time.Unix(int64(i), 0)})
	}
	s := FromEvents(es, learner.DefaultConfidence())
	m, err := s.Matrix(nil)
	if err != nil || m.NNZ() != 12 || m.Users != 1 || m.Items != 12 {
		t.Fatalf("matrix %+v, %v", m, err)
	}
	if _, err := s.Matrix(func(t int) bool { return t < 9 }); !errors.Is(err, ErrTooSmall) {
		t.Fatalf("9 positives: %v, want ErrTooSmall", err)
	}
}

func TestFNVMatchesTheStandardLibrary(t *testing.T) {
	for _, id := range []string{"", "e1", "imp-0123456789abcdef", "ünï"} {
		h := fnv.New64a()
		h.Write([]byte(id))
		if got := fnv64a(id); got != h.Sum64() {
			t.Fatalf("fnv64a(%q) = %x, hash/fnv %x", id, got, h.Sum64())
		}
	}
}
