package topk

import (
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func TestCoalescerMatchesDirectSearch(t *testing.T) {
	m, _, _ := randomMatrix(t, rand.New(rand.NewPCG(9, 9)), 3000, 32)
	idx := NewExact(m)
	c := NewCoalescer(idx, 2, 8)
	rng := rand.New(rand.NewPCG(1, 1))
	const n = 200
	qs := make([]*Query, n)
	want := make([][]Result, n)
	for i := range qs {
		v := make([]float32, 32)
		for d := range v {
			v[d] = float32(rng.NormFloat64())
		}
		qs[i] = &Query{Vec: v, K: 1 + i%20, Exclude: []int32{int32(i), int32(i + 1)}}
		direct := &Query{Vec: v, K: qs[i].K, Exclude: qs[i].Exclude}
		idx.Search([]*Query{direct})
		want[i] = direct.Out
	}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				if err := c.Search(qs[i]); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	c.Close()
	for i, q := range qs {
		if !slices.Equal(q.Out, want[i]) {
			t.Fatalf("query %d: coalesced %v, direct %v", i, q.Out, want[i])
		}
	}
	if err := c.Search(qs[0]); !errors.Is(err, ErrClosed) {
		t.Fatalf("Search after Close = %v", err)
	}
}
