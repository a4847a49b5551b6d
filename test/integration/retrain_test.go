package integration

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eddyrec/eddy/connectors/movielens"
	"github.com/eddyrec/eddy/connectors/movielens/movielenstest"
	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/retrain"
)

// leaveLastOut writes ml-100k without each user's last positive rating
// (ties broken by file order, as the importer sends them) to a new
// directory and returns it with the held-out item per user and each
// user's rated items.
func leaveLastOut(t *testing.T, ml string) (dir string, heldOut map[string]string, rated map[string]map[string]bool, train []movielens.Rating) {
	t.Helper()
	rs, err := movielens.ReadDir(ml)
	if err != nil {
		t.Fatal(err)
	}
	pos := learner.DefaultConfidence().RatingPositiveAt
	last := map[string]int{}
	for i, r := range rs { // rs is in time order
		if float32(r.Value) >= pos {
			last[r.UserID] = i
		}
	}
	heldOut, rated = map[string]string{}, map[string]map[string]bool{}
	var b strings.Builder
	for i, r := range rs {
		if last[r.UserID] == i && float32(r.Value) >= pos {
			heldOut[r.UserID] = r.ItemID
			continue
		}
		train = append(train, r)
		if rated[r.UserID] == nil {
			rated[r.UserID] = map[string]bool{}
		}
		rated[r.UserID][r.ItemID] = true
		fmt.Fprintf(&b, "%s\t%s\t%g\t%d\n", r.UserID, r.ItemID, r.Value, r.Unix)
	}
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "u.data"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, heldOut, rated, train
}

// popularityHR is HR@10 of all-time popularity (positives in train) with
// each user's rated items left out.
func popularityHR(train []movielens.Rating, heldOut map[string]string, rated map[string]map[string]bool) float64 {
	pos := learner.DefaultConfidence().RatingPositiveAt
	count := map[string]int{}
	for _, r := range train {
		if float32(r.Value) >= pos {
			count[r.ItemID]++
		}
	}
	items := make([]string, 0, len(count))
	for id := range count {
		items = append(items, id)
	}
	slices.SortFunc(items, func(a, b string) int {
		if c := cmp.Compare(count[b], count[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	hits := 0
	for u, target := range heldOut {
		n := 0
		for _, id := range items {
			if rated[u][id] {
				continue
			}
			if id == target {
				hits++
				break
			}
			if n++; n == 10 {
				break
			}
		}
	}
	return float64(hits) / float64(len(heldOut))
}

// servedHitRate asks for every user's top 10 (seen items excluded, the
// scorer's default) and returns the share of users whose list holds one of
// their targets, and the model versions the responses named.
func servedHitRate(t *testing.T, addr string, targets map[string]map[string]bool) (float64, map[string]int) {
	t.Helper()
	hits, versions := 0, map[string]int{}
	for u, want := range targets {
		r := getRecs(t, "http://"+addr, u, true)
		versions[r.ModelVersion]++
		for _, it := range r.Items {
			if want[it.ItemID] {
				hits++
				break
			}
		}
	}
	return float64(hits) / float64(len(targets)), versions
}

// servedHR is servedHitRate for one held-out item per user.
func servedHR(t *testing.T, addr string, heldOut map[string]string) (float64, map[string]int) {
	t.Helper()
	targets := make(map[string]map[string]bool, len(heldOut))
	for u, it := range heldOut {
		targets[u] = map[string]bool{it: true}
	}
	return servedHitRate(t, addr, targets)
}

// TestRetrainMovieLensThroughTheAPI is the test a new user runs: eddy up,
// eddy import movielens with each user's last positive held out, eddy
// retrain --now, then the served top 10 of every user. The online model
// alone about ties all-time popularity on this split; the promoted batch
// model must beat it by 1.3×. It also checks the version record, eddy
// model list and show, and that a rollback to the initial online model is
// refused (it has no snapshot) while a rollback to the promoted version
// publishes a new version served at once.
func TestRetrainMovieLensThroughTheAPI(t *testing.T) {
	if os.Getenv(testkafka.EnvBrokers) != "" {
		t.Skip("runs eddy up on its embedded broker")
	}
	if testing.Short() {
		t.Skip("imports ml-100k through eddy up and retrains")
	}
	ml := movielenstest.Dir(t, "ml-100k")
	split, heldOut, rated, train := leaveLastOut(t, ml)
	popHR := popularityHR(train, heldOut, rated)

	// The webhook hears of every version; the drift role's sink runs
	// beside the retrain role's on one registry.
	hook := make(chan retrain.Version, 16)
	hookSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v retrain.Version
		if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		hook <- v
	}))
	defer hookSrv.Close()

	dir := t.TempDir()
	httpAddr, brokerAddr := freeAddr(t), freeAddr(t)
	// ml-100k spans seven months, most of it in the first three: the
	// gate judges on the last four (--retrain-holdout 120d) to have users
	// enough; the default day holds a handful.
	p := startEddy(t, nil, "up", "--data-dir", dir, "--http-addr", httpAddr, "--embedded-broker-addr", brokerAddr,
		"--partitions", "2", "--archive-flush-age", "500ms",
		"--retrain-window", "3650d", "--retrain-holdout", "120d",
		"--retrain-webhook-url", hookSrv.URL+"/eddy", "--drift-webhook-url", hookSrv.URL+"/drift")
	waitReady(t, p, "http://"+httpAddr+"/readyz", 60*time.Second)
	runEddy(t, 180*time.Second, "import", "movielens", "--data-dir", dir, "--to", "http://"+httpAddr, split)
	// The online model has learned everything once the learner's updates
	// stop growing.
	waitSteady(t, httpAddr, `eddy_learner_updates_total{stage="user"}`, 120*time.Second)
	onlineHR, _ := servedHR(t, httpAddr, heldOut)

	out, _ := runEddy(t, 300*time.Second, "retrain", "--now", "--json", "--embedded-broker-addr", brokerAddr)
	var v retrain.Version
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("retrain --now output: %v\n%s", err, out)
	}
	if v.Decision != retrain.Promoted || v.Version != 2 || v.Parent != 1 || v.Trigger != retrain.TriggerManual {
		t.Fatalf("version %d: %s (%s, parent %d): %s", v.Version, v.Decision, v.Trigger, v.Parent, v.Reason)
	}
	if v.Data == nil || v.Data.HoldoutUsers < 50 || v.Challenger == nil || v.Champion == nil || v.Published == nil || v.Snapshot == "" {
		t.Fatalf("version record incomplete: %+v", v)
	}
	if _, err := os.Stat(filepath.Join(dir, "archive", v.Snapshot)); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	// Every response is computed from the promoted version.
	deadline := time.Now().Add(30 * time.Second)
	var retrainedHR float64
	for {
		var versions map[string]int
		retrainedHR, versions = servedHR(t, httpAddr, heldOut)
		if versions["2"] == len(heldOut) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("model versions served after the promotion: %v", versions)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("ml-100k, %d users, last positive held out: HR@10 served by the online model %.4f, after eddy retrain --now %.4f; all-time popularity %.4f (%.2fx); gate: challenger %.4f vs champion %.4f on %d users",
		len(heldOut), onlineHR, retrainedHR, popHR, retrainedHR/popHR, v.Challenger.HR, v.Champion.HR, v.Data.HoldoutUsers)
	if retrainedHR < 1.3*popHR {
		t.Fatalf("served HR@10 after retraining %.4f < 1.3 × popularity's %.4f", retrainedHR, popHR)
	}
	select {
	case hv := <-hook:
		if hv.Version != 2 || hv.Decision != retrain.Promoted || hv.Published == nil {
			t.Fatalf("webhook announced version %d %s", hv.Version, hv.Decision)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the webhook heard of no promotion")
	}
	// The sink counts a delivery once the receiver has answered.
	for deadline := time.Now().Add(10 * time.Second); metricValue(t, httpAddr, `eddy_webhook_sent_total{source="retrain"}`) != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("eddy_webhook_sent_total{source=retrain} = %v", metricValue(t, httpAddr, `eddy_webhook_sent_total{source="retrain"}`))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := metricValue(t, httpAddr, `eddy_retrain_runs_total{result="promoted"}`); got != 1 {
		t.Fatalf("eddy_retrain_runs_total{result=promoted} = %v", got)
	}

	// Online learning goes on from version 2: a user's new clicks
	// change their list, still served as version 2. The stages adopt a
	// promotion in their next batch, so these events are the first they
	// learn on it.
	var user string
	for u := range heldOut {
		user = u
		break
	}
	listOf := func() ([]string, string) {
		r := getRecs(t, "http://"+httpAddr, user, true)
		return r.ids(), r.ModelVersion
	}
	before, _ := listOf()
	var clicks strings.Builder
	// Clicks on items outside the list that the user never rated.
	n := 0
	for other, items := range rated {
		for it := range items {
			if n < 5 && other != user && !rated[user][it] && !slices.Contains(before, it) {
				fmt.Fprintf(&clicks, `{"event_id":"after-v2-%d","user_id":%q,"item_id":%q,"type":"click","ts":%d}`+"\n",
					n, user, it, time.Now().UnixMilli())
				n++
			}
		}
	}
	if code, body, err := post("http://"+httpAddr, clicks.String()); err != nil || code != 202 {
		t.Fatalf("post: %d %s %v", code, body, err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		after, version := listOf()
		if version != "2" {
			t.Fatalf("served as version %s after online updates, want 2", version)
		}
		if !slices.Equal(after, before) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's list did not change after 5 clicks: online learning stopped after the promotion", user)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, stage := range []string{"user", "item"} {
		if got := metricValue(t, httpAddr, `eddy_learner_adoptions_total{stage="`+stage+`"}`); got < 1 {
			t.Fatalf("the %s stage adopted version 2 on %v partitions", stage, got)
		}
	}

	list, _ := runEddy(t, 30*time.Second, "model", "list", "--embedded-broker-addr", brokerAddr)
	if !strings.Contains(list, "promoted") || !strings.Contains(list, "*") {
		t.Fatalf("eddy model list:\n%s", list)
	}
	show, _ := runEddy(t, 30*time.Second, "model", "show", "--embedded-broker-addr", brokerAddr, "2")
	if !strings.Contains(show, "version 2: promoted") || !strings.Contains(show, "challenger:") {
		t.Fatalf("eddy model show 2:\n%s", show)
	}
	// A rollback to the online model has nothing to restore: failed,
	// exit 1, and nothing changes.
	if _, err := runEddyErr(t, 60*time.Second, "model", "rollback", "--embedded-broker-addr", brokerAddr, "1"); err == nil {
		t.Fatal("rollback to version 1 succeeded")
	}
	// A rollback to version 2 publishes its snapshot as version 4 (3 is
	// the failed rollback), parent 2, served everywhere.
	out, _ = runEddy(t, 120*time.Second, "model", "rollback", "--json", "--embedded-broker-addr", brokerAddr, "2")
	var rb retrain.Version
	if err := json.Unmarshal([]byte(out), &rb); err != nil {
		t.Fatalf("rollback output: %v\n%s", err, out)
	}
	if rb.Decision != retrain.Promoted || rb.Version != 4 || rb.Parent != 2 || rb.Trigger != retrain.TriggerRollback {
		t.Fatalf("rollback: version %d %s parent %d trigger %s: %s", rb.Version, rb.Decision, rb.Parent, rb.Trigger, rb.Reason)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		hr, versions := servedHR(t, httpAddr, heldOut)
		if versions["4"] == len(heldOut) {
			if hr != retrainedHR {
				t.Fatalf("the rollback to version 2's vectors serves HR@10 %.4f, version 2 served %.4f", hr, retrainedHR)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("model versions served after the rollback: %v", versions)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := p.stop(t, syscall.SIGTERM, 60*time.Second); err != nil {
		t.Fatalf("clean stop: %v", err)
	}
}

// waitSteady waits until series has stopped changing for two seconds.
func waitSteady(t *testing.T, httpAddr, series string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last, since := -1.0, time.Now()
	for time.Now().Before(deadline) {
		v := metricValue(t, httpAddr, series)
		if v != last {
			last, since = v, time.Now()
		} else if v > 0 && time.Since(since) >= 2*time.Second {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s still changing after %v (%v)", series, timeout, last)
}
