package features

import (
	"testing"
	"time"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/synth"
)

// benchEvents returns a synthetic stream (the project's generator: power-law
// popularity, sessions, watch durations).
func benchEvents(b *testing.B, n int) []event.Event {
	g, err := synth.New(synth.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	evs := make([]event.Event, n)
	for i := range evs {
		g.Next(&evs[i])
	}
	return evs
}

// BenchmarkUserApply applies a stream to per-user states (a map stands in
// for the runtime's cache, so the figure includes the lookup).
func BenchmarkUserApply(b *testing.B) {
	evs := benchEvents(b, 1<<16)
	users := map[string]*UserState{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		e := &evs[i&(len(evs)-1)]
		u := users[e.UserID]
		if u == nil {
			u = new(UserState)
			users[e.UserID] = u
		}
		if err := u.Apply(e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkItemApplyUpdate includes decoding the ItemUpdate record, as the
// item stage does.
func BenchmarkItemApplyUpdate(b *testing.B) {
	evs := benchEvents(b, 1<<16)
	recs := make([][]byte, len(evs))
	for i := range evs {
		u := NewItemUpdate(&evs[i], 0, int64(i))
		recs[i], _ = u.MarshalBinary()
	}
	items := map[string]*ItemState{}
	var up ItemUpdate
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := up.UnmarshalBinary(recs[i&(len(recs)-1)]); err != nil {
			b.Fatal(err)
		}
		up.Offset = int64(i) // a fresh offset each loop so nothing is dropped as a replay
		s := items[up.ItemID]
		if s == nil {
			s = new(ItemState)
			items[up.ItemID] = s
		}
		if _, err := s.ApplyUpdate(&up); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkItemUpdateEncode(b *testing.B) {
	evs := benchEvents(b, 1024)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		u := NewItemUpdate(&evs[i&1023], 3, int64(i))
		buf, _ = u.AppendBinary(buf[:0])
	}
}

// userWithHistory returns a state after n events of one user.
func userWithHistory(b *testing.B, n int) *UserState {
	var u UserState
	for i := range n {
		e := event.Event{UserID: "u", ItemID: "item-" + string(rune('a'+i%26)) + time.Duration(i).String(), Type: event.Types[i%len(event.Types)],
			Time: t0.Add(time.Duration(i) * time.Minute), Value: 3, HasValue: true, Duration: 10, HasDuration: true}
		if err := u.Apply(&e); err != nil {
			b.Fatal(err)
		}
	}
	return &u
}

func BenchmarkUserStateCodec(b *testing.B) {
	for _, n := range []int{20, 2000} {
		u := userWithHistory(b, n)
		data, _ := u.MarshalBinary()
		b.Run("encode/events="+itoa(n), func(b *testing.B) {
			buf := make([]byte, 0, len(data))
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				buf, _ = u.AppendBinary(buf[:0])
			}
		})
		b.Run("decode/events="+itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			var x UserState
			for b.Loop() {
				if err := x.UnmarshalBinary(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkItemStateCodec(b *testing.B) {
	for _, n := range []int{20, 5000} {
		var s ItemState
		for i := range n {
			e := event.Event{UserID: itoa(i), ItemID: "x", Type: event.Click, Time: t0.Add(time.Duration(i) * time.Second)}
			_ = s.Apply(&e)
		}
		data, _ := s.MarshalBinary()
		b.Run("encode/users="+itoa(n), func(b *testing.B) {
			buf := make([]byte, 0, len(data))
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				buf, _ = s.AppendBinary(buf[:0])
			}
		})
		b.Run("decode/users="+itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			var x ItemState
			for b.Loop() {
				if err := x.UnmarshalBinary(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSnapshot(b *testing.B) {
	u := userWithHistory(b, 2000)
	b.ReportAllocs()
	buf := make([]byte, 0, 4096)
	for b.Loop() {
		s := u.Snapshot("u")
		buf, _ = s.AppendBinary(buf[:0])
	}
}

func BenchmarkDedup(b *testing.B) {
	d, err := NewDeduper(DefaultDedupConfig())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		// A new id each time, the common case: the cost includes
		// sealing, evicting and expiring segments.
		d.DuplicateHash(mix64(uint64(i)+1)|1, t0.UnixMilli()+int64(i))
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	p := len(b)
	for ; i > 0; i /= 10 {
		p--
		b[p] = byte('0' + i%10)
	}
	return string(b[p:])
}
