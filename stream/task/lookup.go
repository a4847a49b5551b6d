package task

import (
	"errors"
	"fmt"
)

// ErrNotOwned is returned by the read API for a partition this instance does
// not hold (another member owns it, or the group has not assigned it yet) or
// is still restoring from its changelog.
var ErrNotOwned = errors.New("task: partition not owned by this instance, or still restoring")

// Reading state from outside a Processor
//
// A Processor reads its state through Batch. Servers (the features HTTP API)
// need the committed state from other goroutines; the runtime offers the
// local store for that, and the committed source offset:
//
//   - ReadStored reads a key from the local store (Badger) together with the
//     source offset the store has reached (the meta's SourceNext), from one
//     Badger snapshot. Every value the store holds was committed to Kafka,
//     so a reader never sees a batch that may still abort.
//   - The store trails the committed state by the write-back (at most about
//     LocalFlushInterval plus one Badger write): changes committed to Kafka
//     wait in the task's dirty set. That set belongs to the task goroutine
//     and is not locked, so it is not read from here. A reader that must see
//     the newest committed value keeps, beside its Processor, the values it
//     Put in batches with Committed(p) ≥ the batch's end, until
//     ReadStored's storedNext reaches that end (the features package's
//     committed overlay does exactly this).
//   - Committed reports the source offset up to which batches are committed
//     to Kafka (the runtime's commit point).

// Committed returns the next source offset after the last batch of
// partition committed to Kafka (-1 before the first), and false when this
// instance does not hold the partition or it is still restoring.
func (r *Runtime) Committed(partition int32) (int64, bool) {
	r.mu.Lock()
	t := r.tasks[partition]
	r.mu.Unlock()
	if t == nil || t.restoring.Load() {
		return -1, false
	}
	return t.committed.Load(), true
}

// ReadStored reads key of partition from the local store, and the source
// offset the store reflects: every batch ending at or before storedNext is
// in it (values of later committed batches may be in it too, never values
// of uncommitted ones). It returns ErrNotOwned for a partition that is not
// held and restored here. value is a copy; a nil key reads only storedNext.
func (r *Runtime) ReadStored(partition int32, key []byte) (value []byte, found bool, storedNext int64, err error) {
	if _, ok := r.Committed(partition); !ok {
		return nil, false, -1, ErrNotOwned
	}
	if key != nil {
		if err := checkKey(key); err != nil {
			return nil, false, -1, err
		}
	}
	storedNext = -1
	err = r.store.view(func(rd reader) error {
		if _, err := rd.get(metaKey(partition), func(v []byte) error {
			m, err := decodeMeta(v)
			storedNext = m.SourceNext
			return err
		}); err != nil {
			return err
		}
		if key == nil {
			return nil
		}
		var err error
		found, err = rd.get(appendStateKey(nil, partition, key), func(v []byte) error {
			value = cloneValue(v)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, false, -1, fmt.Errorf("task: read stored state of partition %d: %w", partition, err)
	}
	return value, found, storedNext, nil
}
