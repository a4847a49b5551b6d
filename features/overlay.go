package features

import "sync"

// overlay is the committed view of one partition's state that the runtime's
// local store has not received yet (see stream/task/lookup.go): the runtime
// writes committed batches to Badger up to about a second later, from a
// write-back set only its task goroutine may read. The processor therefore
// keeps the values it Put, and readers look here before the store:
//
//   - pend holds the last batch's writes; it is committed once the runtime's
//     committed offset reaches pendNext (a reader checks), and certainly when
//     the runtime calls Process again (a failed batch stops the runtime);
//   - vals holds committed values, each with the end offset of its batch;
//     an entry is dropped once the store's offset reaches that end, so a
//     reader that misses here finds the value (or a newer one) in the store.
//
// Values are never modified after they are handed over: the processor
// encodes each batch into a fresh arena.
type overlay struct {
	mu       sync.Mutex
	vals     map[string]overlayEntry
	fifo     []overlayRef // commit order, for pruning
	head     int
	pend     []overlayWrite
	pendNext int64
}

type overlayEntry struct {
	val  []byte
	next int64
}

type overlayRef struct {
	key  string
	next int64
}

type overlayWrite struct {
	key string
	val []byte
}

func newOverlay() *overlay { return &overlay{vals: map[string]overlayEntry{}, pendNext: -1} }

// setPending records the writes of a batch ending before source offset
// next, not yet known to be committed.
func (o *overlay) setPending(ws []overlayWrite, next int64) {
	o.mu.Lock()
	o.pend, o.pendNext = ws, next
	o.mu.Unlock()
}

// promote moves the pending batch into the committed values; the caller
// knows it committed.
func (o *overlay) promote() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, w := range o.pend {
		o.vals[w.key] = overlayEntry{val: w.val, next: o.pendNext}
		o.fifo = append(o.fifo, overlayRef{key: w.key, next: o.pendNext})
	}
	o.pend = nil
}

// prune drops the values the local store holds: those of batches ending at
// or before storedNext.
func (o *overlay) prune(storedNext int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for o.head < len(o.fifo) && o.fifo[o.head].next <= storedNext {
		r := o.fifo[o.head]
		if e, ok := o.vals[r.key]; ok && e.next == r.next {
			delete(o.vals, r.key)
		}
		o.fifo[o.head] = overlayRef{}
		o.head++
	}
	if o.head > 1024 && o.head > len(o.fifo)/2 {
		n := copy(o.fifo, o.fifo[o.head:])
		clear(o.fifo[n:])
		o.fifo = o.fifo[:n]
		o.head = 0
	}
}

// get returns the newest committed value of key held here, given the
// runtime's committed offset.
func (o *overlay) get(key string, committed int64) ([]byte, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pend != nil && committed >= o.pendNext {
		for i := len(o.pend) - 1; i >= 0; i-- {
			if o.pend[i].key == key {
				return o.pend[i].val, true
			}
		}
	}
	e, ok := o.vals[key]
	return e.val, ok
}

// size reports the entries held (metrics, tests).
func (o *overlay) size() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.vals) + len(o.pend)
}

// overlays maps partitions to the overlay of their current processor.
type overlays struct {
	mu sync.Mutex
	m  map[int32]*overlay
}

func (s *overlays) set(p int32, o *overlay) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[int32]*overlay{}
	}
	s.m[p] = o
}

// remove drops p's overlay if it is still o (a newer processor may have
// replaced it).
func (s *overlays) remove(p int32, o *overlay) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[p] == o {
		delete(s.m, p)
	}
}

func (s *overlays) get(p int32) *overlay {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[p]
}
