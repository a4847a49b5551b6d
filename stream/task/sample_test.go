package task

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestKeySample(t *testing.T) {
	const n = 100_000
	for _, tc := range []struct {
		share, want float64
	}{{0, 0}, {-1, 0}, {0.01, 0.01}, {0.5, 0.5}, {1, 1}, {2, 1}} {
		s := NewKeySample(tc.share)
		kept := 0
		for i := range n {
			k := fmt.Sprintf("user-%d", i)
			b, str := s.Keeps([]byte(k)), s.KeepsString(k)
			if b != str {
				t.Fatalf("share %v: Keeps(%q) = %v, KeepsString = %v", tc.share, k, b, str)
			}
			if b {
				kept++
			}
		}
		// Binomial spread: 5 standard deviations.
		if got := float64(kept) / n; math.Abs(got-tc.want) > 5*math.Sqrt(tc.want*(1-tc.want)/n)+1e-12 {
			t.Errorf("share %v kept %.4f of keys", tc.share, got)
		}
	}
	// The FNV-1a reference value (offset basis and prime of FNV-1a 32).
	if h := SampleHash([]byte("a")); h != 0xe40c292c {
		t.Errorf("SampleHash(a) = %#x, want 0xe40c292c", h)
	}
}

func TestCopier(t *testing.T) {
	ts := time.UnixMilli(1735689600123)
	c := NewCopier("to", 1, kgo.RecordHeader{Key: "src", Value: []byte("a")})
	key, val := []byte("u1"), []byte("v")
	r := c.Copy(key, val, ts)
	if r == nil || r.Topic != "to" || &r.Key[0] != &key[0] || &r.Value[0] != &val[0] || !r.Timestamp.Equal(ts) ||
		len(r.Headers) != 1 || r.Headers[0].Key != "src" || string(r.Headers[0].Value) != "a" {
		t.Fatalf("copy %+v", r)
	}
	if r := NewCopier("to", 1, kgo.RecordHeader{}).Copy(key, val, time.Time{}); r == nil || r.Headers != nil {
		t.Fatalf("copy without a header: %+v", r)
	}
	if r := NewCopier("to", 0, kgo.RecordHeader{}).Copy(key, val, ts); r != nil {
		t.Fatalf("share 0 copied %+v", r)
	}
	s, half := NewKeySample(0.5), NewCopier("to", 0.5, kgo.RecordHeader{})
	for i := range 1000 {
		k := []byte(fmt.Sprintf("user-%d", i))
		if (half.Copy(k, val, ts) != nil) != s.Keeps(k) {
			t.Fatalf("copier and sample disagree on %s", k)
		}
	}
}

// BenchmarkKeySample is the per-record cost of the sample rule in every
// copier (the process role's user stage hashes every event's key).
func BenchmarkKeySample(b *testing.B) {
	s := NewKeySample(0.01)
	for _, key := range []string{"u12345", "3f2b8c1e-9d4a-4f6b-8a2e-5c7d9e0f1a2b"} {
		b.Run(fmt.Sprintf("key_bytes=%d", len(key)), func(b *testing.B) {
			k := []byte(key)
			kept := 0
			for b.Loop() {
				if s.Keeps(k) {
					kept++
				}
			}
			_ = kept
		})
	}
}
