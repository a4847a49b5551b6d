package features

import (
	"fmt"
	"testing"
	"time"

	"github.com/eddyrec/eddy/event"
)

// seeds returns valid encodings of every record to start the fuzzers from.
func fuzzStates(t testing.TB) (users, items, snaps, updates [][]byte) {
	evs := []event.Event{
		{UserID: "u", ItemID: "a", Type: event.Click, Time: t0},
		{UserID: "u", ItemID: "b", Type: event.Watch, Time: t0.Add(time.Hour), Value: 5, HasValue: true, Duration: 10, HasDuration: true},
		{UserID: "u", ItemID: "a", Type: event.Impression, Time: t0.Add(-time.Hour)},
		{UserID: "u", ItemID: "c", Type: event.Rating, Time: t0.Add(2 * time.Hour), Value: 4, HasValue: true},
	}
	var u UserState
	var it ItemState
	for i := range evs {
		_ = u.Apply(&evs[i])
		_ = it.Apply(&evs[i])
		b, _ := u.MarshalBinary()
		users = append(users, b)
		b, _ = it.MarshalBinary()
		items = append(items, b)
		s := u.Snapshot("u")
		b, _ = s.MarshalBinary()
		snaps = append(snaps, b)
		up := NewItemUpdate(&evs[i], int32(i), int64(i))
		b, _ = up.MarshalBinary()
		updates = append(updates, b)
	}
	var big ItemState
	for i := range 1000 {
		e := event.Event{UserID: fmt.Sprint(i), ItemID: "x", Type: event.Click, Time: t0}
		_ = big.Apply(&e)
	}
	b, _ := big.MarshalBinary()
	items = append(items, b)
	return
}

func FuzzUserState(f *testing.F) {
	users, _, _, _ := fuzzStates(f)
	for _, b := range users {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var u UserState
		if err := u.UnmarshalBinary(data); err != nil {
			return
		}
		// A state that decodes must re-encode to an equal state and
		// keep working.
		b, _ := u.MarshalBinary()
		var x UserState
		if err := x.UnmarshalBinary(b); err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		b2, _ := x.MarshalBinary()
		if string(b) != string(b2) {
			t.Fatal("re-encoding is not stable")
		}
		e := event.Event{UserID: "u", ItemID: "z", Type: event.Click, Time: t0}
		_ = x.Apply(&e)
		_ = x.View("u", t0)
		s := x.Snapshot("u")
		_, _ = s.MarshalBinary()
	})
}

func FuzzItemState(f *testing.F) {
	_, items, _, _ := fuzzStates(f)
	for _, b := range items {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s ItemState
		if err := s.UnmarshalBinary(data); err != nil {
			return
		}
		b, _ := s.MarshalBinary()
		var x ItemState
		if err := x.UnmarshalBinary(b); err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		e := event.Event{UserID: "u", ItemID: "z", Type: event.Click, Time: t0}
		_ = x.Apply(&e)
		_ = x.View("z", t0)
	})
}

func FuzzUserSnapshot(f *testing.F) {
	_, _, snaps, _ := fuzzStates(f)
	for _, b := range snaps {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s UserSnapshot
		if err := s.UnmarshalBinary(data); err != nil {
			return
		}
		b, _ := s.MarshalBinary()
		var x UserSnapshot
		if err := x.UnmarshalBinary(b); err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
		_ = x.Seen.Contains("a")
		_ = x.DecayedAt(event.Click, 0, t0)
		_ = x.TypeMix(event.Click, 2)
	})
}

func FuzzItemUpdate(f *testing.F) {
	_, _, _, updates := fuzzStates(f)
	for _, b := range updates {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var u ItemUpdate
		if err := u.UnmarshalBinary(data); err != nil {
			return
		}
		b, _ := u.MarshalBinary()
		var x ItemUpdate
		if err := x.UnmarshalBinary(b); err != nil || x != u {
			t.Fatalf("round trip: %+v → %+v (%v)", u, x, err)
		}
		var s ItemState
		if _, err := s.ApplyUpdate(&x); err != nil {
			t.Fatalf("decoded update rejected: %v", err)
		}
	})
}

func FuzzDedup(f *testing.F) {
	cfg := DedupConfig{TTL: time.Minute, MaxIDs: 64, SegmentSize: 16}
	d, _ := NewDeduper(cfg)
	for i := range 40 {
		d.Duplicate(fmt.Sprint(i), t0.Add(time.Duration(i)*time.Second))
	}
	b, _ := d.MarshalBinary()
	f.Add(b)
	_ = d.Flush(func(_ uint64, data []byte) error { f.Add(append([]byte(nil), data...)); return nil })
	f.Fuzz(func(t *testing.T, data []byte) {
		x, _ := NewDeduper(cfg)
		if err := x.UnmarshalBinary(data); err == nil {
			x.Duplicate("a", t0)
			if x.Stats().Remembered > cfg.MaxIDs {
				t.Fatalf("restored %d ids over the bound", x.Stats().Remembered)
			}
		}
		if y, err := RestoreDeduper(cfg, [][]byte{data}); err == nil {
			y.Duplicate("a", t0)
		}
	})
}
