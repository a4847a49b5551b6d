package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/features"
	"github.com/eddyrec/eddy/internal/httpserver"
	"github.com/eddyrec/eddy/internal/synth"
	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/stream"
	"github.com/eddyrec/eddy/stream/task"
)

func TestProcessFlags(t *testing.T) {
	for _, tc := range []struct {
		name     string
		prefix   string
		args     []string
		instance string
		wipe     task.WipePolicy
		interval time.Duration
		users    string
	}{
		{name: "defaults", wipe: task.WipeFail, interval: time.Second, users: features.DefaultUserGroup},
		{name: "set", args: []string{"--instance-id", "p1", "--reset-on-wiped-broker", "--snapshot-interval", "250ms", "--features-user-group", "g"},
			instance: "p1", wipe: task.WipeReset, interval: 250 * time.Millisecond, users: "g"},
		{name: "prefixed for eddy up", prefix: "process-", args: []string{"--process-instance-id", "p2", "--process-reset-on-wiped-broker"},
			instance: "p2", wipe: task.WipeReset, interval: time.Second, users: features.DefaultUserGroup},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			cfg := features.DefaultConfig()
			cfg.RegisterFlags(fs)
			var pf processFlags
			pf.register(fs, tc.prefix)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			pf.apply(&cfg)
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			if cfg.Task.InstanceID != tc.instance || cfg.Task.OnBrokerWiped != tc.wipe || cfg.SnapshotInterval != tc.interval || cfg.UserGroup != tc.users {
				t.Fatalf("config %+v", cfg)
			}
		})
	}
}

// TestStartProcess mounts the role on a server as `eddy up` does: it turns
// ready, serves an event's features, and its closer returns.
func TestStartProcess(t *testing.T) {
	k := testkafka.Start(t, 2)
	kf := newKafkaFlags()
	kf.client = k.Client()
	kf.partitions = 2
	kf.dataDir = t.TempDir()
	if err := kf.validate(); err != nil {
		t.Fatal(err)
	}
	cfg := features.DefaultConfig()
	cfg.UserGroup, cfg.ItemGroup = k.Layout.Prefix+"fu", k.Layout.Prefix+"fi"
	cfg.Task.SessionTimeout = 10 * time.Second
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := newRegistry()
	srv := httpserver.New("127.0.0.1:0", reg, log)
	closeProcess, err := startProcess(context.Background(), kf, cfg, srv, reg, log)
	if err != nil {
		t.Fatal(err)
	}
	cl := k.NewClient(t)
	ev := `{"event_id":"e1","user_id":"u1","item_id":"i1","type":"click","ts":1700000000000}`
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: k.Layout.Name(stream.TopicEvents), Key: []byte("u1"), Value: []byte(ev)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		w := httptest.NewRecorder()
		srv.Mux.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		return w.Code, w.Body.String()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _ := get("/readyz")
		ucode, ubody := get("/v1/users/u1/features")
		icode, _ := get("/v1/items/i1/features")
		if code == 200 && ucode == 200 && icode == 200 {
			var v features.UserView
			if err := json.Unmarshal([]byte(ubody), &v); err != nil || v.Counts["click"].Total != 1 {
				t.Fatalf("user view %s: %v", ubody, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz %d, user %d %s, item %d", code, ucode, ubody, icode)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := get("/v1/users/nobody/features"); code != 404 {
		t.Fatalf("unknown user: %d", code)
	}
	w := httptest.NewRecorder()
	srv.Mux.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	for _, name := range []string{"eddy_features_events_total", "eddy_stream_records_applied_total", "eddy_features_state_bytes"} {
		if !strings.Contains(w.Body.String(), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	done := make(chan struct{})
	go func() { closeProcess(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("closer did not return")
	}
}

// TestBenchProcessSmall runs the benchmark on a small stream: every event
// goes through both stages and the result is filled in.
func TestBenchProcessSmall(t *testing.T) {
	kf := newKafkaFlags()
	kf.embeddedAddr = "127.0.0.1:0"
	kf.dataDir = t.TempDir()
	kf.partitions = 2
	if err := kf.validate(); err != nil {
		t.Fatal(err)
	}
	cfg := features.DefaultConfig()
	cfg.Task.MaxBatchRecords = 500 // several batches per partition: a batch cycle to measure
	gcfg := synth.DefaultConfig()
	gcfg.Users, gcfg.Items = 200, 100
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	res, err := benchProcess(context.Background(), kf, cfg, gcfg, 5000, "", log)
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 5000 || res.EventsPerSec <= 0 || res.P99BatchMs <= 0 || res.StateBytes <= 0 || res.PeakRSSBytes <= 0 || res.ChangelogRecords <= 0 {
		t.Fatalf("result %+v", res)
	}
}

func TestHistogramQuantile(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Buckets: []float64{1, 2, 4}})
	reg.MustRegister(h)
	for range 50 {
		h.Observe(0.5) // bucket ≤ 1
	}
	for range 50 {
		h.Observe(3) // bucket (2, 4]
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ q, want float64 }{{0.5, 1}, {0.25, 0.5}, {0.75, 3}, {0.99, 3.96}, {1, 4}} {
		if got := histogramQuantile(mfs, "h", tc.q); got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("q%.2f = %g, want %g", tc.q, got, tc.want)
		}
	}
	if got := histogramQuantile(mfs, "missing", 0.5); got != 0 {
		t.Errorf("missing histogram: %g", got)
	}
}
