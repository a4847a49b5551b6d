package drift

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"
)

// fuzzSeeds returns encoded states of a small pipeline mid-stream.
func fuzzSeeds(f testing.TB) (*Schema, [][]byte) {
	cfg := testConfig()
	cfg.Window.MaxUsers = 50
	cfg.Window.MaxRequests = 20
	p := newPipeline(f, cfg, 1)
	g := &streamGen{r: rand.New(rand.NewPCG(3, 3)), t: scriptBase, shiftAt: 1 << 30}
	var seeds [][]byte
	for i := range 4000 {
		g.next(p, f)
		if i%1000 == 500 {
			b, err := p.parts[0].MarshalBinary()
			if err != nil {
				f.Fatal(err)
			}
			seeds = append(seeds, b)
			for _, w := range p.parts[0].open {
				wb, _ := w.MarshalBinary()
				seeds = append(seeds, wb)
			}
			mb, _ := p.monitor.MarshalBinary()
			seeds = append(seeds, mb)
			pb, _ := p.monitor.policy.MarshalBinary()
			seeds = append(seeds, pb)
			gb, _ := p.merger.MarshalBinary()
			seeds = append(seeds, gb)
			if r := p.monitor.Reference(); r != nil {
				rb, _ := r.MarshalBinary()
				seeds = append(seeds, rb)
			}
		}
	}
	return p.schema, seeds
}

// FuzzStateDecoders feeds arbitrary bytes to every state decoder: none may
// panic, and what one accepts must re-encode to bytes it accepts again
// with the same encoding (a fixed point), and must keep working.
func FuzzStateDecoders(f *testing.F) {
	s, seeds := fuzzSeeds(f)
	for _, b := range seeds {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if w, err := DecodeWindow(s, data); err == nil {
			again, err := w.MarshalBinary()
			if err != nil || !bytes.Equal(again, data) {
				t.Fatal("window does not round-trip")
			}
			if w.closed {
				if _, err := MergeWindows(w, w.Clone()); err != nil {
					t.Fatal(err)
				}
			}
		}
		if p, err := RestorePartition(s, data); err == nil {
			b1, err := p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			p2, err := RestorePartition(s, b1)
			if err != nil {
				t.Fatalf("re-encoded partition rejected: %v", err)
			}
			b2, _ := p2.MarshalBinary()
			if !bytes.Equal(b1, b2) {
				t.Fatal("partition encoding is not a fixed point")
			}
			p2.Advance(time.UnixMilli(p2.watermark).Add(time.Hour))
			p2.Flush()
			p2.TakeClosed(nil)
		}
		if r, err := DecodeReference(s, data); err == nil {
			b, _ := r.MarshalBinary()
			if _, err := DecodeReference(s, b); err != nil {
				t.Fatalf("re-encoded reference rejected: %v", err)
			}
			_, _ = r.Compare(r.Window())
		}
		if m, err := RestoreMonitor(s, data, nil); err == nil {
			if _, err := m.MarshalBinary(); err != nil {
				t.Fatal(err)
			}
		}
		if p, err := RestorePolicy(s.cfg.Trigger, data); err == nil {
			b, _ := p.MarshalBinary()
			if !bytes.Equal(b, data) {
				t.Fatal("policy does not round-trip")
			}
		}
		if m, err := RestoreMerger(s, data); err == nil {
			if _, err := m.MarshalBinary(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzDecodeServedList: no panics; what is accepted validates and
// round-trips through its JSON.
func FuzzDecodeServedList(f *testing.F) {
	f.Add([]byte(`{"request_id":"r1","user_id":"u1","model_version":"v1","fallback":false,"ts":1735689600000,"items":[{"item_id":"i1","position":0,"score":0.5,"features":{"mf_score":0.5}}]}`))
	f.Add([]byte(`{"request_id":"r1","user_id":"u1","ts":"2025-01-01T00:00:00Z","items":[]}`))
	f.Add([]byte(`{"request_id":"","ts":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := DecodeServedList(data)
		if err != nil {
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatal(err)
		}
		b, err := l.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		l2, err := DecodeServedList(b)
		if err != nil {
			t.Fatalf("re-encoded list rejected: %v\n%s", err, b)
		}
		if l2.RequestID != l.RequestID || !l2.Time.Equal(l.Time.Truncate(time.Millisecond)) || len(l2.Items) != len(l.Items) {
			t.Fatal("list does not round-trip")
		}
	})
}
