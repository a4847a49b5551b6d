package recs

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeValid(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     List
	}{
		{"minimal", `{"request_id":"r","user_id":"u","ts":1}`,
			List{RequestID: "r", UserID: "u", TsMillis: 1}},
		{"full", `{"request_id":"r1","user_id":"u1","model_version":"m3","variant":"B","policy":"ranker","fallback":true,"ts":1735689600123,
			"items":[{"item_id":"i1","position":0,"score":1.5,"features":{"mf_score":1.5,"item_pop":-2e-3}},{"item_id":"i2","position":1,"score":-0.25}]}`,
			List{RequestID: "r1", UserID: "u1", ModelVersion: "m3", Variant: "B", Policy: "ranker", Fallback: true, TsMillis: 1735689600123,
				Items: []Item{
					{ItemID: "i1", Position: 0, Score: 1.5, Features: []Feature{{"item_pop", -2e-3}, {"mf_score", 1.5}}},
					{ItemID: "i2", Position: 1, Score: -0.25},
				}}},
		{"rfc3339 ts", `{"request_id":"r","user_id":"u","ts":"2025-01-01T00:00:00.123Z"}`,
			List{RequestID: "r", UserID: "u", TsMillis: 1735689600123}},
		{"nulls are absent", `{"request_id":"r","user_id":"u","ts":5,"variant":null,"fallback":null,"items":null}`,
			List{RequestID: "r", UserID: "u", TsMillis: 5}},
		{"unknown fields skipped", ` {"x":{"y":[1,"z",null]},"request_id":"r","user_id":"u","ts":5,"items":[{"item_id":"a","new":true,"features":{}}]} `,
			List{RequestID: "r", UserID: "u", TsMillis: 5, Items: []Item{{ItemID: "a"}}}},
		{"escapes", `{"request_id":"r\u00e9","user_id":"\"u\"","ts":5,"items":[{"item_id":"a","features":{"f\u0031":2}}]}`,
			List{RequestID: "ré", UserID: `"u"`, TsMillis: 5, Items: []Item{{ItemID: "a", Features: []Feature{{"f1", 2}}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d Decoder
			got, err := d.Decode([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeRules(t *testing.T) {
	const head = `"request_id":"r","user_id":"u","ts":5`
	item := func(s string) string { return `{` + head + `,"items":[` + s + `]}` }
	for _, tc := range []struct {
		name, in, field string // field "" means a syntax error
	}{
		{"empty", ``, ""},
		{"not json", `hello`, ""},
		{"array", `[]`, "(record)"},
		{"trailing", `{` + head + `} x`, ""},
		{"truncated", `{` + head, ""},
		{"no request_id", `{"user_id":"u","ts":5}`, "request_id"},
		{"empty user_id", `{"request_id":"r","user_id":"","ts":5}`, "user_id"},
		{"no ts", `{"request_id":"r","user_id":"u"}`, "ts"},
		{"ts zero", `{"request_id":"r","user_id":"u","ts":0}`, "ts"},
		{"ts negative", `{"request_id":"r","user_id":"u","ts":-5}`, "ts"},
		{"ts fraction", `{"request_id":"r","user_id":"u","ts":5.5}`, "ts"},
		{"ts huge", `{"request_id":"r","user_id":"u","ts":9007199254740993}`, "ts"},
		{"ts bad string", `{"request_id":"r","user_id":"u","ts":"yesterday"}`, "ts"},
		{"ts bool", `{"request_id":"r","user_id":"u","ts":true}`, "ts"},
		{"id number", `{"request_id":5,"user_id":"u","ts":5}`, "request_id"},
		{"id too long", `{"request_id":"` + strings.Repeat("x", 257) + `","user_id":"u","ts":5}`, "request_id"},
		{"id not utf8", "{\"request_id\":\"\xff\",\"user_id\":\"u\",\"ts\":5}", "request_id"},
		{"lone surrogate", `{"request_id":"\ud800","user_id":"u","ts":5}`, "request_id"},
		{"unknown not utf8", "{" + head + ",\"x\":\"\xfe\"}", "x"},
		{"fallback string", `{` + head + `,"fallback":"yes"}`, "fallback"},
		{"items object", `{` + head + `,"items":{}}`, "items"},
		{"item null", item(`null`), "items[0]"},
		{"item no id", item(`{"score":1}`), "items[0].item_id"},
		{"score string", item(`{"item_id":"a","score":"1"}`), "items[0].score"},
		{"score overflow", item(`{"item_id":"a","score":1e999}`), "items[0].score"},
		{"score NaN", item(`{"item_id":"a","score":NaN}`), ""},
		{"position fraction", item(`{"item_id":"a","position":1.5}`), "items[0].position"},
		{"position negative", item(`{"item_id":"a","position":-1}`), "items[0].position"},
		{"feature string", item(`{"item_id":"a","features":{"f":"1"}}`), `items[0].features["f"]`},
		{"feature empty name", item(`{"item_id":"a","features":{"":1}}`), "items[0].features"},
		{"feature long name", item(`{"item_id":"a","features":{"` + strings.Repeat("f", 65) + `":1}}`), "items[0].features"},
		{"feature duplicate", item(`{"item_id":"a","features":{"g":1,"f":2,"g":3}}`), `items[0].features["g"]`},
		{"features array", item(`{"item_id":"a","features":[1]}`), ""},
		{"second item bad", item(`{"item_id":"a"},{"item_id":""}`), "items[1].item_id"},
		{"too many items", item(strings.TrimSuffix(strings.Repeat(`{"item_id":"a"},`, MaxItems+1), ",")), "items"},
		{"too many features", item(`{"item_id":"a","features":{` + manyFeatures(MaxFeatures+1) + `}}`), "items[0].features"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d Decoder
			_, err := d.Decode([]byte(tc.in))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			var fe *FieldError
			switch {
			case tc.field == "":
				if errors.As(err, &fe) {
					t.Errorf("err = %v, want a syntax error", err)
				}
			case !errors.As(err, &fe) || fe.Field != tc.field:
				t.Errorf("err = %v, want a FieldError on %s", err, tc.field)
			}
		})
	}
}

func manyFeatures(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"f%03d":%d`, i, i)
	}
	return b.String()
}

func TestDecodeLimitsAccepted(t *testing.T) {
	in := `{"request_id":"r","user_id":"u","ts":9007199254740992,"items":[{"item_id":"a","features":{` + manyFeatures(MaxFeatures) + `}}]}`
	var d Decoder
	l, err := d.Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items[0].Features) != MaxFeatures || l.TsMillis != MaxTsMillis {
		t.Errorf("got %d features, ts %d", len(l.Items[0].Features), l.TsMillis)
	}
}

// TestDecoderReuse decodes lists one after another with one Decoder: a
// list keeps its features after the next one is decoded, and feature
// names are shared.
func TestDecoderReuse(t *testing.T) {
	var d Decoder
	a, err := d.Decode([]byte(`{"request_id":"r","user_id":"u","ts":5,"items":[{"item_id":"a","features":{"f":1,"g":2}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Decode([]byte(`{"request_id":"s","user_id":"u","ts":6,"items":[{"item_id":"b","features":{"f":3,"g":4}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := a.Items[0].Lookup("g"); v != 2 {
		t.Errorf("first list's g = %v after the second decode, want 2", v)
	}
	if v, ok := b.Items[0].Lookup("f"); !ok || v != 3 {
		t.Errorf("second list's f = %v, %v", v, ok)
	}
	if _, ok := b.Items[0].Lookup("h"); ok {
		t.Error("Lookup found a feature that is not there")
	}
	if len(d.names) != 2 {
		t.Errorf("%d names interned, want 2", len(d.names))
	}
}

// reference is the served list as encoding/json reads it.
type reference struct {
	RequestID    string `json:"request_id"`
	UserID       string `json:"user_id"`
	ModelVersion string `json:"model_version"`
	Variant      string `json:"variant"`
	Policy       string `json:"policy"`
	Fallback     bool   `json:"fallback"`
	Ts           json.RawMessage
	Items        []struct {
		ItemID   string             `json:"item_id"`
		Position int                `json:"position"`
		Score    float64            `json:"score"`
		Features map[string]float64 `json:"features"`
	} `json:"items"`
}

// sameAsReference checks l against encoding/json's reading of in.
func sameAsReference(t *testing.T, in []byte, l List) {
	t.Helper()
	var r reference
	if err := json.Unmarshal(in, &r); err != nil {
		t.Fatalf("decoded %q, which encoding/json rejects: %v", in, err)
	}
	if r.RequestID != l.RequestID || r.UserID != l.UserID || r.ModelVersion != l.ModelVersion ||
		r.Variant != l.Variant || r.Policy != l.Policy || r.Fallback != l.Fallback || len(r.Items) != len(l.Items) {
		t.Fatalf("%q: got %+v, encoding/json %+v", in, l, r)
	}
	for i, ri := range r.Items {
		it := l.Items[i]
		if ri.ItemID != it.ItemID || ri.Position != it.Position || ri.Score != it.Score || len(ri.Features) != len(it.Features) {
			t.Fatalf("%q: item %d: got %+v, encoding/json %+v", in, i, it, ri)
		}
		for k, v := range ri.Features {
			if got, ok := it.Lookup(k); !ok || got != v {
				t.Fatalf("%q: item %d feature %q: got %v, %v; encoding/json %v", in, i, k, got, ok, v)
			}
		}
	}
}

// TestDecodeMatchesEncodingJSON decodes lists that encoding/json wrote and
// compares with encoding/json's own reading.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var d Decoder
	for n := range 200 {
		l := randomReference(r, n)
		in, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.Decode(in)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		sameAsReference(t, in, got)
	}
}

type marshalled struct {
	RequestID    string  `json:"request_id"`
	UserID       string  `json:"user_id"`
	ModelVersion string  `json:"model_version"`
	Variant      string  `json:"variant,omitempty"`
	Fallback     bool    `json:"fallback"`
	Ts           int64   `json:"ts"`
	Items        []mItem `json:"items"`
}

type mItem struct {
	ItemID   string             `json:"item_id"`
	Position int                `json:"position"`
	Score    float64            `json:"score"`
	Features map[string]float64 `json:"features,omitempty"`
}

func randomReference(r *rand.Rand, n int) marshalled {
	m := marshalled{RequestID: fmt.Sprintf("req-%d", n), UserID: fmt.Sprintf("ü<%d>", r.IntN(100)), ModelVersion: "v1",
		Fallback: r.IntN(5) == 0, Ts: 1 + r.Int64N(MaxTsMillis)}
	if r.IntN(2) == 0 {
		m.Variant = "B\n\"x\""
	}
	for k := range r.IntN(12) {
		it := mItem{ItemID: fmt.Sprintf("i%d", r.IntN(1000)), Position: k, Score: r.NormFloat64() * 1e3}
		if r.IntN(3) > 0 {
			it.Features = map[string]float64{}
			for f := range r.IntN(40) {
				it.Features[fmt.Sprintf("feat_%d", f)] = r.NormFloat64() * float64(r.IntN(1e6))
			}
		}
		m.Items = append(m.Items, it)
	}
	return m
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"request_id":"r","user_id":"u","ts":1}`,
		`{"request_id":"r1","user_id":"u1","model_version":"m3","variant":"B","fallback":true,"ts":"2025-01-01T00:00:00Z","items":[{"item_id":"i1","position":0,"score":1.5,"features":{"b":1.5,"a":-2e-3}},{"item_id":"i2","position":1,"score":-0.25}]}`,
		`{"request_id":"r","user_id":"u","ts":5,"x":[{"y":null}],"items":[{"item_id":"a","features":{"f\u0031":2}}]}`,
		`{"request_id":"r","user_id":"u","ts":5,"items":[{"item_id":"a","features":{"g":1,"g":2}}]}`,
		`[1,2]`, `{"request_id":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var d Decoder
		l, err := d.Decode(in)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			return
		}
		if l.RequestID == "" || l.UserID == "" || l.TsMillis <= 0 || l.TsMillis > MaxTsMillis || len(l.Items) > MaxItems {
			t.Fatalf("accepted an invalid list: %+v", l)
		}
		for _, it := range l.Items {
			for k := 1; k < len(it.Features); k++ {
				if it.Features[k-1].Name >= it.Features[k].Name {
					t.Fatalf("features not sorted and unique: %+v", it.Features)
				}
			}
		}
		checkAgainstReference(t, in, l)
	})
}

// checkAgainstReference compares with encoding/json when the input uses
// only what both read the same way: encoding/json also matches keys that
// differ in case (or by Unicode folding) and lets a repeated key win.
func checkAgainstReference(t *testing.T, in []byte, l List) {
	if !exactKeys(in) {
		return
	}
	sameAsReference(t, in, l)
}

var knownKeys = []string{"request_id", "user_id", "model_version", "variant", "policy", "fallback", "ts", "items",
	"item_id", "position", "score", "features"}

// exactKeys reports whether no object of in repeats a key and every key
// that folds to a known field name is that name.
func exactKeys(in []byte) bool {
	dec := json.NewDecoder(strings.NewReader(string(in)))
	type frame struct {
		object, wantKey bool
		keys            map[string]bool
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return true
		}
		top := len(stack) - 1
		if top >= 0 && stack[top].object && stack[top].wantKey {
			if k, ok := tok.(string); ok {
				stack[top].wantKey = false
				if stack[top].keys[k] {
					return false
				}
				stack[top].keys[k] = true
				for _, n := range knownKeys {
					if strings.EqualFold(k, n) && k != n {
						return false
					}
				}
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{object: true, wantKey: true, keys: map[string]bool{}})
			continue
		case json.Delim('['):
			stack = append(stack, frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:top]
		}
		// A value ended: the enclosing object wants a key next.
		if n := len(stack) - 1; n >= 0 && stack[n].object {
			stack[n].wantKey = true
		}
	}
}

// BenchmarkDecode reads lists as the scorer writes them: 10 items with the
// default ranker's 5 features, and with 31 (the 50-signal drift benchmark),
// float32 values written as float64 (17 significant digits; parsing them
// is about half of the decoder's time).
func BenchmarkDecode(b *testing.B) {
	for _, nf := range []int{5, 31} {
		r := rand.New(rand.NewPCG(1, 2))
		m := marshalled{RequestID: "req-123456", UserID: "user-98765", ModelVersion: "v17", Ts: 1735689600123}
		for k := range 10 {
			it := mItem{ItemID: fmt.Sprintf("item-%d", r.IntN(5000)), Position: k, Score: float64(float32(r.NormFloat64())), Features: map[string]float64{}}
			for f := range nf {
				it.Features[fmt.Sprintf("feature_%d", f)] = float64(float32(r.NormFloat64()))
			}
			m.Items = append(m.Items, it)
		}
		in, err := json.Marshal(m)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("10x%d/recs.Decoder", nf), func(b *testing.B) {
			var d Decoder
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.Decode(in); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("10x%d/encoding-json", nf), func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				var r reference
				if err := json.Unmarshal(in, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestFeaturesMarshalJSON(t *testing.T) {
	it := Item{ItemID: "a", Position: 2, Score: 0.5, Features: Features{{"a\"b", 1.25}, {"z", -3}}}
	b, err := json.Marshal(it)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"item_id":"a","position":2,"score":0.5,"features":{"a\"b":1.25,"z":-3}}`
	if string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
	if _, err := json.Marshal(Features{{"x", math.NaN()}}); err == nil {
		t.Error("a NaN feature marshalled")
	}
}
