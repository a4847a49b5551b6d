package modelrec

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"
)

func sampleUser() *Vector {
	return &Vector{Kind: KindUser, ModelVersion: 3, Updates: 42, TsMillis: 1763900000123,
		Vec: []float32{0.5, -1.25, 3}, Seen: []string{"m1", "m22", "ünï"}}
}

func sampleItem() *Vector {
	return &Vector{Kind: KindItem, ModelVersion: 3, Updates: 7, TsMillis: -1, Bias: -0.5,
		Popularity: 12.5, Impressions: 100, Vec: []float32{1, 2, 3, 4}}
}

func TestVectorRoundTrip(t *testing.T) {
	for _, v := range []*Vector{sampleUser(), sampleItem()} {
		b, err := AppendVector(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != v.EncodedLen() {
			t.Fatalf("len %d, EncodedLen %d", len(b), v.EncodedLen())
		}
		var got Vector
		if err := DecodeVector(b, &got); err != nil {
			t.Fatal(err)
		}
		if got.Seen == nil {
			got.Seen = []string{}
		}
		want := *v
		if want.Seen == nil {
			want.Seen = []string{}
		}
		if !reflect.DeepEqual(&got, &want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
		h, err := DecodeHeader(b)
		if err != nil || h.Dim != len(v.Vec) || h.Kind != v.Kind || h.Updates != v.Updates || h.TsMillis != v.TsMillis {
			t.Fatalf("header %+v, %v", h, err)
		}
	}
}

// TestVectorGolden pins the byte layout documented in doc.go.
func TestVectorGolden(t *testing.T) {
	v := &Vector{Kind: KindItem, ModelVersion: 1, Updates: 2, TsMillis: 3, Bias: 1, Popularity: 2, Impressions: 0.5, Vec: []float32{-2}}
	b, err := AppendVector(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		0xED, 1, 2, 0, 1, 0, 0, 0,
		1, 0, 0, 0, 0, 0, 0, 0,
		2, 0, 0, 0, 0, 0, 0, 0,
		3, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0, 0x3f, 0, 0, 0, 0,
		0, 0, 0, 0xc0,
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("encoding\n got %x\nwant %x", b, want)
	}
}

func TestVectorRejects(t *testing.T) {
	good, _ := AppendVector(nil, sampleUser())
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	nan := math.Float32bits(float32(math.NaN()))
	cases := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short header", good[:HeaderLen-1]},
		{"magic", mutate(func(b []byte) []byte { b[0] = 0; return b })},
		{"version", mutate(func(b []byte) []byte { b[1] = 2; return b })},
		{"kind", mutate(func(b []byte) []byte { b[2] = 9; return b })},
		{"flags", mutate(func(b []byte) []byte { b[3] = 1; return b })},
		{"dim zero", mutate(func(b []byte) []byte { b[4], b[5] = 0, 0; return b })},
		{"dim too big", mutate(func(b []byte) []byte { b[4], b[5] = 0x01, 0x04; return b })},
		{"reserved", mutate(func(b []byte) []byte { b[44] = 1; return b })},
		{"nan factor", mutate(func(b []byte) []byte {
			b[48], b[49], b[50], b[51] = byte(nan), byte(nan>>8), byte(nan>>16), byte(nan>>24)
			return b
		})},
		{"negative popularity", mutate(func(b []byte) []byte { b[39] = 0xbf; b[38] = 0x80; return b })},
		{"truncated payload", good[:HeaderLen+8]},
		{"truncated seen", good[:len(good)-1]},
		{"trailing", append(bytes.Clone(good), 0)},
		{"item with seen", mutate(func(b []byte) []byte { b[2] = byte(KindItem); return b })},
		{"control char id", mutate(func(b []byte) []byte { b[len(b)-1] = 0x01; return b })},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var v Vector
			if err := DecodeVector(c.b, &v); !errors.Is(err, ErrBadRecord) {
				t.Fatalf("DecodeVector = %v, want ErrBadRecord", err)
			}
		})
	}
}

func TestAppendVectorChecks(t *testing.T) {
	cases := map[string]*Vector{
		"no dims":     {Kind: KindUser},
		"bad kind":    {Kind: 0, Vec: []float32{1}},
		"inf":         {Kind: KindUser, Vec: []float32{float32(math.Inf(1))}},
		"item seen":   {Kind: KindItem, Vec: []float32{1}, Seen: []string{"a"}},
		"empty id":    {Kind: KindUser, Vec: []float32{1}, Seen: []string{""}},
		"neg impress": {Kind: KindItem, Vec: []float32{1}, Impressions: -1},
	}
	for name, v := range cases {
		if _, err := AppendVector(nil, v); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: AppendVector = %v, want ErrBadRecord", name, err)
		}
	}
}

func TestDecodeVectorReusesStorage(t *testing.T) {
	b, _ := AppendVector(nil, sampleItem())
	v := Vector{Vec: make([]float32, 0, 64)}
	if n := testing.AllocsPerRun(100, func() { _ = DecodeVector(b, &v) }); n != 0 {
		t.Fatalf("DecodeVector allocates %v times per item record", n)
	}
}

func TestRankerRoundTrip(t *testing.T) {
	r := &Ranker{Schema: 1, ModelVersion: 9, TsMillis: 5, Features: []string{FeatureMFScore, FeatureItemCTR}, Weights: []float64{0.5, -2}, Bias: 0.25}
	b, err := EncodeRanker(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRanker(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("got %+v want %+v", got, r)
	}
}

func TestRankerRejects(t *testing.T) {
	for _, s := range []string{
		``,
		`{}`,
		`{"schema":2,"features":[],"weights":[]}`,
		`{"schema":1,"features":["a"],"weights":[]}`,
		`{"schema":1,"features":["a","a"],"weights":[1,2]}`,
		`{"schema":1,"features":[""],"weights":[1]}`,
		`{"schema":1,"features":["a"],"weights":[1],"extra":1}`,
		`{"schema":1,"features":["a"],"weights":[1]} {}`,
		`{"schema":1,"features":["a"],"weights":[1e999]}`,
	} {
		if _, err := DecodeRanker([]byte(s)); !errors.Is(err, ErrBadRecord) {
			t.Errorf("DecodeRanker(%s) = %v, want ErrBadRecord", s, err)
		}
	}
}

func FuzzDecodeVector(f *testing.F) {
	for _, v := range []*Vector{sampleUser(), sampleItem()} {
		b, _ := AppendVector(nil, v)
		f.Add(b)
	}
	f.Add([]byte{0xED, 1, 1, 0, 1, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var v Vector
		if err := DecodeVector(b, &v); err != nil {
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("error %v does not wrap ErrBadRecord", err)
			}
			return
		}
		// Whatever decodes must re-encode to the same bytes.
		out, err := AppendVector(nil, &v)
		if err != nil {
			t.Fatalf("decoded record does not re-encode: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, out)
		}
	})
}

func FuzzDecodeRanker(f *testing.F) {
	f.Add([]byte(`{"schema":1,"model_version":1,"ts":2,"features":["mf_score"],"weights":[1],"bias":0}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRanker(b)
		if err != nil {
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("error %v does not wrap ErrBadRecord", err)
			}
			return
		}
		if _, err := EncodeRanker(r); err != nil {
			t.Fatalf("decoded ranker does not re-encode: %v", err)
		}
	})
}
