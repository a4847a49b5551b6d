package task

import (
	"bytes"
	"strings"
	"sync"
)

// memKV is the in-memory store of a runtime with Config.InMemory: one map
// for every partition's state and meta and the global keys, under one lock.
// The task goroutines of different partitions write distinct keys, and
// ReadStored reads from other goroutines, hence the lock; a batch's reads
// take it shared.
//
// Why it exists: an open Badger DB runs two compaction goroutines that wake
// every 50 ms whether or not anything was written (hard-coded in Badger).
// For a runtime whose state is a few megabytes, like the drift role's
// stages, those wake-ups were 85 % of the idle role's CPU. A map rebuilt
// from the compacted changelog at start costs nothing while idle.
type memKV struct {
	mu sync.RWMutex
	m  map[string][]byte
}

func newMemKV() *memKV { return &memKV{m: map[string][]byte{}} }

// newMemStore returns an empty in-memory store.
func newMemStore() *store { return &store{mem: newMemKV(), dir: "(in memory)"} }

// cloneValue copies a stored value; an empty value stays non-nil, so that a
// found key never reads as a nil slice.
func cloneValue(v []byte) []byte {
	if c := bytes.Clone(v); c != nil {
		return c
	}
	return []byte{}
}

// get implements reader, taking the lock for the one read.
func (s *memKV) get(key []byte, fn func(v []byte) error) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return lockedMem{s}.get(key, fn)
}

// discard implements reader: a live view holds nothing.
func (s *memKV) discard() {}

func (s *memKV) dropPrefix(prefixes ...[]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(prefixes) == 0 {
		clear(s.m)
		return
	}
	for k := range s.m {
		for _, p := range prefixes {
			if strings.HasPrefix(k, string(p)) {
				delete(s.m, k)
				break
			}
		}
	}
}

// lockedMem reads a memKV whose lock the caller holds.
type lockedMem struct{ s *memKV }

func (r lockedMem) get(key []byte, fn func(v []byte) error) (bool, error) {
	v, ok := r.s.m[string(key)]
	if !ok {
		return false, nil
	}
	return true, fn(v)
}

func (r lockedMem) discard() {}

// memWriter collects one batch's writes and applies them under one lock, so
// a concurrent ReadStored sees all of a batch or none of it, as with a
// Badger transaction. Keys and values are copied when collected: callers
// reuse their buffers once the write is done.
type memWriter struct {
	kv  *memKV
	ops []memOp
}

type memOp struct {
	key     string
	val     []byte
	deleted bool
}

func (w *memWriter) set(key, value []byte, deleted bool) {
	op := memOp{key: string(key), deleted: deleted}
	if !deleted {
		op.val = cloneValue(value)
	}
	w.ops = append(w.ops, op)
}

func (w *memWriter) commit() {
	w.kv.mu.Lock()
	defer w.kv.mu.Unlock()
	for _, op := range w.ops {
		if op.deleted {
			delete(w.kv.m, op.key)
		} else {
			w.kv.m[op.key] = op.val
		}
	}
	w.ops = nil
}
