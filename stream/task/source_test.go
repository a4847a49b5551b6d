package task

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// sourceReplayer records every value it is given, and on its first batch
// reads the source partition from offset from to that batch's first record.
type sourceReplayer struct {
	from int64

	mu       sync.Mutex
	seen     []string // values Process was given, in order
	replayed []string // values ReadSource gave
	start    int64    // ReadSource's start offset
	err      error
	asked    bool
}

func (s *sourceReplayer) Process(ctx context.Context, recs []*kgo.Record, b *Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.asked {
		s.asked = true
		s.start, s.err = b.ReadSource(ctx, s.from, recs[0].Offset, func(r *kgo.Record) error {
			s.replayed = append(s.replayed, string(r.Value))
			return nil
		})
	}
	for _, r := range recs {
		s.seen = append(s.seen, string(r.Value))
	}
	return nil
}

// waitSeen waits until Process has been given n records. (Not an offset:
// on a real broker a transaction's marker can land after records produced
// once the commit returned, so the end offset is no record's.)
func (s *sourceReplayer) waitSeen(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.mu.Lock()
		seen := len(s.seen)
		s.mu.Unlock()
		if seen >= n {
			return
		}
		if time.Now().After(deadline) {
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Fatalf("processed %d records (%q), want %d", len(s.seen), s.seen, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBatchReadSource: a restarted processor reads the committed records it
// was given before, from its snapshot's offset to its first new batch —
// without the aborted ones, across transaction markers — and is told the
// start offset when retention deleted part of the range.
func TestBatchReadSource(t *testing.T) {
	e := newEnv(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var committed []string
	plain := func(vals ...string) {
		t.Helper()
		var rs []*kgo.Record
		for _, v := range vals {
			rs = append(rs, &kgo.Record{Topic: e.source, Key: []byte("k"), Value: []byte(v)})
		}
		if err := e.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		committed = append(committed, vals...)
	}
	txn := func(commit bool, vals ...string) {
		t.Helper()
		cl := e.k.NewClient(t, kgo.TransactionalID(e.k.Layout.Prefix+"txn"), kgo.ProducerLinger(0))
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: e.source, Key: []byte("k"), Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
		cl.Close()
		if commit {
			committed = append(committed, vals...)
		}
	}
	seq := func(prefix string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, prefix+strconv.Itoa(i))
		}
		return out
	}
	plain(seq("a", 10)...)
	txn(false, seq("aborted", 3)...)
	txn(true, seq("t", 5)...)
	plain(seq("b", 4)...)

	cfg := e.config(t, t.TempDir())
	first := &sourceReplayer{}
	r := start(t, cfg, func(int32) (Processor, error) { return first, nil })
	first.waitSeen(t, len(committed))
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(first.seen, committed) {
		t.Fatalf("first run saw %q, want %q", first.seen, committed)
	}
	if first.err != nil || len(first.replayed) != 0 {
		t.Fatalf("first run replayed %q (err %v) from an empty range", first.replayed, first.err)
	}

	for _, tc := range []struct {
		name      string
		from      int64
		deleteTo  int64 // DeleteRecords before this offset (0: none)
		wantStart int64
	}{
		{name: "whole range", from: 0, wantStart: 0},
		// Offsets: a0–a9 0–9, the aborted 10–12, then their marker, t0–t4
		// and b0–b3 (a real broker may write t's marker after b0–b3).
		{name: "from inside the aborted transaction", from: 12, wantStart: 12},
		{name: "trimmed by retention", from: 0, deleteTo: 5, wantStart: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.deleteTo > 0 {
				resp, err := kadm.NewClient(e.cl).DeleteRecords(ctx, kadm.Offsets{e.source: {0: {Topic: e.source, Partition: 0, At: tc.deleteTo}}})
				if err != nil {
					t.Fatal(err)
				}
				if err := resp.Error(); err != nil {
					t.Fatal(err)
				}
			}
			// The committed values at offsets ≥ from (and not deleted).
			var want []string
			for _, r := range e.k.ReadAll(t, e.source) {
				if r.Offset >= max(tc.from, tc.deleteTo) {
					want = append(want, string(r.Value))
				}
			}
			plain("new-" + tc.name)
			p := &sourceReplayer{from: tc.from}
			r := start(t, cfg, func(int32) (Processor, error) { return p, nil })
			p.waitSeen(t, 1)
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
			if p.err != nil {
				t.Fatal(p.err)
			}
			if p.start != tc.wantStart {
				t.Errorf("start %d, want %d", p.start, tc.wantStart)
			}
			if !slices.Equal(p.replayed, want) {
				t.Errorf("replayed %q, want %q", p.replayed, want)
			}
			if len(want) == 0 {
				t.Fatal("the case replays nothing")
			}
		})
	}
}
