package topk

import (
	"errors"
	"sync"
)

// ErrClosed is returned by a Coalescer after Close.
var ErrClosed = errors.New("topk: coalescer closed")

// Coalescer turns concurrent single-query searches into batched passes:
// each worker takes every query waiting in the queue (up to maxBatch) and
// scores them in one pass over the matrix. There is no timer: an idle
// coalescer runs a query at once, and under load the queue fills while a
// pass runs, so batches grow exactly when the matrix bandwidth is the
// bottleneck.
type Coalescer struct {
	idx      Index
	in       chan *call
	maxBatch int
	wg       sync.WaitGroup
	mu       sync.RWMutex
	closed   bool
	calls    sync.Pool
}

type call struct {
	q    *Query
	done chan struct{}
}

// NewCoalescer starts workers goroutines searching idx in batches of at
// most maxBatch queries. Close stops them.
func NewCoalescer(idx Index, workers, maxBatch int) *Coalescer {
	workers = max(workers, 1)
	maxBatch = max(maxBatch, 1)
	c := &Coalescer{idx: idx, in: make(chan *call, 4*maxBatch*workers), maxBatch: maxBatch}
	for range workers {
		c.wg.Add(1)
		go c.work()
	}
	return c
}

// Search runs q (with the others waiting at the same time) and returns when
// q.Out or q.Err is filled.
func (c *Coalescer) Search(q *Query) error {
	cl, _ := c.calls.Get().(*call)
	if cl == nil {
		cl = &call{done: make(chan struct{}, 1)}
	}
	cl.q = q
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return ErrClosed
	}
	c.in <- cl
	c.mu.RUnlock()
	<-cl.done
	cl.q = nil
	c.calls.Put(cl)
	return nil
}

func (c *Coalescer) work() {
	defer c.wg.Done()
	batch := make([]*call, 0, c.maxBatch)
	qs := make([]*Query, 0, c.maxBatch)
	for first := range c.in {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < c.maxBatch {
			select {
			case cl, ok := <-c.in:
				if !ok {
					break fill
				}
				batch = append(batch, cl)
			default:
				break fill
			}
		}
		qs = qs[:0]
		for _, cl := range batch {
			qs = append(qs, cl.q)
		}
		c.idx.Search(qs)
		for _, cl := range batch {
			cl.done <- struct{}{}
		}
		clear(qs)
	}
}

// Close stops the workers after the queued queries are answered; later
// Search calls return ErrClosed.
func (c *Coalescer) Close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.in)
	}
	c.mu.Unlock()
	c.wg.Wait()
}
