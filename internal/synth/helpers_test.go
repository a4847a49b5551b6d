package synth

import (
	"math"
	"slices"
	"strconv"
	"testing"

	"github.com/eddyrec/eddy/event"
)

// appendCanonical writes every field of e in a fixed textual form, context
// keys sorted, so two streams can be compared byte for byte.
func appendCanonical(b []byte, e *event.Event) []byte {
	b = append(b, e.EventID...)
	b = append(b, '|')
	b = append(b, e.UserID...)
	b = append(b, '|')
	b = append(b, e.ItemID...)
	b = append(b, '|')
	b = append(b, e.Type.String()...)
	b = append(b, '|')
	b = strconv.AppendInt(b, e.Time.UnixMilli(), 10)
	b = append(b, '|')
	if e.HasValue {
		b = strconv.AppendFloat(b, e.Value, 'g', -1, 64)
	}
	b = append(b, '|')
	if e.HasDuration {
		b = strconv.AppendFloat(b, e.Duration, 'g', -1, 64)
	}
	b = append(b, '|')
	b = append(b, e.RequestID...)
	keys := make([]string, 0, len(e.Context))
	for k := range e.Context {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = append(b, '|')
		b = append(b, k...)
		b = append(b, '=')
		b = append(b, e.Context[k]...)
	}
	return append(b, '\n')
}

func mustNew(t testing.TB, c Config) *Generator {
	t.Helper()
	g, err := New(c)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return g
}

// smallConfig is a fast configuration for stream-level tests.
func smallConfig(seed uint64) Config {
	c := DefaultConfig()
	c.Seed = seed
	c.Users = 2_000
	c.Items = 1_000
	return c
}

// topKeys returns the k keys with the largest counts (ties by key, for
// determinism).
func topKeys(counts map[int]int, k int) []int {
	keys := make([]int, 0, len(counts))
	for key := range counts {
		keys = append(keys, key)
	}
	slices.SortFunc(keys, func(a, b int) int {
		if counts[a] != counts[b] {
			return counts[b] - counts[a]
		}
		return a - b
	})
	return keys[:min(k, len(keys))]
}

func overlap(a, b []int) float64 {
	n := 0
	for _, x := range a {
		if slices.Contains(b, x) {
			n++
		}
	}
	return float64(n) / float64(max(len(a), 1))
}

func mean(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

func near(got, want, relTol float64) bool {
	return math.Abs(got-want) <= relTol*math.Abs(want)
}
