package features

import (
	"slices"
	"testing"
)

// TestOverlay walks the overlay through the states a partition goes
// through: a batch pending (invisible until the runtime's committed offset
// reaches its end), promoted, overwritten by a newer batch, and pruned once
// the local store has reached each batch's end.
func TestOverlay(t *testing.T) {
	type step struct {
		op        string // pend, promote, prune, get
		key, val  string
		next      int64 // pend: batch end; prune: store offset; get: committed offset
		wantFound bool
	}
	w := func(kv ...string) []overlayWrite {
		var ws []overlayWrite
		for i := 0; i < len(kv); i += 2 {
			ws = append(ws, overlayWrite{key: kv[i], val: []byte(kv[i+1])})
		}
		return ws
	}
	o := newOverlay()
	for i, s := range []step{
		{op: "get", key: "a", next: -1},
		{op: "pend", next: 10, key: "a=1,b=1"},
		{op: "get", key: "a", next: 9},                             // not committed yet
		{op: "get", key: "a", val: "1", next: 10, wantFound: true}, // committed
		{op: "promote"},
		{op: "get", key: "b", val: "1", next: 10, wantFound: true},
		{op: "pend", next: 20, key: "a=2"},
		{op: "get", key: "a", val: "1", next: 10, wantFound: true}, // batch 2 not committed: the old value
		{op: "get", key: "a", val: "2", next: 20, wantFound: true},
		{op: "promote"},
		{op: "prune", next: 10}, // store holds batch 1: b goes, a stays (batch 2)
		{op: "get", key: "b", next: 20},
		{op: "get", key: "a", val: "2", next: 20, wantFound: true},
		{op: "prune", next: 19},
		{op: "get", key: "a", val: "2", next: 20, wantFound: true},
		{op: "prune", next: 20},
		{op: "get", key: "a", next: 20},
		{op: "size"},
	} {
		switch s.op {
		case "pend":
			var kv []string
			for _, p := range splitNonEmpty(s.key, ',') {
				k, v, _ := cut(p, '=')
				kv = append(kv, k, v)
			}
			o.setPending(w(kv...), s.next)
		case "promote":
			o.promote()
		case "prune":
			o.prune(s.next)
		case "get":
			v, ok := o.get(s.key, s.next)
			if ok != s.wantFound || string(v) != s.val {
				t.Fatalf("step %d: get(%q, committed %d) = %q %v, want %q %v", i, s.key, s.next, v, ok, s.val, s.wantFound)
			}
		case "size":
			if n := o.size(); n != 0 {
				t.Fatalf("step %d: %d entries left after pruning everything", i, n)
			}
		}
	}
}

// TestOverlayPruneCompacts checks that the commit-order queue does not grow
// without bound under a long run of batches.
func TestOverlayPruneCompacts(t *testing.T) {
	o := newOverlay()
	for b := range int64(10000) {
		o.setPending([]overlayWrite{{key: "k", val: []byte{byte(b)}}}, b+1)
		o.promote()
		o.prune(b) // the store trails by one batch
	}
	if len(o.fifo)-o.head > 2 || cap(o.fifo) > 4096 {
		t.Fatalf("queue holds %d live of %d (cap %d)", len(o.fifo)-o.head, len(o.fifo), cap(o.fifo))
	}
	if v, ok := o.get("k", 10000); !ok || v[0] != byte(9999%256) {
		t.Fatalf("newest value: %v %v", v, ok)
	}
}

func splitNonEmpty(s string, sep byte) []string {
	var out []string
	for s != "" {
		i := slices.Index([]byte(s), sep)
		if i < 0 {
			return append(out, s)
		}
		out = append(out, s[:i])
		s = s[i+1:]
	}
	return out
}

func cut(s string, sep byte) (string, string, bool) {
	i := slices.Index([]byte(s), sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

func TestDedupIndex(t *testing.T) {
	for _, seqs := range [][]uint64{nil, {0}, {3, 4, 9, 1 << 40}} {
		got, err := decodeDedupIndex(appendDedupIndex(nil, seqs))
		if err != nil || !slices.Equal(got, seqs) && len(seqs)+len(got) > 0 {
			t.Fatalf("round trip %v: %v %v", seqs, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {2, 0}, {1, 2, 5, 5}, {1, 2, 5, 4}, {1, 1, 5, 0}, {1, 3, 1}} {
		if _, err := decodeDedupIndex(bad); err == nil {
			t.Fatalf("decodeDedupIndex(%v): no error", bad)
		}
	}
}

func FuzzDedupIndex(f *testing.F) {
	f.Add(appendDedupIndex(nil, []uint64{1, 2, 300}))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		seqs, err := decodeDedupIndex(data)
		if err != nil {
			return
		}
		// Varints need not be minimal on input; what is decoded must
		// survive a round trip.
		again, err := decodeDedupIndex(appendDedupIndex(nil, seqs))
		if err != nil || !slices.Equal(again, seqs) {
			t.Fatalf("%x decodes to %v, whose encoding decodes to %v, %v", data, seqs, again, err)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"same groups", func(c *Config) { c.ItemGroup = c.UserGroup }, false},
		{"no user group", func(c *Config) { c.UserGroup = "" }, false},
		{"negative interval", func(c *Config) { c.SnapshotInterval = -1 }, false},
		{"zero interval", func(c *Config) { c.SnapshotInterval = 0 }, true},
		{"no cache", func(c *Config) { c.CacheStates = 0 }, false},
		{"bad dedup", func(c *Config) { c.Dedup.MaxIDs = 1 }, false},
		{"bad batch", func(c *Config) { c.Task.MaxBatchRecords = 0 }, false},
		{"bad group name", func(c *Config) { c.UserGroup = "a b" }, false},
	} {
		c := DefaultConfig()
		tc.edit(&c)
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
