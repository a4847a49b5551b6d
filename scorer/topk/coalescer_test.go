package topk

import (
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
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

// slowIndex records the batch sizes it is given and holds each pass until
// released.
type slowIndex struct {
	mu      sync.Mutex
	batches []int
	entered chan struct{}
	release chan struct{}
}

func (s *slowIndex) Dim() int { return 1 }
func (s *slowIndex) Len() int { return 1 }
func (s *slowIndex) Search(qs []*Query) {
	s.mu.Lock()
	s.batches = append(s.batches, len(qs))
	s.mu.Unlock()
	s.entered <- struct{}{}
	<-s.release
	for _, q := range qs {
		q.Out = append(q.Out[:0], Result{Index: 0, Score: q.Vec[0]})
	}
}

// TestCoalescerBatching checks that a lone query runs at once, alone, and
// that queries arriving during a pass share the next one.
func TestCoalescerBatching(t *testing.T) {
	idx := &slowIndex{entered: make(chan struct{}, 16), release: make(chan struct{})}
	c := NewCoalescer(idx, 1, 32)
	defer c.Close()
	done := make(chan *Query, 16)
	search := func(v float32) {
		q := &Query{Vec: []float32{v}, K: 1}
		if err := c.Search(q); err != nil {
			t.Error(err)
		}
		done <- q
	}
	go search(1)
	<-idx.entered // the lone query's pass started without waiting for others
	const more = 7
	for i := range more {
		go search(float32(i + 2))
	}
	// Wait until all seven are queued behind the running pass.
	for c.waiting() < more {
		time.Sleep(time.Millisecond)
	}
	idx.release <- struct{}{}
	<-idx.entered
	idx.release <- struct{}{}
	seen := map[float32]bool{}
	for range more + 1 {
		q := <-done
		if len(q.Out) != 1 || q.Out[0].Score != q.Vec[0] {
			t.Fatalf("query %v got %v", q.Vec, q.Out)
		}
		seen[q.Vec[0]] = true
	}
	if len(seen) != more+1 {
		t.Fatalf("answers for %d distinct queries, want %d", len(seen), more+1)
	}
	idx.mu.Lock()
	defer idx.mu.Unlock()
	if !slices.Equal(idx.batches, []int{1, more}) {
		t.Fatalf("batches %v, want [1 %d]", idx.batches, more)
	}
	if p, q := c.Stats(); p != 2 || q != more+1 {
		t.Fatalf("stats: %d passes, %d queries", p, q)
	}
}

func (c *Coalescer) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}
