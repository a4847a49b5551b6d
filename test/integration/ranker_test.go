package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/learner/modelrec"
	"github.com/eddyrec/eddy/stream"
)

type explainedList struct {
	RequestID string `json:"request_id"`
	Fallback  bool   `json:"fallback"`
	Items     []struct {
		ItemID  string `json:"item_id"`
		Explain struct {
			MFScore       float64            `json:"mf_score"`
			Features      map[string]float64 `json:"features"`
			Contributions map[string]float64 `json:"contributions"`
			Intercept     float64            `json:"intercept"`
		} `json:"explain"`
	} `json:"items"`
}

// metricValue reads one sample of the /metrics page at addr (0 if absent).
func metricValue(t *testing.T, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	return 0
}

func latestRanker(t *testing.T, k *testkafka.Kafka) *modelrec.Ranker {
	t.Helper()
	recs := k.ReadAll(t, k.Layout.Name(stream.TopicModelRanker))
	if len(recs) == 0 {
		return nil
	}
	r, err := modelrec.DecodeRanker(recs[len(recs)-1].Value)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRankerLearnServeEndToEnd closes the loop of the online ranker with
// the eddy binary: `eddy serve` serves lists (logged to recs), the users
// click the two best-placed items of each list through `eddy ingest` with
// the list's request_id, `eddy learn`'s ranker stages join and train and
// publish model.ranker, and the scorer ends up re-ranking with that record
// (its explain output shows the record's intercept and weights), whose
// mf_score weight is positive (the clicked items were the MF's best).
func TestRankerLearnServeEndToEnd(t *testing.T) {
	k := testkafka.Start(t, 2)
	_, ingestURL := startIngest(t, k)
	learnAddr := freeAddr(t)
	startEddy(t, nil, append(learnArgs(k, t.TempDir(), "rk", learnAddr),
		"--ranker-group", k.Layout.Prefix+"ranker", "--label-window", "2s",
		"--ranker-publish-every", "50", "--ranker-publish-interval", "300ms",
		"--ranker-alpha", "0.5", "--ranker-l1", "0")...)
	serveAddr := freeAddr(t)
	srv := startEddy(t, nil, "serve",
		"--brokers", strings.Join(k.Brokers, ","),
		"--topic-prefix", k.Layout.Prefix,
		"--partitions", fmt.Sprint(k.Layout.Partitions),
		"--http-addr", serveAddr,
		"--log-format", "json")
	waitReady(t, srv, "http://"+serveAddr+"/readyz", 60*time.Second)

	// Background traffic trains the MF.
	evs := synthStream(t, "users=100,items=200,seed=9", 10_000)
	now := time.Now().UnixMilli()
	var b strings.Builder
	send := func() {
		t.Helper()
		if b.Len() == 0 {
			return
		}
		code, body, err := post(ingestURL, b.String())
		if err != nil || code != 202 {
			t.Fatalf("post: %d %s %v", code, body, err)
		}
		b.Reset()
	}
	for i := range evs {
		evs[i].Time = time.UnixMilli(now - int64(len(evs)-i))
		b.Write(evs[i].AppendJSON(nil))
		b.WriteByte('\n')
		if (i+1)%2000 == 0 {
			send()
		}
	}
	send()
	get := func(user string) explainedList {
		t.Helper()
		code, body := httpGet(t, "http://"+serveAddr+"/v1/recommendations?k=10&explain=true&user_id="+user)
		var l explainedList
		if code != 200 || json.Unmarshal([]byte(body), &l) != nil {
			t.Fatalf("recommendations: %d %s", code, body)
		}
		return l
	}

	deadline := time.Now().Add(120 * time.Second)
	start := time.Now()
	served, clicks := 0, 0
	for round := 0; ; round++ {
		if time.Now().After(deadline) {
			t.Fatalf("after %v (%d lists served, %d clicks): the scorer does not re-rank with the streamed ranker record %+v",
				time.Since(start).Round(time.Second), served, clicks, latestRanker(t, k))
		}
		var last explainedList
		for u := range 20 {
			user := fmt.Sprintf("u%d", (round*20+u)%100)
			l := get(user)
			if l.Fallback || len(l.Items) < 5 {
				continue
			}
			served++
			last = l
			ts := time.Now().UnixMilli()
			for pos := range 2 {
				fmt.Fprintf(&b, `{"event_id":"rk-%d-%d-%d","user_id":%q,"item_id":%q,"type":"click","ts":%d,"request_id":%q}`+"\n",
					round, u, pos, user, l.Items[pos].ItemID, ts, l.RequestID)
				clicks++
			}
		}
		send()
		// Judge the weights once the label window has turned unclicked
		// items into negatives too.
		pos, neg := metricValue(t, learnAddr, `eddy_ranker_trained_examples_total{label="positive"}`), metricValue(t, learnAddr, `eddy_ranker_trained_examples_total{label="negative"}`)
		if neg < 400 || pos < 100 {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if rk := latestRanker(t, k); rk != nil && last.Items != nil && last.Items[0].Explain.Contributions != nil {
			e := last.Items[0].Explain
			w := rk.Weights[0]
			if rk.Features[0] != modelrec.FeatureMFScore {
				t.Fatalf("ranker features %v", rk.Features)
			}
			if e.Intercept == rk.Bias && e.Contributions[modelrec.FeatureMFScore] == w*e.Features[modelrec.FeatureMFScore] {
				t.Logf("after %v, %d lists and %d clicks (%.0f positive and %.0f negative examples trained): the scorer re-ranks with the streamed record (mf_score weight %.3f, bias %.3f, features %v)",
					time.Since(start).Round(time.Millisecond), served, clicks, pos, neg, w, rk.Bias, rk.Features)
				if w <= 0 {
					t.Fatalf("mf_score weight %.3f: clicks went to the MF's best items, want > 0", w)
				}
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}
