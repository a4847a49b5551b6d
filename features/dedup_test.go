package features

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestDedupConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg DedupConfig
		ok  bool
	}{
		{DefaultDedupConfig(), true},
		{DedupConfig{TTL: 0, MaxIDs: 64, SegmentSize: 16}, false},
		{DedupConfig{TTL: time.Minute, MaxIDs: 64, SegmentSize: 8}, false},
		{DedupConfig{TTL: time.Minute, MaxIDs: 31, SegmentSize: 16}, false},
		{DedupConfig{TTL: time.Minute, MaxIDs: 32, SegmentSize: 16}, true},
	} {
		if err := c.cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", c.cfg, err, c.ok)
		}
	}
}

// TestDedupFlushRestore checks that a Deduper restored from what Flush wrote
// answers like the original, including after expiry and eviction deleted
// segments, and that a failed Flush is retried in full.
func TestDedupFlushRestore(t *testing.T) {
	cfg := DedupConfig{TTL: time.Minute, MaxIDs: 256, SegmentSize: 32}
	d, err := NewDeduper(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store := map[uint64][]byte{}
	flush := func(d *Deduper) error {
		return d.Flush(func(seq uint64, data []byte) error {
			if data == nil {
				delete(store, seq)
			} else {
				store[seq] = append([]byte(nil), data...)
			}
			return nil
		})
	}
	restore := func() *Deduper {
		var segs [][]byte
		for _, b := range store {
			segs = append(segs, b)
		}
		x, err := RestoreDeduper(cfg, segs)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	ms := int64(0)
	for i := range 1000 {
		ms += 100 // 1000 ids over 100 s: expiry and eviction both happen
		if d.DuplicateHash(Hash64(fmt.Sprint("id", i)), ms) {
			t.Fatalf("id %d: false duplicate", i)
		}
		if i%97 == 0 {
			if err := flush(d); err != nil {
				t.Fatal(err)
			}
			x := restore()
			if x.Stats().Remembered != d.Stats().Remembered {
				t.Fatalf("after %d: restored %d ids, original %d", i, x.Stats().Remembered, d.Stats().Remembered)
			}
			d = x
		}
	}
	st := d.Stats()
	if st.Remembered > cfg.MaxIDs || st.Remembered == 0 {
		t.Fatalf("remembered %d, bound %d", st.Remembered, cfg.MaxIDs)
	}
	// The most recent ids are still known.
	if !d.DuplicateHash(Hash64("id999"), ms) {
		t.Fatal("latest id forgotten")
	}
	// A failing Flush reports the same changes next time.
	d.DuplicateHash(Hash64("new"), ms)
	boom := errors.New("boom")
	if err := d.Flush(func(uint64, []byte) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Flush error %v, want boom", err)
	}
	if err := flush(d); err != nil {
		t.Fatal(err)
	}
	if x := restore(); !x.DuplicateHash(Hash64("new"), ms) {
		t.Fatal("id added before a failed Flush was lost")
	}
	// The whole encoding round-trips too.
	b, _ := d.MarshalBinary()
	y, _ := NewDeduper(cfg)
	if err := y.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if y.Stats().Remembered != d.Stats().Remembered || !y.DuplicateHash(Hash64("new"), ms) {
		t.Fatal("MarshalBinary round trip lost ids")
	}
	var zero Deduper
	if err := zero.UnmarshalBinary(b); err == nil {
		t.Fatal("UnmarshalBinary on a zero Deduper: no error")
	}
}
