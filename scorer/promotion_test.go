package scorer

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/learner/modelrec"
	"github.com/eddyrec/eddy/stream"
)

// versionedRec is a vector record of a model version; marked records
// carry the header the retrain role sets on a promotion's vectors.
func versionedRec(t *testing.T, topic, id string, kind modelrec.Kind, vec []float32, version uint64, marked bool) *kgo.Record {
	t.Helper()
	b, err := modelrec.AppendVector(nil, &modelrec.Vector{Kind: kind, ModelVersion: version, TsMillis: 1, Vec: vec, Popularity: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := &kgo.Record{Topic: topic, Key: []byte(id), Value: b}
	if marked {
		r.Headers = []kgo.RecordHeader{{Key: headerVersion, Value: []byte(strconv.FormatUint(version, 10))}}
	}
	return r
}

// promote writes version's vectors (u1 and items a, b, c; top is the item
// u1 should get first) and its version record in one transaction, as the
// retrain role does, and commits or aborts it. between, if set, runs after
// the vectors are produced and before the transaction ends.
func (m *modelKafka) promote(t *testing.T, version uint64, top string, commit bool, between func()) {
	t.Helper()
	ctx := context.Background()
	kc := m.k.Client()
	opts, err := kc.Opts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.TransactionalID(m.k.Layout.Prefix+"promote"), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	recs := []*kgo.Record{versionedRec(t, m.topics.Users, "u1", modelrec.KindUser, []float32{1, 0}, version, true)}
	for _, id := range []string{"a", "b", "c"} {
		x := float32(1)
		if id == top {
			x = 5
		}
		recs = append(recs, versionedRec(t, m.topics.Items, id, modelrec.KindItem, []float32{x, 0}, version, true))
	}
	res := cl.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	ranges := map[string]map[int32][2]int64{m.topics.Users: {}, m.topics.Items: {}}
	for _, r := range res {
		rg, ok := ranges[r.Record.Topic][r.Record.Partition]
		if !ok {
			rg = [2]int64{r.Record.Offset, r.Record.Offset + 1}
		}
		rg[0], rg[1] = min(rg[0], r.Record.Offset), max(rg[1], r.Record.Offset+1)
		ranges[r.Record.Topic][r.Record.Partition] = rg
	}
	v, _ := json.Marshal(map[string]any{"version": version, "decision": "promoted",
		"published": map[string]any{"user_ranges": ranges[m.topics.Users], "item_ranges": ranges[m.topics.Items]}})
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: m.topics.Versions, Key: []byte(strconv.FormatUint(version, 10)), Value: v}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if between != nil {
		between()
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatal(err)
	}
}

// TestPromotionSwapsWhole: a promoted version is built beside the live
// one and swapped in whole. While its transaction is open every scorer
// serves the old version — one started during the promotion too — and
// once it commits every scorer serves the new one; no response mixes the
// two (each names one version and ranks as that version does). An
// aborted promotion is never served, and records of the replaced version
// that arrive late are dropped.
func TestPromotionSwapsWhole(t *testing.T) {
	m := newModelKafka(t, 2)
	m.topics.Versions = m.k.Layout.Name(stream.TopicModelVersions)
	ctx := context.Background()
	// Version 1, the online model: u1 gets a first.
	for _, r := range []*kgo.Record{
		versionedRec(t, m.topics.Items, "a", modelrec.KindItem, []float32{5, 0}, 1, false),
		versionedRec(t, m.topics.Items, "b", modelrec.KindItem, []float32{1, 0}, 1, false),
		versionedRec(t, m.topics.Items, "c", modelrec.KindItem, []float32{1, 0}, 1, false),
		versionedRec(t, m.topics.Users, "u1", modelrec.KindUser, []float32{1, 0}, 1, false),
	} {
		if err := m.prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	first := func(s *Scorer) (string, string) {
		resp, err := s.Recommend(ctx, Request{UserID: "u1", K: 1})
		if err != nil || len(resp.Items) != 1 {
			return "", "" // not caught up yet
		}
		return resp.ModelVersion, resp.Items[0].ItemID
	}
	s1, c1 := m.newScorer(t, DefaultConfig())
	run(t, c1)
	waitFor(t, "version 1 served", func() bool { v, top := first(s1); return v == "1" && top == "a" })

	// Requests run throughout; each must name one version and rank as
	// it does (1: a first, 2: c first, 4: b first).
	want := map[string]string{"1": "a", "2": "c", "4": "b"}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var mixed atomic.Value
	watch := func(s *Scorer) {
		wg.Go(func() {
			for !stop.Load() {
				v, top := first(s)
				if v == "" || want[v] != top {
					mixed.Store(v + " ranked " + top + " first")
				}
			}
		})
	}
	watch(s1) // s1 is caught up

	var s2 *Scorer
	m.promote(t, 2, "c", true, func() {
		// The promotion is written, not committed: nothing of it shows,
		// and a scorer started now serves version 1.
		var c2 *Consumer
		s2, c2 = m.newScorer(t, DefaultConfig())
		run(t, c2)
		waitFor(t, "the new scorer ready", func() bool { return c2.Ready(ctx) == nil })
		watch(s2)
		time.Sleep(300 * time.Millisecond)
		for _, s := range []*Scorer{s1, s2} {
			if v, top := first(s); v != "1" || top != "a" {
				t.Errorf("during the open promotion: version %s ranks %s first, want 1 and a", v, top)
			}
		}
	})
	for _, s := range []*Scorer{s1, s2} {
		waitFor(t, "version 2 served", func() bool { v, _ := first(s); return v == "2" })
	}

	// A late update of version 1 (a stage before it adopted) is dropped.
	if err := m.prod.ProduceSync(ctx, versionedRec(t, m.topics.Items, "b", modelrec.KindItem, []float32{50, 0}, 1, false)).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stale record counted", func() bool { return metricVal(t, s1.metrics.stale) >= 1 })

	// An aborted promotion (version 3) is never served; the next (4) is.
	m.promote(t, 3, "b", false, nil)
	m.promote(t, 4, "b", true, nil)
	for _, s := range []*Scorer{s1, s2} {
		waitFor(t, "version 4 served", func() bool { v, _ := first(s); return v == "4" })
	}
	stop.Store(true)
	wg.Wait()
	if v := mixed.Load(); v != nil {
		t.Fatalf("a response mixed versions: %v", v)
	}
	if got := metricVal(t, s1.metrics.promotions); got != 2 {
		t.Errorf("promotions swapped in: %v, want 2 (versions 2 and 4)", got)
	}
}

func metricVal(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	return testutil.ToFloat64(c)
}
