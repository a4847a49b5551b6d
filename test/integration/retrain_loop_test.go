package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/retrain"
	"github.com/eddyrec/eddy/stream"
)

// The taste-shift stream of the loop test: loopUsers users, each user's
// tastes resampled at loopShiftAt; events [0, loopTrainTo) are produced
// before the drift role asks for a run, [loopTrainTo, loopOnlineTo) after
// (online learning goes on), and the positives of [loopOnlineTo,
// loopCount) judge the served lists.
const (
	loopUsers, loopItems = 300, 300
	loopCount            = 150_000
	loopShiftAt          = 60_000
	loopTrainTo          = 96_000
	loopOnlineTo         = 108_000
	// Impressions follow popularity less than the generator's default
	// (Zipf 0.8, 30 % explored) and clicks follow taste more (affinity
	// weight 3): a taste shift then changes what users click, which is
	// the shift a retrain has to catch up with.
	loopSpec = "zipf-s=0.8,explore=0.3,affinity-weight=3"
)

// loopPositives returns each user's positive items among events [from, to).
func loopPositives(t *testing.T, ls []string, from, to int) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	for _, l := range ls[from:to] {
		e, err := event.Decode([]byte(l), event.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		switch e.Type {
		case event.Click, event.Watch, event.Like, event.Purchase:
		default:
			continue
		}
		if out[e.UserID] == nil {
			out[e.UserID] = map[string]bool{}
		}
		out[e.UserID][e.ItemID] = true
	}
	return out
}

// versionsOf reads the committed version records.
func versionsOf(t *testing.T, k *testkafka.Kafka) []*retrain.Version {
	t.Helper()
	var out []*retrain.Version
	for _, r := range k.ReadAll(t, k.Layout.Name(stream.TopicModelVersions)) {
		v, err := retrain.DecodeVersion(r.Value)
		if err != nil {
			t.Fatalf("version record %s: %v", r.Key, err)
		}
		out = append(out, v)
	}
	return out
}

// waitVersion waits for version n's record.
func waitVersion(t *testing.T, k *testkafka.Kafka, p *proc, n uint64, timeout time.Duration) *retrain.Version {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, v := range versionsOf(t, k) {
			if v.Version == n {
				return v
			}
		}
		select {
		case <-p.done:
			t.Fatalf("eddy up exited before version %d: %v", n, p.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no version %d after %v", n, timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitServed waits until every judged user is served from version v.
func waitServed(t *testing.T, addr string, later map[string]map[string]bool, v uint64) float64 {
	t.Helper()
	want := strconv.FormatUint(v, 10)
	deadline := time.Now().Add(60 * time.Second)
	for {
		hr, versions := servedHitRate(t, addr, later)
		if versions[want] == len(later) {
			return hr
		}
		if time.Now().After(deadline) {
			t.Fatalf("model versions served, want all %s: %v", want, versions)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// startUpLoop runs eddy up on k with every role, the drift role reading
// the lists of the recs topic, groups unique to the run (the real broker
// is shared), and the retrain role judging on the newest 4 minutes of an
// 11-minute window — or without the retrain role.
func startUpLoop(t *testing.T, k *testkafka.Kafka, dataDir, cfgPath string, withRetrain bool) (*proc, string) {
	t.Helper()
	addr := freeAddr(t)
	g := strings.TrimSuffix(k.Layout.Prefix, ".")
	args := []string{"up", "--brokers", strings.Join(k.Brokers, ","), "--topic-prefix", k.Layout.Prefix,
		"--data-dir", dataDir, "--http-addr", addr, "--partitions", "2",
		"--drift-config", cfgPath, "--drift-sample", "1", "--drift-group", g + "-drift", "--drift-recs-from", "forward",
		"--features-user-group", g + "-features-users", "--features-item-group", g + "-features-items",
		"--learner-users-group", g + "-learner-users", "--learner-items-group", g + "-learner-items",
		"--learner-ranker-group", g + "-ranker", "--archive-group", g + "-archive", "--archive-flush-age", "500ms",
		"--retrain-window", "11m", "--retrain-holdout", "4m"}
	if !withRetrain {
		args = append(args, "--no-retrain")
	}
	// The ranker is left out: the stream's lists carry placeholder
	// features, and its reordering would add noise to the two retrieval
	// models compared. dim 32 for both, as the online learner's smallest.
	args = append(args, "--learner-stages", "users,items", "--learner-dim", "32", "--retrain-dim", "32")
	p := startEddy(t, nil, args...)
	waitReady(t, p, "http://"+addr+"/readyz", 90*time.Second)
	return p, addr
}

// TestRetrainLoopAfterTasteShift is the loop the product promises, run
// twice on the same seeded stream: users' tastes change at event 60,000;
// the drift role sees it and writes a retrain request; the retrain role
// trains iALS on the archive, the gate promotes it, every scorer serves
// the new version, and online learning goes on from it. The lists served
// then must hold users' later positives more often than the lists of the
// same system without the retrain role (online learning alone). Then
// eddy model rollback restores version 2's vectors as version 3.
func TestRetrainLoopAfterTasteShift(t *testing.T) {
	if testing.Short() {
		t.Skip("runs eddy up twice on a 150,000-event stream")
	}
	// Not in make test (issue 13 is open). Two defects of the test, not
	// of the product: (1) its drift request is an artefact — produceStream
	// writes a chunk's events before its lists, so the join counts
	// engagement without a list (unrecommended_engagement) around the
	// shift; a taste resampled from the same prior moves no marginal
	// signal, and only the lists of a scorer that users answer (a
	// closed-loop simulator driving GET /v1/recommendations with the
	// generator's ClickProbability) would show it in ctr and
	// clicked_score. (2) The gate's outcome depends on the online
	// model's run-to-run spread: champion HR@10 0.26–0.37 on 87 held-out
	// users against the challenger's 0.33. Where the gate promoted, the
	// loop served 1.21–1.23× the online model's hit rate (kfake, two runs).
	if os.Getenv("EDDY_TEST_RETRAIN_LOOP") != "1" {
		t.Skip("set EDDY_TEST_RETRAIN_LOOP=1: the loop's gate is not yet stable on this stream")
	}
	cfgPath := filepath.Join(t.TempDir(), "drift.yaml")
	if err := os.WriteFile(cfgPath, []byte(driftTestConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := runEddy(t, 120*time.Second, "gen", "--seed", "11", "--users", strconv.Itoa(loopUsers), "--items", strconv.Itoa(loopItems),
		"--count", strconv.Itoa(loopCount), "--drift-at", strconv.Itoa(loopShiftAt), "--drift-kind", "taste", "--spec", loopSpec)
	ls := lines(out)
	if len(ls) != loopCount {
		t.Fatalf("eddy gen wrote %d events, want %d", len(ls), loopCount)
	}
	lists := servedLists(t, ls)
	later := loopPositives(t, ls, loopOnlineTo, loopCount)

	type result struct {
		hr      float64
		version uint64
	}
	run := func(withRetrain bool) result {
		k := testkafka.Start(t, 2)
		dir := t.TempDir()
		p, addr := startUpLoop(t, k, dir, cfgPath, withRetrain)
		defer func() {
			if err := p.stop(t, syscall.SIGTERM, 60*time.Second); err != nil {
				t.Errorf("eddy up exit: %v", err)
			}
		}()
		produceStream(t, k, ls, lists, 0, loopTrainTo)
		// The drift role asks for a run once the shift shows in two windows.
		deadline := time.Now().Add(120 * time.Second)
		for len(retrainRequests(t, k)) == 0 {
			if time.Now().After(deadline) {
				for _, r := range driftReports(t, k) {
					var b strings.Builder
					for _, s := range r.Signals {
						fmt.Fprintf(&b, " %s=%.3f/%.3f", s.Name, s.Score, s.Threshold)
					}
					t.Logf("report %s:%s", r.WindowEnd.Format("15:04"), b.String())
				}
				t.Fatalf("no retrain request %v after the stream", 120*time.Second)
			}
			time.Sleep(250 * time.Millisecond)
		}
		rq := retrainRequests(t, k)[0]
		res := result{version: 1}
		if withRetrain {
			v := waitVersion(t, k, p, 2, 180*time.Second)
			if v.Decision != retrain.Promoted || v.Trigger != retrain.TriggerDrift || len(v.ReportIDs) == 0 || v.ReportIDs[0] != rq.ReportIDs[0] {
				t.Fatalf("version 2: %s (%s, reports %v; request's %v): %s", v.Decision, v.Trigger, v.ReportIDs, rq.ReportIDs, v.Reason)
			}
			t.Logf("version 2 promoted on drift: challenger HR@10 %.4f vs champion %.4f on %d users (%d events trained)",
				v.Challenger.HR, v.Champion.HR, v.Data.HoldoutUsers, v.Data.TrainEvents)
			waitServed(t, addr, later, 2)
			res.version = 2
		}
		waitSteady(t, addr, `eddy_learner_updates_total{stage="user"}`, 120*time.Second)
		before := metricValue(t, addr, `eddy_learner_updates_total{stage="user"}`)
		// Online learning goes on, from the promoted version.
		produceStream(t, k, ls, lists, loopTrainTo, loopOnlineTo)
		waitSteady(t, addr, `eddy_learner_updates_total{stage="user"}`, 120*time.Second)
		if after := metricValue(t, addr, `eddy_learner_updates_total{stage="user"}`); after <= before {
			t.Fatalf("the user stage learned nothing after the promotion: %v updates, %v before", after, before)
		}
		hr, versions := servedHitRate(t, addr, later)
		if versions[strconv.FormatUint(res.version, 10)] != len(later) {
			t.Fatalf("versions served after online learning went on: %v (want all %d)", versions, res.version)
		}
		res.hr = hr
		if withRetrain {
			// A rollback to version 2 republishes its snapshot as version 3.
			out, _ := runEddy(t, 120*time.Second, "model", "rollback", "--json", "--brokers", strings.Join(k.Brokers, ","),
				"--topic-prefix", k.Layout.Prefix, "2")
			var rb retrain.Version
			if err := json.Unmarshal([]byte(out), &rb); err != nil {
				t.Fatalf("rollback output: %v\n%s", err, out)
			}
			if rb.Decision != retrain.Promoted || rb.Version != 3 || rb.Parent != 2 {
				t.Fatalf("rollback: version %d %s parent %d: %s", rb.Version, rb.Decision, rb.Parent, rb.Reason)
			}
			waitServed(t, addr, later, 3)
		}
		return res
	}
	online := run(false)
	looped := run(true)
	t.Logf("taste shift at event %d of %d (%d users, %d items): HR@10 of served lists on the next %d events' positives (%d users): online learning alone %.4f, with the retrain loop %.4f (%.2fx)",
		loopShiftAt, loopCount, loopUsers, loopItems, loopCount-loopOnlineTo, len(later), online.hr, looped.hr, looped.hr/online.hr)
	if looped.hr < online.hr*1.1 {
		t.Fatalf("served HR@10 with the retrain loop %.4f, online alone %.4f: the loop must recover by more than 10%%", looped.hr, online.hr)
	}
}
