package learner

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"
)

// TestItemGradientLayout pins the documented byte layout.
func TestItemGradientLayout(t *testing.T) {
	g := &ItemGradient{ItemID: "m1", Partition: 3, Offset: 258, Rate: 0.5, BiasGrad: -1, Grad: []float32{1, -2}}
	b, err := AppendItemGradient(nil, g)
	if err != nil {
		t.Fatal(err)
	}
	want := "4547" + "01" + "00" + // magic, version, flags
		"0200" + "0200" + // dim 2, id length 2
		"03000000" + // partition 3
		"0201000000000000" + // offset 258
		"0000003f" + // rate 0.5
		"000080bf" + // bias grad -1
		"6d31" + // "m1"
		"0000803f" + "000000c0" // 1, -2
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
	if len(b) != g.EncodedLen() {
		t.Errorf("EncodedLen = %d, encoded %d", g.EncodedLen(), len(b))
	}
}

func TestItemGradientRoundTrip(t *testing.T) {
	tests := []*ItemGradient{
		{ItemID: "x", Partition: -1, Offset: -1, Rate: 1, Grad: []float32{0}},
		{ItemID: "film/é", Partition: 7, Offset: 1 << 40, Rate: 0.25, BiasGrad: 0.125, Grad: make([]float32, 64)},
		{ItemID: strings.Repeat("i", MaxItemIDLen), Rate: 1e-6, Grad: make([]float32, MaxWireDim)},
	}
	for _, g := range tests {
		for j := range g.Grad {
			g.Grad[j] = float32(j)*0.5 - 3
		}
		b, err := AppendItemGradient([]byte("prefix"), g)
		if err != nil {
			t.Fatal(err)
		}
		var got ItemGradient
		if err := DecodeItemGradient(b[len("prefix"):], &got); err != nil {
			t.Fatal(err)
		}
		if got.ItemID != g.ItemID || got.Partition != g.Partition || got.Offset != g.Offset ||
			got.Rate != g.Rate || got.BiasGrad != g.BiasGrad || len(got.Grad) != len(g.Grad) {
			t.Fatalf("round trip %+v → %+v", g, got)
		}
		for j := range g.Grad {
			if got.Grad[j] != g.Grad[j] {
				t.Fatalf("grad[%d] = %v, want %v", j, got.Grad[j], g.Grad[j])
			}
		}
	}
}

func TestItemGradientErrors(t *testing.T) {
	good, _ := AppendItemGradient(nil, &ItemGradient{ItemID: "ab", Rate: 0.1, Grad: []float32{1, 2}})
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	nan := math.Float32bits(float32(math.NaN()))
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "header needs"},
		{"magic", mut(func(b []byte) []byte { b[0] = 'X'; return b }), "magic"},
		{"version", mut(func(b []byte) []byte { b[2] = 2; return b }), "schema version 2"},
		{"flags", mut(func(b []byte) []byte { b[3] = 1; return b }), "flags"},
		{"short", good[:len(good)-1], "bytes"},
		{"long", append(append([]byte(nil), good...), 0), "bytes"},
		{"zero dim", mut(func(b []byte) []byte { b[4] = 0; return b[:len(b)-8] }), "dim 0"},
		{"empty id", mut(func(b []byte) []byte {
			b[6] = 0
			return append(b[:gradientHeaderLen], b[gradientHeaderLen+2:]...)
		}), "item id length 0"},
		{"bad utf8", mut(func(b []byte) []byte { b[gradientHeaderLen] = 0xff; return b }), "UTF-8"},
		{"nan grad", mut(func(b []byte) []byte {
			b[len(b)-4], b[len(b)-3], b[len(b)-2], b[len(b)-1] = byte(nan), byte(nan>>8), byte(nan>>16), byte(nan>>24)
			return b
		}), "gradient[1]"},
		{"zero rate", mut(func(b []byte) []byte { copy(b[20:24], []byte{0, 0, 0, 0}); return b }), "rate 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g ItemGradient
			err := DecodeItemGradient(tt.b, &g)
			if !errors.Is(err, ErrBadGradient) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrBadGradient containing %q", err, tt.want)
			}
		})
	}
	if _, err := AppendItemGradient(nil, &ItemGradient{ItemID: "a", Rate: 2, Grad: []float32{1}}); err == nil {
		t.Error("encoder accepted rate 2")
	}
}

func TestDecodeItemGradientReusesBuffer(t *testing.T) {
	b, _ := AppendItemGradient(nil, &ItemGradient{ItemID: "a", Rate: 0.1, Grad: make([]float32, 64)})
	g := ItemGradient{Grad: make([]float32, 0, 64)}
	// One allocation remains: the item id string.
	if a := testing.AllocsPerRun(100, func() { _ = DecodeItemGradient(b, &g) }); a > 1 {
		t.Errorf("decode allocates %v times, want ≤ 1", a)
	}
}

func FuzzDecodeItemGradient(f *testing.F) {
	seed, _ := AppendItemGradient(nil, &ItemGradient{ItemID: "m1", Partition: 3, Offset: 9, Rate: 0.5, BiasGrad: -1, Grad: []float32{1, -2}})
	f.Add(seed)
	f.Add([]byte("EG\x01\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var g ItemGradient
		if err := DecodeItemGradient(b, &g); err != nil {
			if !errors.Is(err, ErrBadGradient) {
				t.Fatalf("error %v does not wrap ErrBadGradient", err)
			}
			return
		}
		out, err := AppendItemGradient(nil, &g)
		if err != nil {
			t.Fatalf("decoded record does not re-encode: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, out)
		}
	})
}

func BenchmarkItemGradientCodec(b *testing.B) {
	g := &ItemGradient{ItemID: "item-123456", Partition: 1, Offset: 99, Rate: 0.25, Grad: make([]float32, 64)}
	buf := make([]byte, 0, g.EncodedLen())
	out := ItemGradient{Grad: make([]float32, 64)}
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendItemGradient(buf[:0], g)
		_ = DecodeItemGradient(buf, &out)
	}
}
