package scorer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/learner/modelrec"
	"github.com/eddyrec/eddy/stream/task"
)

func itemRec(t testing.TB, id string, vec []float32, bias, pop float32) Record {
	t.Helper()
	b, err := modelrec.AppendVector(nil, &modelrec.Vector{Kind: modelrec.KindItem, ModelVersion: 2, TsMillis: time.Now().UnixMilli(), Vec: vec, Bias: bias, Popularity: pop})
	if err != nil {
		t.Fatal(err)
	}
	return Record{Key: []byte(id), Value: b}
}

func userRec(t testing.TB, id string, vec []float32, seen ...string) Record {
	t.Helper()
	b, err := modelrec.AppendVector(nil, &modelrec.Vector{Kind: modelrec.KindUser, ModelVersion: 2, TsMillis: 1, Vec: vec, Seen: seen})
	if err != nil {
		t.Fatal(err)
	}
	return Record{Key: []byte(id), Value: b}
}

// newTestScorer has items a..e scoring a>b>c>d>e for user u1 (vector 1,0)
// and popularity e>d>c>b>a; u1 has seen "a".
func newTestScorer(t *testing.T) (*Scorer, *prometheus.Registry) {
	t.Helper()
	st := NewState(DefaultConfig())
	if _, err := st.ApplyItems([]Record{
		itemRec(t, "a", []float32{5, 0}, 0, 1),
		itemRec(t, "b", []float32{4, 0}, 0, 2),
		itemRec(t, "c", []float32{3, 0}, 0, 3),
		itemRec(t, "d", []float32{2, 0}, 0, 4),
		itemRec(t, "e", []float32{1, 0}, 0, 5),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ApplyUsers([]Record{userRec(t, "u1", []float32{1, 0}, "a")}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := New(DefaultConfig(), st, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, reg
}

func get(t *testing.T, s *Scorer, query string) (int, map[string]any) {
	t.Helper()
	mux := http.NewServeMux()
	s.Register(mux)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/v1/recommendations?"+query, nil))
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s: body %q: %v", query, w.Body.String(), err)
	}
	return w.Code, body
}

func itemIDs(body map[string]any) []string {
	var ids []string
	items, _ := body["items"].([]any)
	for _, it := range items {
		ids = append(ids, it.(map[string]any)["item_id"].(string))
	}
	return ids
}

func TestRecommendations(t *testing.T) {
	s, reg := newTestScorer(t)
	cases := []struct {
		query    string
		code     int
		ids      []string
		fallback bool
		errPart  string
	}{
		{query: "user_id=u1&k=3", code: 200, ids: []string{"b", "c", "d"}},
		{query: "user_id=u1&k=2&exclude_seen=false", code: 200, ids: []string{"a", "b"}},
		{query: "user_id=u1&k=10", code: 200, ids: []string{"b", "c", "d", "e"}},
		{query: "user_id=nobody&k=2", code: 200, ids: []string{"e", "d"}, fallback: true},
		{query: "user_id=u1", code: 200, ids: []string{"b", "c", "d", "e"}},
		{query: "k=3", code: 400, errPart: "user_id"},
		{query: "user_id=u1&k=0", code: 400, errPart: "k"},
		{query: "user_id=u1&k=1001", code: 400, errPart: "k"},
		{query: "user_id=u1&k=x", code: 400, errPart: "k"},
		{query: "user_id=u1&colour=red", code: 400, errPart: "unknown parameter"},
		{query: "user_id=u1&explain=maybe", code: 400, errPart: "explain"},
		{query: "user_id=u1&user_id=u2", code: 400, errPart: "2 times"},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			code, body := get(t, s, c.query)
			if code != c.code {
				t.Fatalf("code %d, want %d (%v)", code, c.code, body)
			}
			if c.code != 200 {
				if msg, _ := body["error"].(string); !strings.Contains(msg, c.errPart) {
					t.Fatalf("error %q does not mention %q", msg, c.errPart)
				}
				return
			}
			if got := itemIDs(body); !slices.Equal(got, c.ids) {
				t.Fatalf("items %v, want %v", got, c.ids)
			}
			if body["fallback"] != c.fallback || body["model_version"] != "2" || body["request_id"] == "" {
				t.Fatalf("body %v", body)
			}
		})
	}
	if n := counterValue(t, s.metrics.fallbacks.WithLabelValues(ReasonUnknownUser)); n != 1 {
		t.Fatalf("unknown-user fallbacks %v, want 1", n)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "eddy_scorer_request_duration_seconds" {
			found = len(mf.GetMetric()) > 0 && mf.GetMetric()[0].GetHistogram().GetSampleCount() == uint64(len(cases))
		}
	}
	if !found {
		t.Fatal("latency histogram missing or miscounted")
	}
}

func TestRankerRescoresAndExplains(t *testing.T) {
	s, _ := newTestScorer(t)
	// A ranker that prefers popularity over the MF score reverses the order.
	b, _ := modelrec.EncodeRanker(&modelrec.Ranker{Schema: 1, ModelVersion: 3,
		Features: []string{modelrec.FeatureMFScore, modelrec.FeatureItemLogPopularity, "not_known_yet"}, Weights: []float64{0.1, 5, 7}, Bias: -1})
	if err := s.State().ApplyRanker(b); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, s, "user_id=u1&k=2&explain=true")
	if code != 200 {
		t.Fatal(body)
	}
	if got := itemIDs(body); !slices.Equal(got, []string{"e", "d"}) {
		t.Fatalf("ranked items %v, want [e d]", got)
	}
	ex := body["items"].([]any)[0].(map[string]any)["explain"].(map[string]any)
	if ex["mf_score"].(float64) != 1 {
		t.Fatalf("explain %v: mf_score want 1", ex)
	}
	contr := ex["contributions"].(map[string]any)
	if contr["mf_score"].(float64) != 0.1 || contr["not_known_yet"].(float64) != 0 || ex["intercept"].(float64) != -1 {
		t.Fatalf("contributions %v", ex)
	}
	if body["model_version"] != "3" {
		t.Fatalf("model_version %v", body["model_version"])
	}
}

func TestEmptyModelFallsBack(t *testing.T) {
	s, err := New(DefaultConfig(), NewState(DefaultConfig()), nil)
	if err != nil {
		t.Fatal(err)
	}
	code, body := get(t, s, "user_id=u1")
	if code != 200 || body["fallback"] != true || len(itemIDs(body)) != 0 {
		t.Fatalf("%d %v", code, body)
	}
}

func TestDeletesAndBadRecords(t *testing.T) {
	s, _ := newTestScorer(t)
	n, err := s.State().ApplyItems([]Record{{Key: []byte("b")}, itemRec(t, "f", []float32{1, 2, 3}, 0, 1), {Key: []byte("g"), Value: []byte{1, 2}}})
	if n != 1 || err == nil {
		t.Fatalf("applied %d, err %v; want 1 and the first error", n, err)
	}
	_, body := get(t, s, "user_id=u1&k=2")
	if got := itemIDs(body); !slices.Equal(got, []string{"c", "d"}) {
		t.Fatalf("after deleting b: %v", got)
	}
	if items, _, _ := s.State().Sizes(); items != 4 {
		t.Fatalf("live items %d, want 4", items)
	}
}

func TestUserUpdates(t *testing.T) {
	st := NewState(DefaultConfig())
	if _, ok := st.UserUpdates("u1"); ok {
		t.Fatal("an empty state holds u1")
	}
	for _, n := range []uint64{3, 4} {
		b, err := modelrec.AppendVector(nil, &modelrec.Vector{Kind: modelrec.KindUser, ModelVersion: 1, Updates: n, Vec: []float32{1, 0}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.ApplyUsers([]Record{{Key: []byte("u1"), Value: b}}); err != nil {
			t.Fatal(err)
		}
		if got, ok := st.UserUpdates("u1"); !ok || got != n {
			t.Fatalf("UserUpdates = %d, %v; want %d, true", got, ok, n)
		}
	}
	if _, err := st.ApplyUsers([]Record{{Key: []byte("u1")}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.UserUpdates("u1"); ok {
		t.Fatal("a deleted user is still held")
	}
}

type fakeProducer struct {
	mu      sync.Mutex
	recs    []*kgo.Record
	block   chan struct{}
	discard bool // count nothing, keep nothing (benchmarks)
}

func (f *fakeProducer) Produce(_ context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	if f.block != nil {
		<-f.block
	}
	if !f.discard {
		f.mu.Lock()
		f.recs = append(f.recs, r)
		f.mu.Unlock()
	}
	promise(r, nil)
}

func TestServedListsPublished(t *testing.T) {
	s, _ := newTestScorer(t)
	b, _ := modelrec.EncodeRanker(&modelrec.Ranker{Schema: 1, Features: []string{modelrec.FeatureMFScore}, Weights: []float64{1}})
	_ = s.State().ApplyRanker(b)
	p := &fakeProducer{}
	s.PublishServedLists(p, "t.recs")
	_, body := get(t, s, "user_id=u1&k=2")
	s.StopPublishing()
	if len(p.recs) != 1 {
		t.Fatalf("%d records published", len(p.recs))
	}
	r := p.recs[0]
	var sl ServedList
	if err := json.Unmarshal(r.Value, &sl); err != nil {
		t.Fatal(err)
	}
	if r.Topic != "t.recs" || string(r.Key) != "u1" || sl.RequestID != body["request_id"] || sl.UserID != "u1" || sl.TsMillis == 0 ||
		len(sl.Items) != 2 || sl.Items[1].Position != 1 || sl.Items[0].ItemID != "b" || sl.Items[0].Features["mf_score"] != 4 {
		t.Fatalf("served list %s", r.Value)
	}
}

// TestServedListsDriftCopy: with a drift sample, the lists of exactly the
// sampled users (unknown users get fallback lists, also copied) go a
// second time, byte for byte, to the drift input with the source header.
func TestServedListsDriftCopy(t *testing.T) {
	s, _ := newTestScorer(t)
	s.cfg.DriftSample, s.cfg.DriftInput = 0.3, "t.drift-input"
	s.cfg.DriftHeaderKey, s.cfg.DriftHeaderValue = "eddy-source", "recs"
	p := &fakeProducer{}
	s.PublishServedLists(p, "t.recs")
	sample := task.NewKeySample(0.3)
	want := 0
	for i := range 200 {
		u := fmt.Sprintf("u%d", i)
		if code, _ := get(t, s, "user_id="+u); code != 200 {
			t.Fatal(code)
		}
		if sample.KeepsString(u) {
			want++
		}
	}
	s.StopPublishing()
	lists := map[string][]byte{}
	var copies []*kgo.Record
	for _, r := range p.recs {
		switch r.Topic {
		case "t.recs":
			lists[string(r.Key)] = r.Value
		case "t.drift-input":
			copies = append(copies, r)
		default:
			t.Fatalf("record to %s", r.Topic)
		}
	}
	if len(lists) != 200 || len(copies) != want || want == 0 || want == 200 {
		t.Fatalf("%d lists, %d copies, want 200 and %d", len(lists), len(copies), want)
	}
	for _, c := range copies {
		if !sample.Keeps(c.Key) || !bytes.Equal(c.Value, lists[string(c.Key)]) ||
			len(c.Headers) != 1 || c.Headers[0].Key != "eddy-source" || string(c.Headers[0].Value) != "recs" {
			t.Fatalf("copy for %s: headers %v, value %s", c.Key, c.Headers, c.Value)
		}
	}
	if got := counterValue(t, s.metrics.recsDrift); got != float64(want) {
		t.Errorf("eddy_scorer_recs_drift_copies_total = %v, want %d", got, want)
	}
}

func TestDriftCopyConfig(t *testing.T) {
	for _, tc := range []struct {
		sample float64
		input  string
		ok     bool
	}{{0, "", true}, {0.01, "in", true}, {1, "in", true}, {0.01, "", false}, {-0.1, "in", false}, {1.5, "in", false}} {
		c := DefaultConfig()
		c.DriftSample, c.DriftInput, c.DriftHeaderKey = tc.sample, tc.input, "h"
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("sample %v input %q: %v", tc.sample, tc.input, err)
		}
	}
}

func TestServedListsDropWhenFull(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RecsBuffer = 1
	s, _ := newTestScorer(t)
	s.cfg = cfg
	p := &fakeProducer{block: make(chan struct{})}
	s.PublishServedLists(p, "t.recs")
	for range 5 {
		if code, _ := get(t, s, "user_id=u1"); code != 200 {
			t.Fatal(code)
		}
	}
	close(p.block)
	s.StopPublishing()
	dropped := counterValue(t, s.metrics.recsDrop)
	if dropped < 3 || int(dropped)+len(p.recs) != 5 {
		t.Fatalf("dropped %v, published %d of 5", dropped, len(p.recs))
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
