package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddyrec/eddy/internal/httpserver"
	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/stream/task"
)

func TestLearnFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prefix  string
		args    []string
		wantErr bool
		check   func(t *testing.T, s learnSettings)
	}{
		{name: "defaults", check: func(t *testing.T, s learnSettings) {
			if !s.Users || !s.Items || s.Stage.MF.Dim != 64 || s.UsersGroup != "eddy-learner-users" || s.ItemsGroup != "eddy-learner-items" {
				t.Fatalf("defaults: %+v", s)
			}
			if s.Runtime.OnBrokerWiped != task.WipeFail || s.Stage.ModelVersion != 1 {
				t.Fatal("defaults: wiped-broker policy or model version")
			}
			if !s.Ranker || s.RankerGroup != "eddy-ranker" || s.RankerConfig.LabelWindow != 30*time.Minute || s.RankerConfig.ModelVersion != 1 {
				t.Fatalf("ranker defaults: %+v", s.RankerConfig)
			}
		}},
		{name: "ranker only", args: []string{"--stages", "ranker", "--label-window", "5m", "--ranker-publish-every", "10", "--ranker-alpha", "0.2", "--model-version", "3"},
			check: func(t *testing.T, s learnSettings) {
				rc := s.RankerConfig
				if s.Users || s.Items || !s.Ranker || rc.LabelWindow != 5*time.Minute || rc.PublishEvery != 10 || rc.FTRL.Alpha != 0.2 || rc.ModelVersion != 3 {
					t.Fatalf("ranker settings: %+v", s)
				}
			}},
		{name: "bad label window", args: []string{"--label-window", "0s"}, wantErr: true},
		{name: "one stage and settings", args: []string{"--stages", "items", "--dim", "32", "--model-version", "7", "--reset-on-wiped-broker", "--instance-id", "a"},
			check: func(t *testing.T, s learnSettings) {
				if s.Users || !s.Items || s.Ranker || s.Stage.MF.Dim != 32 || s.Stage.ModelVersion != 7 || s.Runtime.OnBrokerWiped != task.WipeReset || s.Runtime.InstanceID != "a" {
					t.Fatalf("settings: %+v", s)
				}
			}},
		{name: "prefixed for eddy up", prefix: "learner-", args: []string{"--learner-dim", "48", "--learner-users-group", "g"},
			check: func(t *testing.T, s learnSettings) {
				if s.Stage.MF.Dim != 48 || s.UsersGroup != "g" {
					t.Fatalf("prefixed: %+v", s)
				}
			}},
		{name: "unknown stage", args: []string{"--stages", "users,rankers"}, wantErr: true},
		{name: "dim out of range", args: []string{"--dim", "16"}, wantErr: true},
		{name: "bad batch", args: []string{"--max-batch-records", "0"}, wantErr: true},
		{name: "bad seen items", args: []string{"--seen-items", "5000"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			var f learnFlags
			f.register(fs, tc.prefix)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			s, err := f.config()
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				if _, ok := err.(usageError); !ok {
					t.Fatalf("error %v is not a usage error", err)
				}
				return
			}
			tc.check(t, s)
		})
	}
}

// TestStartLearner starts the role against a broker and waits for /readyz.
func TestStartLearner(t *testing.T) {
	k := testkafka.Start(t, 2)
	kf := newKafkaFlags()
	kf.client = k.Client()
	kf.partitions = 2
	kf.dataDir = t.TempDir()
	if err := kf.validate(); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var f learnFlags
	f.register(fs, "")
	if err := fs.Parse([]string{"--session-timeout", "10s", "--users-group", k.Layout.Prefix + "u", "--items-group", k.Layout.Prefix + "i", "--ranker-group", k.Layout.Prefix + "r"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := newRegistry()
	srv := httpserver.New("127.0.0.1:0", reg, log)
	closeLearner, err := startLearner(context.Background(), kf, cfg, srv, reg, log)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		w := httptest.NewRecorder()
		srv.Mux.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
		if w.Code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %s", w.Code, w.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	done := make(chan struct{})
	go func() { closeLearner(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("closer did not return")
	}
}

// fakeService fails its first Run with err, then runs until canceled.
type fakeService struct {
	err  error
	runs *atomic.Int32
}

func (f fakeService) Run(ctx context.Context) error {
	if f.runs.Add(1) == 1 {
		return f.err
	}
	<-ctx.Done()
	return nil
}

func (f fakeService) Ready(context.Context) error { return nil }

// TestSupervisedServiceRestarts: a learner service that fails (a commit
// that failed while the broker was away) is replaced and runs again, with
// /readyz saying why meanwhile; one that found a wiped broker is not.
func TestSupervisedServiceRestarts(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name    string
		err     error
		restart bool
	}{
		{"transient", errors.New("item stage: commit transaction: unable to dial"), true},
		{"wiped broker", fmt.Errorf("user stage: %w", task.ErrBrokerWiped), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var runs, made atomic.Int32
			sup, err := newSupervisedService("learner", log, func() (service, error) {
				made.Add(1)
				return fakeService{err: tc.err, runs: &runs}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- sup.run(ctx) }()
			if !tc.restart {
				err := <-done
				cancel()
				if !errors.Is(err, task.ErrBrokerWiped) || sup.ready(ctx) == nil || made.Load() != 1 {
					t.Fatalf("run = %v, ready = %v, %d services made; want the wiped error, unready, 1", err, sup.ready(ctx), made.Load())
				}
				return
			}
			if err := sup.ready(ctx); err == nil {
				// The failure may not have happened yet: wait for it.
				deadline := time.Now().Add(time.Second)
				for sup.ready(ctx) == nil && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
			}
			if err := sup.ready(ctx); err == nil || !strings.Contains(err.Error(), "restarting") {
				t.Fatalf("ready during the pause = %v, want the failure", err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for sup.ready(ctx) != nil || made.Load() != 2 {
				if time.Now().After(deadline) {
					t.Fatalf("not restarted: ready %v, %d services made", sup.ready(ctx), made.Load())
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("run after cancel = %v", err)
			}
		})
	}
}
