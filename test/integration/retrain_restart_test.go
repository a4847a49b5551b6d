package integration

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/retrain"
)

// TestRetrainSurvivesBrokerRestart stops and starts the real Kafka broker
// while `eddy retrain` trains: the run finishes (its publication is
// retried until the broker is back, or the run is run again), eddy
// retrain --now prints one promoted version, and the model topics hold
// that version's vectors once — an interrupted transaction leaves none.
func TestRetrainSurvivesBrokerRestart(t *testing.T) {
	if os.Getenv(testkafka.EnvBrokers) == "" {
		t.Skip("runs only against the real broker of scripts/integration.sh (EDDY_TEST_BROKERS unset)")
	}
	k := testkafka.Start(t, 2)
	brokers := strings.Join(k.Brokers, ",")
	g := strings.TrimSuffix(k.Layout.Prefix, ".")
	runEddy(t, 120*time.Second, "gen", "--to", "kafka", "--brokers", brokers, "--topic-prefix", k.Layout.Prefix, "--partitions", "2",
		"--seed", "3", "--users", "400", "--items", "400", "--count", "60000")
	dir := t.TempDir()
	archAddr, retrAddr := freeAddr(t), freeAddr(t)
	arch := startEddy(t, nil, "archive", "--brokers", brokers, "--topic-prefix", k.Layout.Prefix, "--data-dir", dir,
		"--http-addr", archAddr, "--archive-group", g+"-archive", "--archive-flush-age", "500ms")
	waitReady(t, arch, "http://"+archAddr+"/healthz", 60*time.Second)
	// 1,000 epochs: a run that trains for several seconds, long enough to
	// take the broker away in the middle of it.
	retr := startEddy(t, nil, "retrain", "--brokers", brokers, "--topic-prefix", k.Layout.Prefix, "--data-dir", dir,
		"--http-addr", retrAddr, "--window", "3650d", "--holdout", "5m", "--epochs", "1000", "--dim", "64",
		"--transactional-id", g+"-retrain")
	waitReady(t, retr, "http://"+retrAddr+"/readyz", 60*time.Second)

	now := startEddy(t, nil, "retrain", "--now", "--json", "--timeout", "4m", "--brokers", brokers, "--topic-prefix", k.Layout.Prefix)
	deadline := time.Now().Add(120 * time.Second)
	for metricValue(t, retrAddr, "eddy_retrain_running") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the run did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	stoppedAt := time.Now()
	restartRealBroker(t, 3*time.Second)

	select {
	case <-now.done:
	case <-time.After(5 * time.Minute):
		t.Fatal("eddy retrain --now did not finish")
	}
	if now.err != nil {
		t.Fatalf("eddy retrain --now: %v\n%s", now.err, now.out.String())
	}
	out := now.out.String()
	v, err := retrain.DecodeVersion([]byte(out[strings.Index(out, "{") : strings.LastIndex(out, "}")+1]))
	if err != nil {
		t.Fatalf("eddy retrain --now output: %v\n%s", err, out)
	}
	if v.Decision != retrain.Promoted || v.Version != 2 {
		t.Fatalf("version %d %s: %s", v.Version, v.Decision, v.Reason)
	}
	if !v.Finished.After(stoppedAt) {
		t.Fatalf("the run finished at %v, before the broker stopped at %v: it tested nothing", v.Finished, stoppedAt)
	}
	t.Logf("run started %v, broker stopped %v, decision %v", v.Started.Format(time.StampMilli), stoppedAt.Format(time.StampMilli), v.Finished.Format(time.StampMilli))
	if vs := versionsOf(t, k); len(vs) != 1 {
		t.Fatalf("%d version records, want 1", len(vs))
	}
	for topic, want := range map[string]int{k.Layout.Name("model.users"): v.Published.Users, k.Layout.Name("model.items"): v.Published.Items} {
		n := 0
		for _, r := range k.ReadAll(t, topic) {
			for _, h := range r.Headers {
				if h.Key == retrain.HeaderVersion && string(h.Value) == "2" {
					n++
				}
			}
		}
		if n != want {
			t.Errorf("%s: %d vectors of version 2, the record says %d", topic, n, want)
		}
	}
	for _, p := range []*proc{retr, arch} {
		select {
		case <-p.done:
			t.Fatalf("a role exited after the broker restart: %v", p.err)
		default:
		}
		if err := p.stop(t, syscall.SIGTERM, 60*time.Second); err != nil {
			t.Errorf("clean stop: %v", err)
		}
	}
}
