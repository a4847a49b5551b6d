package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/stream"
)

// TestServeSurvivesBrokerStop: `eddy serve` keeps answering from its last
// state while the broker is stopped, says so in /readyz and
// eddy_scorer_kafka_connected, and catches up once the broker is back: a
// user whose events arrive after the restart gets a personal list.
//
// The broker is an `eddy broker` child process (kfake, its log under a data
// dir, so a restart keeps topics, records and offsets): it can be stopped
// and started in both suite modes, without disturbing the shared real broker
// other tests use. ingest, learn and serve are separate processes, as in a
// distributed deployment.
func TestServeSurvivesBrokerStop(t *testing.T) {
	const outage = 15 * time.Second
	brokerDir, brokerAddr := t.TempDir(), freeAddr(t)
	startBroker := func() *proc {
		t.Helper()
		p := startEddy(t, nil, "broker", "--data-dir", brokerDir, "--embedded-broker-addr", brokerAddr,
			"--partitions", "2", "--log-format", "json")
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(p.out.String(), "broker ready") {
			select {
			case <-p.done:
				t.Fatalf("eddy broker exited: %v\n%s", p.err, p.out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("eddy broker not ready within 30 s:\n%s", p.out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		return p
	}
	broker := startBroker()
	k := &testkafka.Kafka{Brokers: []string{brokerAddr},
		Layout: stream.TopicLayout{Prefix: "eddy.", Partitions: 2, ReplicationFactor: 1}}

	_, ingestURL := startIngest(t, k)
	learn := startEddy(t, nil, learnArgs(k, t.TempDir(), "stop", freeAddr(t))...)
	serveAddr := freeAddr(t)
	serveURL := "http://" + serveAddr
	srv := startEddy(t, nil, "serve",
		"--brokers", brokerAddr,
		"--partitions", "2",
		"--http-addr", serveAddr,
		"--log-format", "json")
	waitReady(t, srv, serveURL+"/readyz", 60*time.Second)

	now := time.Now().UnixMilli()
	evs := synthStream(t, "users=300,items=200,seed=7", 12000)
	ndjson := func(evs []event.Event) string {
		var b strings.Builder
		for i := range evs {
			b.Write(evs[i].AppendJSON(nil))
			b.WriteByte('\n')
		}
		return b.String()
	}
	for i := range evs {
		evs[i].Time = time.UnixMilli(now - int64(len(evs)-i))
	}
	clicks := func(user string, ts int64) string {
		var c strings.Builder
		for i := range 3 {
			fmt.Fprintf(&c, `{"event_id":"%s-%d","user_id":%q,"item_id":%q,"type":"click","ts":%d}`+"\n", user, i, user, evs[i].ItemID, ts+int64(i))
		}
		return c.String()
	}
	if code, body, err := post(ingestURL, ndjson(evs[:6000])+clicks("before", now)); err != nil || code != 202 {
		t.Fatalf("post: %d %s %v", code, body, err)
	}
	waitPersonal(t, serveURL, "before", 30*time.Second)
	if v := metricValue(t, serveAddr, "eddy_scorer_kafka_connected"); v != 1 {
		t.Fatalf("eddy_scorer_kafka_connected = %v with the broker up, want 1", v)
	}

	// Stop the broker while the learner is busy with more events, so that
	// it has transactions in flight. The scorer notices (its monitor pings
	// every 2 s), reports it, and keeps serving what it holds.
	if code, body, err := post(ingestURL, ndjson(evs[6000:])); err != nil || code != 202 {
		t.Fatalf("post: %d %s %v", code, body, err)
	}
	stopped := time.Now()
	if err := broker.stop(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatalf("broker did not stop cleanly: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := httpGet(t, serveURL+"/readyz")
		var rz struct {
			Checks map[string]struct {
				Ready  bool   `json:"ready"`
				Detail string `json:"detail"`
			} `json:"checks"`
		}
		_ = json.Unmarshal([]byte(body), &rz)
		if d := rz.Checks["scorer"].Detail; code == 503 && strings.Contains(d, "kafka unreachable") && strings.Contains(d, "serving the last state") {
			t.Logf("/readyz %v after the stop: %s", time.Since(stopped).Round(time.Millisecond), d)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz does not report the lost broker 20 s after the stop: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v := metricValue(t, serveAddr, "eddy_scorer_kafka_connected"); v != 0 {
		t.Fatalf("eddy_scorer_kafka_connected = %v with the broker stopped, want 0", v)
	}
	// The learner may have moved the model on until the stop; from now on
	// the list must not change.
	fb, last := recommend(t, serveURL, "before")
	if fb || len(last) != 10 {
		t.Fatalf("with the broker stopped: fallback=%v %v, want a personal list from the last state", fb, last)
	}
	for range 5 {
		time.Sleep(100 * time.Millisecond)
		if fb, items := recommend(t, serveURL, "before"); fb || strings.Join(items, ",") != strings.Join(last, ",") {
			t.Fatalf("with the broker stopped: fallback=%v %v, want the last state's list %v", fb, items, last)
		}
	}
	// An outage longer than the clients' retries, in which a transaction
	// the learner had open can fail to commit (its stages then restart).
	// The popularity list (cached for a second) is computed again, from
	// the state held.
	time.Sleep(time.Until(stopped.Add(outage)))
	if fb, items := recommend(t, serveURL, "nobody"); !fb || len(items) != 10 {
		t.Fatalf("an unknown user with the broker stopped: fallback=%v %v, want the popularity fallback", fb, items)
	}

	// Start it again: the scorer reconnects and follows the model topics.
	startBroker() // stopped by the test's cleanup, like every child
	deadline = time.Now().Add(30 * time.Second)
	for {
		code, body, err := post(ingestURL, clicks("after", time.Now().UnixMilli()))
		if err == nil && code == 202 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingest did not accept events 30 s after the broker restarted: %d %s %v", code, body, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitPersonal(t, serveURL, "after", 30*time.Second)
	waitReady(t, srv, serveURL+"/readyz", 10*time.Second)
	if v := metricValue(t, serveAddr, "eddy_scorer_kafka_connected"); v != 1 {
		t.Fatalf("eddy_scorer_kafka_connected = %v after the broker returned, want 1", v)
	}
	t.Logf("caught up %v after the broker was stopped; the learner restarted its stages %d times", time.Since(stopped).Round(time.Millisecond),
		strings.Count(learn.out.String(), "restarting its stages"))
}

// httpGet returns the status and body of a GET.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// recsResponse is the part of a GET /v1/recommendations answer the tests
// read.
type recsResponse struct {
	RequestID    string `json:"request_id"`
	ModelVersion string `json:"model_version"`
	Fallback     bool   `json:"fallback"`
	Items        []struct {
		ItemID string `json:"item_id"`
	} `json:"items"`
}

// ids returns the listed item ids in order.
func (r *recsResponse) ids() []string {
	ids := make([]string, len(r.Items))
	for i, it := range r.Items {
		ids[i] = it.ItemID
	}
	return ids
}

// getRecs asks the scorer at base for user's top 10; anything but a 200
// fails the test.
func getRecs(t *testing.T, base, user string, excludeSeen bool) recsResponse {
	t.Helper()
	code, body := httpGet(t, base+"/v1/recommendations?k=10&exclude_seen="+strconv.FormatBool(excludeSeen)+"&user_id="+url.QueryEscape(user))
	var r recsResponse
	if code != 200 || json.Unmarshal([]byte(body), &r) != nil {
		t.Fatalf("recommendations for %s: %d %s", user, code, body)
	}
	return r
}

// recommend asks the scorer at base for user's top 10, seen items excluded;
// anything but a 200 fails the test.
func recommend(t *testing.T, base, user string) (fallback bool, items []string) {
	t.Helper()
	r := getRecs(t, base, user, true)
	return r.Fallback, r.ids()
}

// waitPersonal waits until user gets a full personal (non-fallback) list.
func waitPersonal(t *testing.T, base, user string, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		fb, items := recommend(t, base, user)
		if !fb && len(items) == 10 {
			return items
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still fallback=%v (%d items) after %v", user, fb, len(items), timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
