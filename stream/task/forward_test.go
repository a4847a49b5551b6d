package task

import (
	"context"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestForwarder(t *testing.T) {
	var read, kept, bad int
	f := NewForwarder(ForwardConfig{
		To:     "out",
		Header: kgo.RecordHeader{Key: "src", Value: []byte("a")},
		Sample: 1,
		Keep:   func(v []byte) bool { return v[0] != 'x' },
		KeyOf: func(v []byte) ([]byte, bool) {
			if v[0] == 'k' {
				return v[1:], true
			}
			return nil, false
		},
		Observe: func(r, k, i int) { read, kept, bad = read+r, kept+k, bad+i },
	})
	recs := []*kgo.Record{
		{Key: []byte("u1"), Value: []byte("v1")},
		{Key: []byte("u2"), Value: []byte("xdropped")},
		{Value: []byte("ku3")},   // key from the value
		{Value: []byte("nokey")}, // invalid
	}
	b := newBatch(0)
	if err := f.Process(context.Background(), recs, b); err != nil {
		t.Fatal(err)
	}
	if read != 4 || kept != 2 || bad != 1 {
		t.Fatalf("observed read %d kept %d invalid %d, want 4 2 1", read, kept, bad)
	}
	if len(b.emits) != 2 {
		t.Fatalf("%d copies, want 2", len(b.emits))
	}
	for i, want := range []string{"u1", "u3"} {
		r := b.emits[i].rec
		if r.Topic != "out" || string(r.Key) != want || len(r.Headers) != 1 || r.Headers[0].Key != "src" {
			t.Fatalf("copy %d: %+v", i, r)
		}
	}
}

func TestForwarderSample(t *testing.T) {
	f := NewForwarder(ForwardConfig{To: "out", Sample: 0.25})
	none := NewForwarder(ForwardConfig{To: "out"})
	n := 0
	for i := range 10000 {
		k := []byte(fmt.Sprint("user-", i))
		if f.Sampled(k) {
			n++
			if !f.Sampled(k) {
				t.Fatal("sampling is not a function of the key")
			}
		}
		if none.Sampled(k) {
			t.Fatal("share 0 kept a key")
		}
	}
	if n < 2200 || n > 2800 {
		t.Fatalf("share 0.25 kept %d of 10000 keys", n)
	}
}
