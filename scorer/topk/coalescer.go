package topk

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
)

// ErrClosed is returned by a Coalescer after Close.
var ErrClosed = errors.New("topk: coalescer closed")

// Coalescer turns concurrent single-query searches into batched passes.
// There are no worker goroutines: a caller that finds fewer than `workers`
// passes running becomes a leader and runs a pass itself, for its own query
// and every query waiting (up to maxBatch); a caller that finds them all
// busy queues its query and waits. A leader that finishes while queries
// wait hands the lead to the first of them. So an idle coalescer runs a
// query at once on the caller's own goroutine (no hand-off to another
// goroutine and back, which on a loaded machine is two chances to wait for
// a CPU), and under load the queue fills while passes run, so batches grow
// exactly when the matrix bandwidth is the bottleneck.
type Coalescer struct {
	idx      Index
	workers  int
	maxBatch int

	mu      sync.Mutex
	pending []*call // FIFO of waiting queries
	running int     // leaders running or about to run a pass
	closed  bool
	idle    sync.Cond // signalled when running drops to 0 after Close

	calls   sync.Pool
	batches sync.Pool

	passes  atomic.Uint64
	queries atomic.Uint64
}

// batchScratch is a leader's reusable batch memory.
type batchScratch struct {
	calls []*call
	qs    []*Query
}

type call struct {
	q *Query
	// done receives false when q is answered, or true when the caller is
	// to lead the next pass (with q in it).
	done chan bool
}

// NewCoalescer returns a coalescer running at most workers passes at a
// time over idx, each for at most maxBatch queries.
func NewCoalescer(idx Index, workers, maxBatch int) *Coalescer {
	c := &Coalescer{idx: idx, workers: max(workers, 1), maxBatch: max(maxBatch, 1)}
	c.idle.L = &c.mu
	return c
}

// Search runs q (with the others waiting at the same time) and returns when
// q.Out or q.Err is filled.
func (c *Coalescer) Search(q *Query) error {
	cl, _ := c.calls.Get().(*call)
	if cl == nil {
		cl = &call{done: make(chan bool, 1)}
	}
	cl.q = q
	defer func() {
		cl.q = nil
		c.calls.Put(cl)
	}()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	lead := c.running < c.workers
	if lead {
		c.running++
	} else {
		c.pending = append(c.pending, cl)
	}
	c.mu.Unlock()
	if lead || <-cl.done {
		c.lead(cl)
	}
	return nil
}

// lead runs one pass for me and the queries waiting, then passes the lead
// on to the next waiting query, if any.
func (c *Coalescer) lead(me *call) {
	// Let goroutines that are already runnable (HTTP handlers about to
	// enqueue their query) run first, so that they join this pass instead
	// of waiting for the next. When nothing else is runnable this returns
	// at once, so a lone query is not delayed.
	runtime.Gosched()
	bs, _ := c.batches.Get().(*batchScratch)
	if bs == nil {
		bs = &batchScratch{calls: make([]*call, 0, c.maxBatch), qs: make([]*Query, 0, c.maxBatch)}
	}
	batch := append(bs.calls[:0], me)
	c.mu.Lock()
	n := min(len(c.pending), c.maxBatch-1)
	batch = append(batch, c.pending[:n]...)
	c.pending = c.pending[:copy(c.pending, c.pending[n:])]
	c.mu.Unlock()

	qs := bs.qs[:0]
	for _, cl := range batch {
		qs = append(qs, cl.q)
	}
	c.idx.Search(qs)
	c.passes.Add(1)
	c.queries.Add(uint64(len(qs)))
	for _, cl := range batch[1:] {
		cl.done <- false
	}
	clear(batch)
	clear(qs)
	bs.calls, bs.qs = batch[:0], qs[:0]
	c.batches.Put(bs)

	c.mu.Lock()
	if len(c.pending) > 0 {
		next := c.pending[0]
		c.pending = c.pending[:copy(c.pending, c.pending[1:])]
		c.mu.Unlock()
		next.done <- true // the running slot moves to next
		return
	}
	c.running--
	if c.running == 0 && c.closed {
		c.idle.Broadcast()
	}
	c.mu.Unlock()
}

// Stats returns the number of passes run and of queries they scored (their
// ratio is the mean batch size).
func (c *Coalescer) Stats() (passes, queries uint64) {
	return c.passes.Load(), c.queries.Load()
}

// Close waits for the queued queries to be answered; later Search calls
// return ErrClosed.
func (c *Coalescer) Close() {
	c.mu.Lock()
	c.closed = true
	for c.running > 0 {
		c.idle.Wait()
	}
	c.mu.Unlock()
}
