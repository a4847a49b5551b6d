package scorer

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/eddyrec/eddy/learner/modelrec"
)

func TestParseVariants(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []Variant
		errPart string
	}{
		{in: "", want: nil},
		{in: "  ", want: nil},
		{in: "a=1,b=1", want: []Variant{{"a", PolicyOnline, 0.5}, {"b", PolicyOnline, 0.5}}},
		{in: "online=9, popularity=1", want: []Variant{{"online", PolicyOnline, 0.9}, {"popularity", PolicyPopularity, 0.1}}},
		{in: "ctl:online=2,test:retrieval=1,retrieval=1", want: []Variant{{"ctl", PolicyOnline, 0.5}, {"test", PolicyRetrieval, 0.25}, {"retrieval", PolicyRetrieval, 0.25}}},
		{in: "pop:popularity=0.5", want: []Variant{{"pop", PolicyPopularity, 1}}},
		{in: "online:retrieval=1,x.y-z_1=3", want: []Variant{{"online", PolicyRetrieval, 0.25}, {"x.y-z_1", PolicyOnline, 0.75}}},
		{in: "a", errPart: "want name[:policy]=weight"},
		{in: "a=1,", errPart: "empty entry"},
		{in: "=1", errPart: "name"},
		{in: "a:frozen=1,frozen=1", want: []Variant{{"a", PolicyFrozen, 0.5}, {"frozen", PolicyFrozen, 0.5}}},
		{in: "a:batch=1", errPart: `unknown policy "batch"`},
		{in: "a:=1", errPart: "unknown policy"},
		{in: "a=1,a:retrieval=2", errPart: `"a" named twice`},
		{in: "a=0", errPart: "positive"},
		{in: "a=-1", errPart: "positive"},
		{in: "a=NaN", errPart: "positive"},
		{in: "a=Inf", errPart: "positive"},
		{in: "a=x", errPart: "positive"},
		{in: "a=1e308,b=1e308", errPart: "infinity"},
		{in: "none=1", errPart: "reserved"},
		{in: "a b=1", errPart: "letters, digits"},
		{in: strings.Repeat("n", 65) + "=1", errPart: "1–64 bytes"},
		{in: strings.Repeat("v=1,", 16) + "w=1", errPart: "named twice"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseVariants(tc.in)
			if tc.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errPart) {
					t.Fatalf("err %v, want one mentioning %q", err, tc.errPart)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	var many []string
	for i := range MaxVariants + 1 {
		many = append(many, fmt.Sprintf("v%d=1", i))
	}
	if _, err := ParseVariants(strings.Join(many, ",")); err == nil || !strings.Contains(err.Error(), "more than 16") {
		t.Fatalf("17 variants: %v", err)
	}
}

func TestConfigValidateNamesVariantsFlag(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Variants = "a=1,b:nightly=1"
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "--variants") || !strings.Contains(err.Error(), "nightly") {
		t.Fatalf("Validate: %v", err)
	}
	if _, err := New(cfg, NewState(cfg), nil); err == nil {
		t.Fatal("New accepted bad --variants")
	}
	cfg.Variants = "a=1,b:popularity=1,c:frozen=1"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.FrozenRefresh = -time.Second
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--frozen-refresh") {
		t.Fatalf("negative --frozen-refresh: %v", err)
	}
}

// TestUserPointGolden pins the assignment to values computed by an
// independent implementation (testdata/variants_reference.py): a change
// of hash would silently move users between variants of a running
// experiment.
func TestUserPointGolden(t *testing.T) {
	vs, err := ParseVariants("a=5,b=3,c=2")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id      string
		point   float64
		variant int
	}{
		// Output of python3 scorer/testdata/variants_reference.py.
		{"", 0.93676944839044, 2},
		{"u1", 0.38955259071032944, 0},
		{"u2", 0.5017296878162173, 1},
		{"u3", 0.7657379015773941, 1},
		{"user-42", 0.638995336291391, 1},
		{"user-43", 0.29447298099866503, 0},
		{"\u65e5\u672c\u8a9e", 0.8792281553061472, 2},
		{strings.Repeat("a", 100), 0.3453377537172251, 0},
		{"\x00", 0.722706486340339, 1},
		{"42", 0.504075611554918, 1},
	} {
		if p := UserPoint(c.id); p != c.point {
			t.Errorf("UserPoint(%q) = %v, want %v", c.id, p, c.point)
		}
		if v := Assign(vs, c.id); v != c.variant {
			t.Errorf("Assign(%q) = %d, want %d", c.id, v, c.variant)
		}
	}
}

func TestAssignSplitsByWeight(t *testing.T) {
	const n = 100_000
	for _, tc := range []struct {
		spec string
		ids  func(i int) string
	}{
		{"a=1,b=1", func(i int) string { return fmt.Sprintf("u%d", i) }},
		{"online=9,popularity=1", func(i int) string { return fmt.Sprintf("user-%06d", i) }},
		{"a=5,b=3,c=2", func(i int) string { return fmt.Sprint(i) }},
		{"a=1,b=1,c=1,d=1,e=1,f=1,g=1,h=1", func(i int) string { return fmt.Sprintf("%x@example.com", i*7919) }},
		{"only=3", func(i int) string { return fmt.Sprintf("u%d", i) }},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			vs, err := ParseVariants(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			counts := make([]int, len(vs))
			for i := range n {
				id := tc.ids(i)
				v := Assign(vs, id)
				counts[v]++
				if i%97 == 0 && Assign(vs, id) != v {
					t.Fatalf("user %q assigned twice differently", id)
				}
			}
			for i, v := range vs {
				got := float64(counts[i]) / n
				// Five binomial standard errors: the split is fixed by the
				// hash, so this is a check of the hash's spread, not a
				// flaky sample.
				tol := 5 * math.Sqrt(v.Weight*(1-v.Weight)/n)
				if math.Abs(got-v.Weight) > tol {
					t.Errorf("variant %s: %.4f of users, want %.4f ± %.4f", v.Name, got, v.Weight, tol)
				}
			}
		})
	}
}

// newVariantScorer is newTestScorer's model (items a..e, MF order a>…>e
// for u1, popularity e>…>a) with a ranker that prefers popularity, served
// by variants spec.
func newVariantScorer(t *testing.T, spec string) (*Scorer, *prometheus.Registry) {
	t.Helper()
	base, _ := newTestScorer(t)
	cfg := DefaultConfig()
	cfg.Variants = spec
	reg := prometheus.NewRegistry()
	s, err := New(cfg, base.State(), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	b, _ := modelrec.EncodeRanker(&modelrec.Ranker{Schema: 1, ModelVersion: 3,
		Features: []string{modelrec.FeatureMFScore, modelrec.FeatureItemLogPopularity}, Weights: []float64{0.1, 5}})
	if err := s.State().ApplyRanker(b); err != nil {
		t.Fatal(err)
	}
	return s, reg
}

func TestVariantsServeTheirPolicies(t *testing.T) {
	s, reg := newVariantScorer(t, "on:online=1,ret:retrieval=1,pop:popularity=1")
	users := []string{"u1", "nobody", "u1x", "u2x", "u3x", "u4x", "u5x", "u6x", "u7x"}
	p := &fakeProducer{}
	s.PublishServedLists(p, "t.recs")
	want := map[string]struct {
		ids      []string
		fallback bool
	}{
		// u1 has seen a; the ranker prefers popularity (e>d>c>b).
		"on":  {[]string{"e", "d"}, false},
		"ret": {[]string{"b", "c"}, false},
		"pop": {[]string{"e", "d"}, false},
	}
	seen := map[string]int{}
	wantFallbacks := 0
	for round := range 2 {
		for _, u := range users {
			code, body := get(t, s, "k=2&user_id="+u)
			if code != 200 {
				t.Fatal(code, body)
			}
			name := s.split[Assign(s.split, u)].Name
			if body["variant"] != name {
				t.Fatalf("round %d user %s: variant %v, want %s", round, u, body["variant"], name)
			}
			seen[name]++
			if u != "u1" {
				// Unknown users: the popularity arm serves its list, the
				// others fall back.
				if got := body["fallback"]; got != (name != "pop") {
					t.Fatalf("unknown user %s in %s: fallback %v", u, name, got)
				}
				if name != "pop" {
					wantFallbacks++
				}
				continue
			}
			w := want[name]
			if got := itemIDs(body); !slices.Equal(got, w.ids) || body["fallback"] != w.fallback {
				t.Fatalf("u1 in %s: %v fallback %v, want %v", name, got, body["fallback"], w.ids)
			}
		}
	}
	if len(seen) != 3 {
		t.Fatalf("variants served %v: want all three among %d users", seen, len(users))
	}
	s.StopPublishing()
	if len(p.recs) != 2*len(users) {
		t.Fatalf("%d served lists, want %d", len(p.recs), 2*len(users))
	}
	for _, r := range p.recs {
		var sl ServedList
		if err := json.Unmarshal(r.Value, &sl); err != nil {
			t.Fatal(err)
		}
		v := s.split[Assign(s.split, sl.UserID)]
		if sl.Variant != v.Name || sl.Policy != v.Policy {
			t.Fatalf("served list %s: want variant %s policy %s", r.Value, v.Name, v.Policy)
		}
		if v.Policy == PolicyOnline && sl.UserID == "u1" && sl.Items[0].Features == nil {
			t.Fatalf("online list without ranker features: %s", r.Value)
		}
		if v.Policy != PolicyOnline && sl.Items[0].Features != nil {
			t.Fatalf("%s list with ranker features: %s", v.Policy, r.Value)
		}
	}
	// Requests per variant, and the unassigned label for a bad request.
	get(t, s, "k=0&user_id=u1")
	counts := map[string]float64{}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "eddy_scorer_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			counts[labelValue(m, "variant")+"/"+labelValue(m, "code")] += m.GetCounter().GetValue()
		}
	}
	for name, n := range seen {
		if counts[name+"/200"] != float64(n) {
			t.Errorf("requests_total{variant=%s,code=200} = %v, want %d", name, counts[name+"/200"], n)
		}
	}
	if counts["none/400"] != 1 {
		t.Errorf("requests of the bad request: %v", counts)
	}
	if n := counterValue(t, s.metrics.fallbacks.WithLabelValues(ReasonUnknownUser)); n == 0 || n != float64(wantFallbacks) {
		t.Errorf("fallbacks %v, want %d (popularity arm lists do not count)", n, wantFallbacks)
	}
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// TestNoVariantsServesAsBefore: without --variants the served list has no
// policy field and the single variant is --variant.
func TestNoVariantsServesAsBefore(t *testing.T) {
	s, _ := newTestScorer(t)
	p := &fakeProducer{}
	s.PublishServedLists(p, "t.recs")
	_, body := get(t, s, "k=2&user_id=u1")
	_, bad := get(t, s, "k=0&user_id=u1")
	s.StopPublishing()
	if body["variant"] != "default" || bad["error"] == nil || len(p.recs) != 1 || strings.Contains(string(p.recs[0].Value), "policy") {
		t.Fatalf("body %v, record %s", body, p.recs[0].Value)
	}
	if got := counterValue(t, s.metrics.requests.WithLabelValues("default", "400")); got != 1 {
		t.Fatalf("bad request counted %v times under variant default", got)
	}
}

// TestFrozenVariantServesTheCopy: a frozen variant falls back until its
// copy is taken, then answers from the copied vectors while the live model
// moves on, with the live seen set; users newer than the copy fall back;
// a new Freeze catches up.
func TestFrozenVariantServesTheCopy(t *testing.T) {
	online, _ := newTestScorer(t)
	cfg := DefaultConfig()
	cfg.Variants = "fz:frozen=1"
	reg := prometheus.NewRegistry()
	fz, err := New(cfg, online.State(), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fz.Close)
	if !fz.WantsFrozen() || online.WantsFrozen() {
		t.Fatal("WantsFrozen: want true only with a frozen variant")
	}
	online.Freeze() // no frozen variant: a no-op
	if _, at := online.FrozenVersion(); !at.IsZero() {
		t.Fatal("a scorer without a frozen variant took a copy")
	}
	check := func(s *Scorer, user string, want []string, fallback bool) {
		t.Helper()
		code, body := get(t, s, "k=2&user_id="+user)
		if got := itemIDs(body); code != 200 || !slices.Equal(got, want) || body["fallback"] != fallback {
			t.Fatalf("%s: %d %v fallback %v; want %v fallback %v", user, code, got, body["fallback"], want, fallback)
		}
	}
	check(fz, "u1", []string{"e", "d"}, true) // popularity, before the copy
	if n := counterValue(t, fz.metrics.fallbacks.WithLabelValues(ReasonFrozenPending)); n != 1 {
		t.Fatalf("frozen_pending fallbacks %v, want 1", n)
	}
	fz.Freeze()
	if v, at := fz.FrozenVersion(); v != 2 || at.IsZero() {
		t.Fatalf("frozen version %d at %v", v, at)
	}
	check(fz, "u1", []string{"b", "c"}, false)

	// The live model moves on: u1 turns round and has consumed e, item f
	// is new, user u2 appears.
	if _, err := online.State().ApplyUsers([]Record{userRec(t, "u1", []float32{-1, 0}, "a", "e"), userRec(t, "u2", []float32{1, 0})}); err != nil {
		t.Fatal(err)
	}
	if _, err := online.State().ApplyItems([]Record{itemRec(t, "f", []float32{10, 0}, 0, 1), itemRec(t, "c", []float32{-9, 0}, 0, 3)}); err != nil {
		t.Fatal(err)
	}
	check(online, "u1", []string{"c", "d"}, false)
	check(online, "u2", []string{"f", "a"}, false)
	// Frozen: the old vectors of u1 and of the items (c still behind b,
	// f unknown), the live seen set (a and e excluded).
	check(fz, "u1", []string{"b", "c"}, false)
	check(fz, "u2", []string{"e", "d"}, true)
	if n := counterValue(t, fz.metrics.fallbacks.WithLabelValues(ReasonUnknownUser)); n != 1 {
		t.Fatalf("unknown_user fallbacks %v, want 1", n)
	}
	fz.Freeze()
	check(fz, "u1", []string{"c", "d"}, false)
	check(fz, "u2", []string{"f", "a"}, false)

	mfs, _ := reg.Gather()
	if !slices.ContainsFunc(mfs, func(mf *dto.MetricFamily) bool { return mf.GetName() == "eddy_scorer_frozen_model_age_seconds" }) {
		t.Fatal("no eddy_scorer_frozen_model_age_seconds metric")
	}
}
