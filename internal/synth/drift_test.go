package synth

import (
	"math"
	"testing"
	"time"

	"github.com/eddyrec/eddy/event"
)

// run reads n events, calling f with each and whether the generator had
// drifted when it was produced.
func run(t *testing.T, g *Generator, n int, f func(e *event.Event, drifted bool)) {
	t.Helper()
	var e event.Event
	for range n {
		g.Next(&e)
		f(&e, g.Drifted())
	}
}

func TestDriftSwitchesAtEventCount(t *testing.T) {
	for _, kind := range []DriftKind{DriftPopularity, DriftTaste, DriftWatchRatio} {
		c := smallConfig(4)
		c.DriftAt, c.DriftKind = 1000, kind
		g := mustNew(t, c)
		var e event.Event
		for range 1000 {
			g.Next(&e)
		}
		if g.Drifted() {
			t.Fatalf("%v: drifted after %d events, before DriftAt", kind, g.Emitted())
		}
		g.Next(&e)
		if !g.Drifted() || e.EventID != "e4-1000" {
			t.Fatalf("%v: event %s produced, Drifted() = %t; want the drift on event index 1000", kind, e.EventID, g.Drifted())
		}
	}
}

func TestDriftSwitchesAtTime(t *testing.T) {
	c := smallConfig(4)
	c.DriftAtTime, c.DriftKind = c.Start.Add(time.Minute), DriftTaste
	g := mustNew(t, c)
	var e event.Event
	for range 10_000 {
		g.Next(&e)
		if g.Drifted() != !e.Time.Before(c.DriftAtTime) {
			t.Fatalf("event at %v: Drifted() = %t with drift at %v", e.Time, g.Drifted(), c.DriftAtTime)
		}
	}
	if !g.Drifted() {
		t.Fatal("10,000 events of 20 ms mean gap never reached the drift time one minute in")
	}
}

// watchRatioHalves returns the mean watch ratio of the first and second half
// of a stream (skipping a margin after the midpoint for requests decided
// before it).
func watchRatioHalves(t *testing.T, c Config, n int) (before, after float64) {
	g := mustNew(t, c)
	var b, a []float64
	i := 0
	run(t, g, n, func(e *event.Event, _ bool) {
		i++
		if e.Type != event.Watch {
			return
		}
		switch {
		case i <= n/2:
			b = append(b, e.WatchRatio())
		case i > n/2+5_000:
			a = append(a, e.WatchRatio())
		}
	})
	return mean(b), mean(a)
}

func TestWatchRatioDrift(t *testing.T) {
	const n = 400_000
	c := smallConfig(21)
	before, after := watchRatioHalves(t, c, n)
	t.Logf("no drift: mean watch ratio %.3f then %.3f", before, after)
	if !near(after, before, 0.05) {
		t.Errorf("without drift the mean watch ratio moved from %.3f to %.3f", before, after)
	}
	c.DriftAt, c.DriftKind = n/2, DriftWatchRatio
	before, after = watchRatioHalves(t, c, n)
	t.Logf("watch-ratio drift: mean watch ratio %.3f then %.3f", before, after)
	// Strength 1 halves every ratio.
	if !near(after/before, 0.5, 0.05) {
		t.Errorf("after a watch-ratio drift the mean ratio went %.3f → %.3f, want it halved", before, after)
	}
}

// clickTopItems returns the 50 most clicked items before and after the
// midpoint of a stream.
func clickTopItems(t *testing.T, c Config, n int) (before, after []int) {
	g := mustNew(t, c)
	b, a := make(map[int]int), make(map[int]int)
	i := 0
	run(t, g, n, func(e *event.Event, _ bool) {
		i++
		if e.Type != event.Click {
			return
		}
		it, _ := g.ItemIndex(e.ItemID)
		switch {
		case i <= n/2:
			b[it]++
		case i > n/2+5_000:
			a[it]++
		}
	})
	return topKeys(b, 50), topKeys(a, 50)
}

func TestPopularityDrift(t *testing.T) {
	const n = 400_000
	c := smallConfig(22)
	b, a := clickTopItems(t, c, n)
	ctrl := overlap(b, a)
	c.DriftAt, c.DriftKind = n/2, DriftPopularity
	b, a = clickTopItems(t, c, n)
	drifted := overlap(b, a)
	t.Logf("top-50 clicked items overlap: %.2f without drift, %.2f with", ctrl, drifted)
	if ctrl < 0.6 {
		t.Errorf("without drift only %.2f of the top-50 clicked items stay on top", ctrl)
	}
	// A random top-50 out of 1,000 items shares 50/1000 = 5 % with the old.
	if drifted > 0.2 {
		t.Errorf("after a popularity drift %.2f of the top-50 clicked items stay on top, want ≤ 0.2", drifted)
	}
}

func TestPartialPopularityDrift(t *testing.T) {
	c := smallConfig(23)
	c.DriftAt, c.DriftKind, c.DriftStrength = 1, DriftPopularity, 0.3
	g := mustNew(t, c)
	before := make([]int, c.Items)
	for i := range before {
		_, before[i] = g.Popularity(i)
	}
	var e event.Event
	g.Next(&e)
	g.Next(&e)
	moved := 0
	seen := make([]bool, c.Items+1)
	var wsum float64
	for i := range before {
		w, r := g.Popularity(i)
		wsum += w
		if seen[r] {
			t.Fatalf("rank %d given twice after drift", r)
		}
		seen[r] = true
		if r != before[i] {
			moved++
		}
	}
	// 300 items are reshuffled; a few land on their own rank again.
	if moved < 250 || moved > 300 {
		t.Errorf("strength 0.3 moved %d of 1,000 ranks, want 250–300", moved)
	}
	if math.Abs(wsum-1) > 1e-9 {
		t.Errorf("popularity weights sum to %v after drift", wsum)
	}
}

func TestTasteDrift(t *testing.T) {
	const n = 300_000
	c := smallConfig(24)
	c.DriftAt, c.DriftKind = n/2, DriftTaste
	g := mustNew(t, c)

	// Ground truth: keep the old tastes and each user's old oracle top-20.
	users := []int{1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597}
	oldVec := make([][]float32, c.Users)
	for u := range oldVec {
		oldVec[u] = g.UserVector(u)
	}
	oldTop := make(map[int][]int)
	for _, u := range users {
		oldTop[u] = g.TopItems(u, 20)
	}
	oldAffinity := func(u, it int) float64 {
		iv := g.ItemVector(it)
		var s float64
		for k, x := range oldVec[u] {
			s += float64(x) * float64(iv[k])
		}
		return s
	}

	// Behaviour: clicks follow the old tastes before the drift and not after.
	var oldBefore, oldAfter, newAfter []float64
	i := 0
	run(t, g, n, func(e *event.Event, _ bool) {
		i++
		if e.Type != event.Click || (i > n/2 && i <= n/2+5_000) {
			return
		}
		u, _ := g.UserIndex(e.UserID)
		it, _ := g.ItemIndex(e.ItemID)
		if i <= n/2 {
			oldBefore = append(oldBefore, oldAffinity(u, it))
		} else {
			oldAfter = append(oldAfter, oldAffinity(u, it))
			newAfter = append(newAfter, g.Affinity(u, it))
		}
	})
	t.Logf("mean old-taste affinity of clicks: %.3f before, %.3f after; new-taste after %.3f",
		mean(oldBefore), mean(oldAfter), mean(newAfter))
	if mean(oldAfter) > 0.3*mean(oldBefore) {
		t.Errorf("after a taste drift clicks still follow the old tastes: %.3f vs %.3f before", mean(oldAfter), mean(oldBefore))
	}
	if mean(newAfter) < 0.7*mean(oldBefore) {
		t.Errorf("after a taste drift clicks do not follow the new tastes: %.3f vs %.3f before", mean(newAfter), mean(oldBefore))
	}

	var ov float64
	for _, u := range users {
		ov += overlap(oldTop[u], g.TopItems(u, 20))
	}
	ov /= float64(len(users))
	t.Logf("mean top-20 overlap per user before/after: %.3f", ov)
	if ov > 0.25 {
		t.Errorf("per-user oracle top-20 overlap %.3f after a taste drift, want ≤ 0.25", ov)
	}
}
