package drift

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// zipfKeys draws n keys from a Zipf law over nKeys keys: a few heavy
// hitters and a long tail.
func zipfKeys(seed uint64, n int, nKeys uint64) []string {
	r := rand.New(rand.NewPCG(seed, seed+1))
	z := rand.NewZipf(r, 1.2, 1, nKeys-1)
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("k%d", z.Uint64())
	}
	return out
}

// checkMisraGries asserts the Misra–Gries guarantees of t against the true
// counts: est ≤ true ≤ est + other/(cap+1) for tracked keys, true ≤
// other/(cap+1) for untracked ones, and Σ counts + other = total.
func checkMisraGries(t *testing.T, ft *FreqTable, truth map[string]int64) {
	t.Helper()
	var sum, n int64
	for _, c := range ft.Categories() {
		sum += c.Count
	}
	for _, c := range truth {
		n += c
	}
	if sum+ft.Other() != ft.Total() || ft.Total() != n {
		t.Fatalf("Σ counts %d + other %d != total %d (true %d)", sum, ft.Other(), ft.Total(), n)
	}
	if ft.Len() > ft.Capacity() {
		t.Fatalf("%d keys tracked, capacity %d", ft.Len(), ft.Capacity())
	}
	bound := ft.Other() / int64(ft.Capacity()+1)
	for k, tc := range truth {
		est, tracked := ft.Count(k)
		if est > tc || tc > est+bound {
			t.Fatalf("key %s: estimate %d (tracked %v), true %d, bound %d", k, est, tracked, tc, bound)
		}
	}
}

func TestFreqTableExactUnderCapacity(t *testing.T) {
	ft, err := NewFreqTable(5)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"b", "a", "c", "a", "b", "a", "e", "d"} {
		ft.Insert(k)
	}
	ft.Add("d", 3)
	ft.Add("x", 0) // ignored
	got := ft.Categories()
	if !slices.Equal(got, []Category{{"d", 4}, {"a", 3}, {"b", 2}, {"c", 1}, {"e", 1}}) {
		t.Errorf("Categories = %v", got)
	}
	if !ft.Exact() || ft.Total() != 11 || ft.Other() != 0 {
		t.Errorf("exact=%v total=%d other=%d", ft.Exact(), ft.Total(), ft.Other())
	}
}

func TestFreqTableHighCardinality(t *testing.T) {
	n := 200_000
	if testing.Short() {
		n = 40_000
	}
	keys := zipfKeys(1, n, 100_000)
	truth := map[string]int64{}
	ft, _ := NewFreqTable(100)
	for _, k := range keys {
		ft.Insert(k)
		truth[k]++
	}
	if ft.Exact() {
		t.Fatal("expected the table to overflow")
	}
	checkMisraGries(t, ft, truth)
	// The heaviest key must be tracked and first.
	if top := ft.Categories()[0]; top.Key != "k0" {
		t.Errorf("top key %q, want k0", top.Key)
	}
}

func TestFreqTableMerge(t *testing.T) {
	truth := map[string]int64{}
	merged, _ := NewFreqTable(50)
	for p := range 8 {
		part, _ := NewFreqTable(50)
		for _, k := range zipfKeys(uint64(10+p), 10_000, 5_000) {
			part.Insert(k)
			truth[k]++
		}
		merged.Merge(part)
	}
	checkMisraGries(t, merged, truth)

	// Exact tables merge exactly, including into the zero value.
	var z FreqTable
	a := tableOf(t, []string{"x", "y", "x"})
	z.Merge(a)
	z.Merge(a)
	if c, _ := z.Count("x"); c != 4 || z.Total() != 6 || z.Capacity() != DefaultFreqCapacity {
		t.Errorf("merge into zero value: x=%d total=%d", c, z.Total())
	}
	z.Merge(&z)
	if c, _ := z.Count("y"); c != 4 || z.Total() != 12 {
		t.Errorf("self merge: y=%d total=%d", c, z.Total())
	}
	cl := z.Clone()
	cl.Insert("q")
	if _, ok := z.Count("q"); ok {
		t.Error("Clone shares state")
	}
	cl.Reset()
	if cl.Total() != 0 || cl.Len() != 0 {
		t.Error("Reset left state")
	}
}

func TestFreqTableCodec(t *testing.T) {
	ft, _ := NewFreqTable(30)
	for _, k := range zipfKeys(3, 5_000, 1_000) {
		ft.Insert(k)
	}
	ft.Insert("") // the empty key is a category like any other
	b, err := ft.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got FreqTable
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	b2, _ := got.MarshalBinary()
	if !bytes.Equal(b, b2) {
		t.Fatal("round trip changed the encoding")
	}
	if got.Total() != ft.Total() || got.Other() != ft.Other() || !slices.Equal(got.Categories(), ft.Categories()) || got.Capacity() != 30 {
		t.Fatal("round trip changed the table")
	}

	small, _ := tableOf(t, []string{"a", "b", "b"}).MarshalBinary()
	const keys = 4 + 1 + 4 + 8 + 8 // offset of the key count
	mutate := func(f func(b []byte) []byte) []byte { return f(slices.Clone(small)) }
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"bad magic", mutate(func(b []byte) []byte { b[1] = 'X'; return b })},
		{"bad version", mutate(func(b []byte) []byte { b[4] = 0; return b })},
		{"zero capacity", mutate(func(b []byte) []byte { copy(b[5:], []byte{0, 0, 0, 0}); return b })},
		{"total mismatch", mutate(func(b []byte) []byte { b[9]++; return b })},
		{"other above total", mutate(func(b []byte) []byte { b[17] = 100; return b })},
		{"too many keys", mutate(func(b []byte) []byte { b[keys] = 200; return b })},
		{"keys out of order", mutate(func(b []byte) []byte { b[keys+4+4] = 'c'; return b })},
		{"truncated", small[:len(small)-1]},
		{"trailing", append(slices.Clone(small), 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ft FreqTable
			if err := ft.UnmarshalBinary(tt.data); !errors.Is(err, ErrCorrupt) {
				t.Errorf("err = %v, want ErrCorrupt", err)
			}
		})
	}
	for _, c := range []int{-1, MaxFreqCapacity + 1} {
		if _, err := NewFreqTable(c); err == nil {
			t.Errorf("NewFreqTable(%d) accepted", c)
		}
	}
}

func TestFreqTableInsertTrackedDoesNotAllocate(t *testing.T) {
	ft := tableOf(t, []string{"click", "watch", "skip"})
	allocs := testing.AllocsPerRun(1000, func() { ft.Insert("watch") })
	if allocs != 0 {
		t.Errorf("Insert of a tracked key allocates %v times", allocs)
	}
}
