package task

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestReadStored checks the read API: unknown partitions are refused, the
// committed offset moves with batches, and the local store, once its
// stored offset reaches the committed one, holds exactly the counts the
// producer sent (no uncommitted value is ever visible: the store only
// receives committed batches), for a Badger and an in-memory store.
func TestReadStored(t *testing.T) {
	t.Run("badger", func(t *testing.T) { testReadStored(t, false) })
	t.Run("memory", func(t *testing.T) { testReadStored(t, true) })
}

func testReadStored(t *testing.T, inMemory bool) {
	e := newEnv(t, 2)
	cfg := e.config(t, t.TempDir())
	cfg.InMemory = inMemory
	cfg.LocalFlushInterval = 50 * time.Millisecond
	r := start(t, cfg, counterFactory(e.out))

	if _, _, _, err := r.rt.ReadStored(7, []byte("user-0")); !errors.Is(err, ErrNotOwned) {
		t.Fatalf("ReadStored of a partition not held: %v, want ErrNotOwned", err)
	}
	if _, ok := r.rt.Committed(7); ok {
		t.Fatal("Committed of a partition not held reports ok")
	}
	e.produce(t, 600, 12)
	e.waitOutputs(t, 600, 60*time.Second)

	// Wait for every partition's store to reach its committed offset.
	deadline := time.Now().Add(30 * time.Second)
	for {
		caught := 0
		for p := range int32(2) {
			next, ok := r.rt.Committed(p)
			_, _, stored, err := r.rt.ReadStored(p, nil)
			if ok && err == nil && next > 0 && stored == next {
				caught++
			}
		}
		if caught == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("local stores did not catch up with the committed offsets: %v", r.rt.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := map[string]uint64{}
	for key := range e.sent {
		found := false
		for p := range int32(2) {
			v, ok, _, err := r.rt.ReadStored(p, []byte(key))
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				if found {
					t.Fatalf("key %s in two partitions", key)
				}
				found = true
				if len(v) != 8 {
					t.Fatalf("key %s: value of %d bytes", key, len(v))
				}
				got[key] = binary.LittleEndian.Uint64(v)
			}
		}
		if !found {
			t.Fatalf("key %s not in the local store", key)
		}
	}
	for key, n := range e.sent {
		if got[key] != uint64(n) {
			t.Errorf("key %s: stored count %d, sent %d", key, got[key], n)
		}
	}
	if _, _, _, err := r.rt.ReadStored(0, make([]byte, MaxKeyLen+1)); !errors.Is(err, ErrKeyTooLarge) {
		t.Fatalf("oversized key: %v", err)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := r.rt.ReadStored(0, []byte("user-0")); err == nil {
		t.Fatal("ReadStored after Run returned: want an error")
	} else {
		t.Log(fmt.Sprint("after stop: ", err))
	}
}
