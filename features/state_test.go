package features

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/eddyrec/eddy/event"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// randomStream returns n events of a few users and items over span, in time
// order.
func randomStream(r *rand.Rand, n int, span time.Duration) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		typ := event.Types[r.IntN(len(event.Types))]
		e := event.Event{
			EventID: fmt.Sprint("e", i),
			UserID:  fmt.Sprint("u", r.IntN(3)),
			ItemID:  fmt.Sprint("i", r.IntN(80)),
			Type:    typ,
			Time:    t0.Add(time.Duration(r.Int64N(int64(span/time.Millisecond))) * time.Millisecond),
		}
		if typ == event.Watch {
			e.Value, e.HasValue = r.Float64()*100, true
			e.Duration, e.HasDuration = 80, true
		}
		evs[i] = e
	}
	slices.SortStableFunc(evs, func(a, b event.Event) int { return a.Time.Compare(b.Time) })
	return evs
}

func applyAll(t testing.TB, evs []event.Event) (map[string]*UserState, map[string]*ItemState) {
	users, items := map[string]*UserState{}, map[string]*ItemState{}
	for i := range evs {
		e := &evs[i]
		u, it := users[e.UserID], items[e.ItemID]
		if u == nil {
			u = new(UserState)
			users[e.UserID] = u
		}
		if it == nil {
			it = new(ItemState)
			items[e.ItemID] = it
		}
		if err := u.Apply(e); err != nil {
			t.Fatal(err)
		}
		if err := it.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	return users, items
}

func jsonOf(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// TestDecayOrderIndependent is the property behind the lateness policy:
// decayed counts, totals, first/last seen, watch ratio, recent items, the
// seen set (below its bound) and distinct users do not depend on the order
// events arrive in.
func TestDecayOrderIndependent(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 1))
		sorted := randomStream(r, 400, 90*24*time.Hour)
		shuffled := slices.Clone(sorted)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		us, is := applyAll(t, sorted)
		uh, ih := applyAll(t, shuffled)
		now := t0.Add(100 * 24 * time.Hour)
		for id, a := range us {
			va, vb := a.View(id, now), uh[id].View(id, now)
			for typ, ca := range va.Counts {
				cb := vb.Counts[typ]
				if ca.Total != cb.Total || !near(ca.Decayed1h, cb.Decayed1h) || !near(ca.Decayed1d, cb.Decayed1d) || !near(ca.Decayed30d, cb.Decayed30d) {
					t.Fatalf("seed %d user %s %s: sorted %+v, shuffled %+v", seed, id, typ, ca, cb)
				}
				// Independent reference: the defining sum over events.
				for h, got := range []float64{ca.Decayed1h, ca.Decayed1d, ca.Decayed30d} {
					var want float64
					for i := range sorted {
						if sorted[i].UserID == id && sorted[i].Type.String() == typ {
							want += math.Pow(2, -now.Sub(sorted[i].Time).Hours()/HalfLives[h].Hours())
						}
					}
					if !near(got, want) {
						t.Fatalf("seed %d user %s %s h%d: %g, direct sum %g", seed, id, typ, h, got, want)
					}
				}
			}
			if !va.FirstSeen.Equal(vb.FirstSeen) || !va.LastSeen.Equal(vb.LastSeen) || !near(*va.MeanWatchRatio, *vb.MeanWatchRatio) || va.SeenItems != vb.SeenItems {
				t.Fatalf("seed %d user %s: views differ\n%+v\n%+v", seed, id, va, vb)
			}
			// Recent items: the same set with the same times (ties may
			// order differently).
			key := func(v UserView) []string {
				var k []string
				for _, ri := range v.RecentItems {
					k = append(k, fmt.Sprint(ri.Time.UnixMilli(), ri.ItemID))
				}
				slices.Sort(k)
				return k
			}
			if !slices.Equal(key(va), key(vb)) {
				t.Fatalf("seed %d user %s: recent differ\n%v\n%v", seed, id, va.RecentItems, vb.RecentItems)
			}
		}
		for id, a := range is {
			va, vb := a.View(id, now), ih[id].View(id, now)
			if va.Events != vb.Events || va.DistinctUsers != vb.DistinctUsers || !near(va.CTR1d, vb.CTR1d) {
				t.Fatalf("seed %d item %s: %+v vs %+v", seed, id, va, vb)
			}
		}
	}
}

// sessionsSorted is the reference: sessions over time-sorted times, a new
// one after a gap > SessionGap.
func sessionsSorted(ts []time.Time) uint64 {
	ts = slices.Clone(ts)
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	var n uint64
	for i := range ts {
		if i == 0 || ts[i].Sub(ts[i-1]) > SessionGap {
			n++
		}
	}
	return n
}

// TestSessionsBoundedDisorder: when every event arrives at most
// AllowedLateness behind the latest event so far, the streaming session
// count equals the count over the sorted stream.
func TestSessionsBoundedDisorder(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 2))
		// Times with gaps around the session gap, so merges happen.
		var ts []time.Time
		cur := t0
		for range 60 {
			cur = cur.Add(time.Duration(r.Int64N(int64(50*time.Minute)/1000)) * 1000)
			ts = append(ts, cur)
		}
		// Arrival: sort by time + a random delay ≤ AllowedLateness; the
		// lateness of each event is then bounded by AllowedLateness.
		type arr struct {
			t, at time.Time
		}
		as := make([]arr, len(ts))
		for i, x := range ts {
			as[i] = arr{x, x.Add(time.Duration(r.Int64N(int64(AllowedLateness))))}
		}
		slices.SortFunc(as, func(a, b arr) int { return a.at.Compare(b.at) })
		var u UserState
		for i, a := range as {
			e := event.Event{EventID: fmt.Sprint(i), UserID: "u", ItemID: "i", Type: event.Click, Time: a.t}
			if err := u.Apply(&e); err != nil {
				t.Fatal(err)
			}
		}
		if want := sessionsSorted(ts); u.sessions != want || u.tooLate != 0 {
			t.Fatalf("seed %d: sessions %d (too late %d), sorted reference %d", seed, u.sessions, u.tooLate, want)
		}
	}
}

func TestApplyRejectsInvalid(t *testing.T) {
	var u UserState
	var it ItemState
	for _, e := range []event.Event{
		{ItemID: "i", Type: event.TypeInvalid, Time: t0},
		{ItemID: "i", Type: event.Type(42), Time: t0},
		{ItemID: "", Type: event.Click, Time: t0},
	} {
		if err := u.Apply(&e); err == nil {
			t.Errorf("user Apply(%+v): no error", e)
		}
		if e.ItemID != "" {
			if err := it.Apply(&e); err == nil {
				t.Errorf("item Apply(%+v): no error", e)
			}
		}
	}
	if !u.Empty() || !it.Empty() {
		t.Fatal("rejected events changed the state")
	}
}

func TestStateRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	evs := randomStream(r, 3000, 10*24*time.Hour)
	users, items := applyAll(t, evs)
	now := t0.Add(11 * 24 * time.Hour)
	for id, u := range users {
		b, err := u.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var x UserState
		if err := x.UnmarshalBinary(b); err != nil {
			t.Fatalf("user %s: %v", id, err)
		}
		b2, _ := x.MarshalBinary()
		if string(b) != string(b2) {
			t.Fatalf("user %s: re-encoding differs", id)
		}
		if jsonOf(t, u.View(id, now)) != jsonOf(t, x.View(id, now)) {
			t.Fatalf("user %s: view differs after round trip", id)
		}
		sn := u.Snapshot(id)
		sb, _ := sn.MarshalBinary()
		var sx UserSnapshot
		if err := sx.UnmarshalBinary(sb); err != nil {
			t.Fatalf("snapshot %s: %v", id, err)
		}
		if fmt.Sprint(sn) != fmt.Sprint(sx) {
			t.Fatalf("snapshot %s differs after round trip", id)
		}
		// No false negatives in the digest.
		u.seen.each(func(h uint64) {
			if !sx.Seen.ContainsHash(h) {
				t.Fatalf("digest misses a seen hash")
			}
		})
		// The snapshot's decayed counts, decayed further, match the state's.
		for typ := event.Impression; typ <= event.Rating; typ++ {
			for h := range NumHalfLives {
				want := u.counts[typ-1].at(h, now.UnixMilli())
				if got := sx.DecayedAt(typ, h, now); math.Abs(got-want) > 1e-5*math.Max(1, want) {
					t.Fatalf("snapshot %s %s h%d: %g, state %g", id, typ, h, got, want)
				}
			}
		}
	}
	for id, it := range items {
		b, _ := it.MarshalBinary()
		var x ItemState
		if err := x.UnmarshalBinary(b); err != nil {
			t.Fatalf("item %s: %v", id, err)
		}
		if jsonOf(t, it.View(id, now)) != jsonOf(t, x.View(id, now)) {
			t.Fatalf("item %s: view differs after round trip", id)
		}
	}
	// Decoders reject what they do not know.
	var u UserState
	for _, b := range [][]byte{nil, {}, {2}, {1}, {1, 0}} {
		if err := u.UnmarshalBinary(b); err == nil {
			t.Errorf("UnmarshalBinary(%v): no error", b)
		}
	}
}

func TestSeenDigestFalsePositiveRate(t *testing.T) {
	var s seenSet
	for i := range SeenCapacity {
		s.add(Hash64(fmt.Sprint("seen", i)))
	}
	d := newSeenDigest(&s)
	fp := 0
	const trials = 100000
	for i := range trials {
		if d.Contains(fmt.Sprint("other", i)) {
			fp++
		}
	}
	// (1−e^(−k/10))^k for k = 7: 0.82 %; allow sampling noise.
	want := math.Pow(1-math.Exp(-7.0/10), 7)
	if rate := float64(fp) / trials; rate > 1.3*want {
		t.Fatalf("false-positive rate %.4f, theory %.4f", rate, want)
	}
}

func TestItemUpdateReplay(t *testing.T) {
	var it ItemState
	e := event.Event{UserID: "u", ItemID: "i", Type: event.Click, Time: t0}
	for _, c := range []struct {
		part   int32
		off    int64
		wantOK bool
	}{{0, 5, true}, {0, 5, false}, {0, 4, false}, {1, 1, true}, {0, 6, true}, {1, 1, false}, {-1, 0, true}, {-1, 0, true}} {
		u := NewItemUpdate(&e, c.part, c.off)
		ok, err := it.ApplyUpdate(&u)
		if err != nil || ok != c.wantOK {
			t.Fatalf("update %d/%d: applied %v (%v), want %v", c.part, c.off, ok, err, c.wantOK)
		}
	}
	if it.Events() != 5 || it.Replays() != 3 {
		t.Fatalf("events %d replays %d, want 5 and 3", it.Events(), it.Replays())
	}
}

// TestHashIndexAgainstMap drives the index and a map with the same random
// adds and deletes (small key space, so probe chains collide and wrap).
func TestHashIndexAgainstMap(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	var x hashIndex
	ref := map[uint64]bool{}
	for i := range 200000 {
		h := uint64(r.IntN(300)) + 1
		if i%7 == 0 {
			h = h<<58 | h // same low bits: long chains
		}
		if r.IntN(3) == 0 {
			x.del(h)
			delete(ref, h)
		} else if x.add(h) == ref[h] {
			t.Fatalf("step %d: add(%d) disagrees with the map", i, h)
		} else {
			ref[h] = true
		}
		if x.n != len(ref) {
			t.Fatalf("step %d: %d elements, map has %d", i, x.n, len(ref))
		}
	}
	for h := range ref {
		if !x.has(h) {
			t.Fatalf("lost %d", h)
		}
	}
}

func TestSeenSetFIFO(t *testing.T) {
	var s seenSet
	for i := range 3 * SeenCapacity {
		s.add(uint64(i + 1))
		s.add(uint64(i + 1)) // repeats change nothing
	}
	if s.len() != SeenCapacity {
		t.Fatalf("len %d", s.len())
	}
	for i := range 3 * SeenCapacity {
		if want := i >= 2*SeenCapacity; s.contains(uint64(i+1)) != want {
			t.Fatalf("contains(%d) = %v, want %v", i+1, !want, want)
		}
	}
}
