package scorer

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var jsonStrings = []string{"", "u1", "item-42", `quo"te`, `back\slash`, "<b>&amp;</b>", "tab\tnew\nline\r", "\b\f\x00\x1f\x7f",
	"héllo wörld", "日本語", "\u2028\u2029", "bad\xffutf8\xc3", "emoji 😀", "\xed\xa0\x80"}

var jsonFloats = []float64{0, 1, -1, 0.5, 1e-7, -1e-7, 1e-6, 1e20, 1e21, 1.5e300, -2.5e-300, 123456789.125, 0.1, math.SmallestNonzeroFloat64,
	math.MaxFloat64, 1e-9, 3.0000000000000004, float64(float32(0.7))}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range jsonStrings {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
}

func TestAppendJSONFloatMatchesEncodingJSON(t *testing.T) {
	for _, f := range jsonFloats {
		for _, f := range []float64{f, -f} {
			want, _ := json.Marshal(f)
			got, err := appendJSONFloat(nil, f)
			if err != nil || string(got) != string(want) {
				t.Errorf("%v: got %s (%v), want %s", f, got, err, want)
			}
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := appendJSONFloat(nil, f); err == nil {
			t.Errorf("%v: no error", f)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range jsonStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}

func FuzzAppendJSONFloat(f *testing.F) {
	for _, x := range jsonFloats {
		f.Add(math.Float64bits(x))
	}
	f.Fuzz(func(t *testing.T, bits uint64) {
		x := math.Float64frombits(bits)
		want, werr := json.Marshal(x)
		got, err := appendJSONFloat(nil, x)
		if (werr != nil) != (err != nil) || (err == nil && string(got) != string(want)) {
			t.Fatalf("%v: got %s (%v), want %s (%v)", x, got, err, want, werr)
		}
	})
}

// randomResponse builds a response like the scorer's, with awkward strings.
func randomResponse(rng *rand.Rand, names []string) *Response {
	pick := func() string { return jsonStrings[rng.IntN(len(jsonStrings))] }
	r := &Response{UserID: pick(), RequestID: pick(), ModelVersion: strconv.Itoa(rng.IntN(100)), Variant: pick(), Fallback: rng.IntN(2) == 0}
	if rng.IntN(2) == 0 {
		r.policy = pick()
	}
	n := rng.IntN(12)
	if n > 0 || rng.IntN(2) == 0 {
		r.Items = make([]Item, n)
	}
	for i := range r.Items {
		r.Items[i] = Item{ItemID: pick(), Score: jsonFloats[rng.IntN(len(jsonFloats))] * (rng.Float64() - 0.5)}
	}
	if names != nil && rng.IntN(3) > 0 {
		r.names = names
		r.features = make([][]float32, max(0, len(r.Items)-rng.IntN(2)))
		for i := range r.features {
			r.features[i] = make([]float32, len(names))
			for f := range names {
				r.features[i][f] = float32(rng.NormFloat64())
			}
		}
	}
	return r
}

func TestAppendResponseMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		r := randomResponse(rng, nil)
		want, _ := json.Marshal(r)
		got, err := appendResponse(nil, r)
		if err != nil || string(got) != string(want) {
			t.Fatalf("case %d: got %s (%v)\nwant %s", i, got, err, want)
		}
	}
	if _, err := appendResponse(nil, &Response{Items: []Item{{Score: math.NaN()}}}); err == nil {
		t.Fatal("NaN score encoded")
	}
}

func TestAppendServedListMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, names := range [][]string{nil, {"mf_score"}, {"mf_score", "item_ctr", "a<b", "item_log_popularity", "user_log_activity"}, {"z", "a", "z", "m"}} {
		order := featureOrder(names)
		for i := range 200 {
			r := randomResponse(rng, names)
			now := time.UnixMilli(rng.Int64N(1 << 42))
			want, _ := json.Marshal(servedList(r, now))
			got, err := appendServedList(nil, r, now.UnixMilli(), order)
			if err != nil || string(got) != string(want) {
				t.Fatalf("names %q case %d: got %s (%v)\nwant %s", names, i, got, err, want)
			}
		}
	}
}

func TestBestRankedIsAStableSortPrefix(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 300 {
		n := rng.IntN(250)
		k := 1 + rng.IntN(80)
		cand := make([]ranked, n)
		for i := range cand {
			// Few distinct scores: ties must keep retrieval order.
			cand[i] = ranked{idx: int32(i), score: float64(rng.IntN(20))}
		}
		want := slices.Clone(cand)
		slices.SortStableFunc(want, func(a, b ranked) int {
			switch {
			case a.score > b.score:
				return -1
			case a.score < b.score:
				return 1
			}
			return 0
		})
		got := bestRanked(cand, k)
		want = want[:min(k, n)]
		if len(got) != len(want) {
			t.Fatalf("n=%d k=%d: %d kept, want %d", n, k, len(got), len(want))
		}
		for i := range got {
			if got[i].idx != want[i].idx {
				t.Fatalf("n=%d k=%d: rank %d is %d, want %d", n, k, i, got[i].idx, want[i].idx)
			}
		}
	}
}

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  Request
		err   string
	}{
		{query: "user_id=u%201&k=5&exclude_seen=false&explain=1", want: Request{UserID: "u 1", K: 5, ExcludeSeen: false, Explain: true}},
		{query: "user_id=a+b&&k=7", want: Request{UserID: "a b", K: 7, ExcludeSeen: true}},
		{query: "k=5&user_id=x", want: Request{UserID: "x", K: 5, ExcludeSeen: true}},
		{query: "user_id=%zz", err: "user_id"},
		{query: "user_id=u&k=1&k=2&k=3", err: `"k" given 3 times`},
		{query: "user_id", err: "user_id is required"},
		{query: "us%65r_id=u", want: Request{UserID: "u", K: 10, ExcludeSeen: true}},
		{query: "user_id=u&=x", err: "unknown parameter"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "/v1/recommendations?"+tc.query, nil)
			got, err := parseRequest(r)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want it to mention %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
