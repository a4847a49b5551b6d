package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/learner/modelrec"
	"github.com/eddyrec/eddy/stream"
)

// produceModel writes a small model straight to the model topics: items
// i0… with popularity falling with the index, users u0…, and a ranker
// record, so that the online policy re-ranks and logs features.
func produceModel(t *testing.T, k *testkafka.Kafka, items, users, dim int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rng := rand.New(rand.NewPCG(7, 7))
	now := time.Now().UnixMilli()
	vec := func() []float32 {
		v := make([]float32, dim)
		for d := range v {
			v[d] = float32(rng.NormFloat64())
		}
		return v
	}
	var recs []*kgo.Record
	add := func(topic, key string, v *modelrec.Vector) {
		b, err := modelrec.AppendVector(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: k.Layout.Name(topic), Key: []byte(key), Value: b})
	}
	for i := range items {
		add(stream.TopicModelItems, fmt.Sprint("i", i), &modelrec.Vector{Kind: modelrec.KindItem, ModelVersion: 1, TsMillis: now,
			Vec: vec(), Popularity: float32(100 / float64(i+1)), Impressions: float32(1000 / float64(i+1))})
	}
	for u := range users {
		add(stream.TopicModelUsers, fmt.Sprint("u", u), &modelrec.Vector{Kind: modelrec.KindUser, ModelVersion: 1, TsMillis: now, Vec: vec(), Updates: 5})
	}
	rk, err := modelrec.EncodeRanker(&modelrec.Ranker{Schema: modelrec.RankerSchemaVersion, ModelVersion: 1, TsMillis: now,
		Features: []string{modelrec.FeatureMFScore, modelrec.FeatureItemLogPopularity}, Weights: []float64{1, 0.5}})
	if err != nil {
		t.Fatal(err)
	}
	recs = append(recs, &kgo.Record{Topic: k.Layout.Name(stream.TopicModelRanker), Key: []byte("ranker"), Value: rk})
	if err := k.NewClient(t).ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// getList asks eddy serve at addr for k recommendations for user.
func getList(t *testing.T, addr string, k int, user string) variantList {
	t.Helper()
	code, body := httpGet(t, fmt.Sprintf("http://%s/v1/recommendations?k=%d&user_id=%s", addr, k, user))
	var l variantList
	if code != 200 || json.Unmarshal([]byte(body), &l) != nil {
		t.Fatalf("recommendations for %s: %d %s", user, code, body)
	}
	return l
}

type variantList struct {
	UserID    string `json:"user_id"`
	RequestID string `json:"request_id"`
	Variant   string `json:"variant"`
	Fallback  bool   `json:"fallback"`
	Items     []struct {
		ItemID string `json:"item_id"`
	} `json:"items"`
}

// TestVariantsReportAB: eddy serve --variants splits users between an
// online and a popularity arm, every user always in the same one; clicks
// and watches answering the served lists (with duplicates and repeats the
// join must not count) go to the events topic; eddy report ab --json
// counts exactly the lists, impressions, clicks and watch seconds served
// and produced per variant.
func TestVariantsReportAB(t *testing.T) {
	k := testkafka.Start(t, 2)
	const items, users, k10 = 60, 150, 5
	produceModel(t, k, items, users, 8)
	addr := freeAddr(t)
	brokers := strings.Join(k.Brokers, ",")
	srv := startEddy(t, nil, "serve", "--brokers", brokers, "--topic-prefix", k.Layout.Prefix,
		"--partitions", fmt.Sprint(k.Layout.Partitions), "--http-addr", addr, "--log-format", "json",
		"--variants", "online=1,popularity=1")
	waitReady(t, srv, "http://"+addr+"/readyz", 60*time.Second)

	get := func(user string) variantList { t.Helper(); return getList(t, addr, k10, user) }
	type tally struct {
		lists, impressions, clicks int64
		watch                      float64
	}
	want := map[string]*tally{"online": {}, "popularity": {}}
	variantOf := map[string]string{}
	var events []*kgo.Record
	ts := time.Now().UnixMilli()
	ev := func(id, user, item, typ, req string, value float64) {
		v := fmt.Sprintf(`{"event_id":%q,"user_id":%q,"item_id":%q,"type":%q,"ts":%d,"request_id":%q,"value":%v}`, id, user, item, typ, ts, req, value)
		events = append(events, &kgo.Record{Topic: k.Layout.Name(stream.TopicEvents), Key: []byte(user), Value: []byte(v),
			Headers: []kgo.RecordHeader{{Key: "eddy-schema", Value: []byte("event/v1")}}})
	}
	// Users u0… are in the model; n0… are not (the online arm falls back
	// for them, the popularity arm serves them its list).
	for round := range 3 {
		for u := range users + 20 {
			user := fmt.Sprint("u", u)
			if u >= users {
				user = fmt.Sprint("n", u)
			}
			l := get(user)
			if prev, ok := variantOf[user]; ok && prev != l.Variant {
				t.Fatalf("user %s served by %s, then by %s", user, prev, l.Variant)
			}
			variantOf[user] = l.Variant
			w := want[l.Variant]
			if w == nil {
				t.Fatalf("variant %q not configured", l.Variant)
			}
			if l.Fallback != (l.Variant == "online" && u >= users) {
				t.Fatalf("user %s in %s: fallback %v", user, l.Variant, l.Fallback)
			}
			w.lists++
			w.impressions += int64(len(l.Items))
			if len(l.Items) != k10 {
				t.Fatalf("user %s: %d items", user, len(l.Items))
			}
			// Engagements: a click on one item of every other list, twice
			// with the same event id and once more with a new one (one
			// click counts); a watch of another on every third, plus an
			// event for an item the list did not serve.
			id := fmt.Sprintf("%d-%s", round, user)
			if (u+round)%2 == 0 {
				it := l.Items[(u+round)%k10].ItemID
				ev("c"+id, user, it, "click", l.RequestID, 0)
				ev("c"+id, user, it, "click", l.RequestID, 0)
				ev("c2"+id, user, it, "click", l.RequestID, 0)
				w.clicks++
			}
			if (u+round)%3 == 0 {
				secs := float64(10 + u%7)
				ev("w"+id, user, l.Items[0].ItemID, "watch", l.RequestID, secs)
				w.watch += secs
			}
			ev("x"+id, user, "not-served", "click", l.RequestID, 0)
		}
	}
	for name, w := range want {
		if w.lists == 0 {
			t.Fatalf("variant %s served no list among %d users", name, len(variantOf))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := k.NewClient(t).ProduceSync(ctx, events...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The served lists reach the recs topic asynchronously.
	total := want["online"].lists + want["popularity"].lists
	deadline := time.Now().Add(20 * time.Second)
	for n := int64(0); n < total; n = int64(metricValue(t, addr, "eddy_scorer_recs_published_total")) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d served lists published", n, total)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for name, w := range want {
		if got := metricValue(t, addr, fmt.Sprintf(`eddy_scorer_requests_total{code="200",variant=%q}`, name)); got != float64(w.lists) {
			t.Errorf("requests_total of %s: %v, want %d", name, got, w.lists)
		}
	}

	stdout, stderr := runEddy(t, 30*time.Second, "report", "ab", "--json", "--control", "online",
		"--brokers", brokers, "--topic-prefix", k.Layout.Prefix)
	var rep struct {
		Control  string `json:"control"`
		Variants map[string]struct {
			Lists        int64      `json:"lists"`
			Fallback     int64      `json:"fallback_lists"`
			Impressions  int64      `json:"impressions"`
			Clicks       int64      `json:"clicks"`
			CTR          float64    `json:"ctr"`
			CTRCI        [2]float64 `json:"ctr_ci"`
			WatchSeconds float64    `json:"watch_sec"`
			VsControl    *struct {
				P float64 `json:"p_value"`
			} `json:"vs_control"`
		} `json:"variants"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("report: %v\n%s\n%s", err, stdout, stderr)
	}
	if rep.Control != "online" || len(rep.Variants) != 2 {
		t.Fatalf("report %s", stdout)
	}
	for name, w := range want {
		got := rep.Variants[name]
		if got.Lists != w.lists || got.Impressions != w.impressions || got.Clicks != w.clicks || got.WatchSeconds != w.watch ||
			!(got.CTRCI[0] <= got.CTR && got.CTR <= got.CTRCI[1]) || (name == "popularity") != (got.VsControl != nil) {
			t.Errorf("%s: report %+v, want %+v\n%s", name, got, *w, stderr)
		}
	}
	if !strings.Contains(stderr, "served lists read") {
		t.Errorf("no summary on stderr: %q", stderr)
	}
	t.Logf("users per variant over %d users; report: %s", len(variantOf), strings.TrimSpace(stdout))
}

// TestFrozenVariant: eddy serve --variants online=1,frozen=1 serves the
// frozen arm from a copy of the model taken once the scorer caught up. The
// learner then turns every user's vector round: the online arm's lists
// follow, the frozen arm's stay as they were; a user who appears after the
// copy gets the fallback in the frozen arm.
func TestFrozenVariant(t *testing.T) {
	k := testkafka.Start(t, 2)
	const items, users, k10, dim = 60, 40, 5, 8
	produceModel(t, k, items, users, dim)
	addr := freeAddr(t)
	srv := startEddy(t, nil, "serve", "--brokers", strings.Join(k.Brokers, ","), "--topic-prefix", k.Layout.Prefix,
		"--partitions", fmt.Sprint(k.Layout.Partitions), "--http-addr", addr, "--log-format", "json",
		"--variants", "online=1,frozen=1")
	waitReady(t, srv, "http://"+addr+"/readyz", 60*time.Second)
	get := func(user string) variantList { t.Helper(); return getList(t, addr, k10, user) }
	ids := func(l variantList) string {
		var s []string
		for _, it := range l.Items {
			s = append(s, it.ItemID)
		}
		return strings.Join(s, ",")
	}
	// The copy is taken right after catch-up; wait for it.
	deadline := time.Now().Add(20 * time.Second)
	for metricValue(t, addr, "eddy_scorer_frozen_model_age_seconds") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no frozen copy taken")
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := map[string]variantList{}
	arms := map[string]int{}
	for u := range users {
		l := get(fmt.Sprint("u", u))
		if l.Fallback {
			t.Fatalf("u%d in %s: fallback", u, l.Variant)
		}
		before[l.UserID] = l
		arms[l.Variant]++
	}
	if arms["online"] == 0 || arms["frozen"] == 0 {
		t.Fatalf("users per arm %v", arms)
	}

	// The learner turns every user round (new vectors, version 2) and a
	// new user appears.
	rng := rand.New(rand.NewPCG(9, 9))
	var recs []*kgo.Record
	for u := range users + 1 {
		v := make([]float32, dim)
		for d := range v {
			v[d] = float32(rng.NormFloat64())
		}
		key := fmt.Sprint("u", u)
		if u == users {
			key = "newcomer"
		}
		b, err := modelrec.AppendVector(nil, &modelrec.Vector{Kind: modelrec.KindUser, ModelVersion: 2, TsMillis: time.Now().UnixMilli(), Vec: v, Updates: 9})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: k.Layout.Name(stream.TopicModelUsers), Key: []byte(key), Value: b})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := k.NewClient(t).ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for metricValue(t, addr, `eddy_scorer_records_applied_total{topic="`+k.Layout.Name(stream.TopicModelUsers)+`"}`) < float64(2*users+1) {
		if time.Now().After(deadline) {
			t.Fatal("new user vectors not applied")
		}
		time.Sleep(50 * time.Millisecond)
	}
	changed := map[string]int{}
	for u := range users {
		user := fmt.Sprint("u", u)
		l := get(user)
		if l.Variant != before[user].Variant {
			t.Fatalf("%s moved from %s to %s", user, before[user].Variant, l.Variant)
		}
		if ids(l) != ids(before[user]) {
			changed[l.Variant]++
		}
	}
	if changed["frozen"] != 0 || changed["online"] < arms["online"]/2 {
		t.Fatalf("lists changed per arm %v of %v: want every frozen list unchanged and most online ones new", changed, arms)
	}
	if l := get("newcomer"); l.Fallback != (l.Variant == "frozen") {
		t.Fatalf("newcomer in %s: fallback %v", l.Variant, l.Fallback)
	}
	t.Logf("users per arm %v, lists changed by the new vectors %v", arms, changed)
}
