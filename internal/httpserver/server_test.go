package httpserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func startServer(t *testing.T) (*Server, string, context.CancelFunc, chan error) {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "eddy_test_total", Help: "test"}))
	s := New("127.0.0.1:0", reg, slog.New(slog.DiscardHandler))
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, 5*time.Second) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, "http://" + s.Addr(), cancel, done
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	s, url, _, _ := startServer(t)
	if code, body := get(t, url+"/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	if code, body := get(t, url+"/metrics"); code != 200 || !strings.Contains(body, "eddy_test_total") {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	if code, _ := get(t, url+"/readyz"); code != 200 {
		t.Fatalf("/readyz with no checks: %d", code)
	}
	var broken atomic.Bool
	s.AddReadiness("kafka", func(context.Context) error {
		if broken.Load() {
			return errors.New("broker unreachable")
		}
		return nil
	})
	s.AddReadiness("state", func(context.Context) error { return nil })
	if code, _ := get(t, url+"/readyz"); code != 200 {
		t.Fatalf("/readyz with passing checks: %d", code)
	}
	broken.Store(true)
	code, body := get(t, url+"/readyz")
	if code != 503 {
		t.Fatalf("/readyz with a failing check: %d", code)
	}
	var out struct {
		Ready  bool `json:"ready"`
		Checks map[string]struct {
			Ready  bool   `json:"ready"`
			Detail string `json:"detail"`
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	if out.Ready || out.Checks["kafka"].Ready || out.Checks["kafka"].Detail != "broker unreachable" || !out.Checks["state"].Ready {
		t.Fatalf("/readyz body: %s", body)
	}
}

// TestShutdownDrainsInFlight: a request that is being served when the
// context ends is answered before Serve returns.
func TestShutdownDrainsInFlight(t *testing.T) {
	s, url, cancel, done := startServer(t)
	entered := make(chan struct{})
	s.Mux.HandleFunc("GET /slow", func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		time.Sleep(300 * time.Millisecond)
		_, _ = w.Write([]byte("finished"))
	})
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get(url + "/slow")
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-entered
	cancel()
	if body := <-got; body != "finished" {
		t.Fatalf("in-flight request got %q", body)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	done <- nil // for the cleanup
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Fatal("server still answers after shutdown")
	}
}

func TestListenError(t *testing.T) {
	s := New("256.0.0.1:0", prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err := s.Listen(); err == nil {
		t.Fatal("Listen on an invalid address succeeded")
	}
}
