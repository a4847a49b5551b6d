package webhook

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func fastConfig(url string) Config {
	c := DefaultConfig(url)
	c.Backoff, c.MaxBackoff, c.Timeout = time.Millisecond, 5*time.Millisecond, time.Second
	return c
}

func TestDelivery(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int // served in order, then 200
		retries  int
		sent     float64
		failed   float64
		attempts int32
	}{
		{"ok", nil, 5, 1, 0, 1},
		{"retries 5xx then succeeds", []int{503, 500}, 5, 1, 0, 3},
		{"retries 429", []int{429}, 5, 1, 0, 2},
		{"gives up after retries", []int{500, 500, 500, 500}, 2, 0, 1, 3},
		{"4xx is not retried", []int{400}, 5, 0, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			var mu sync.Mutex
			var bodies []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				k := int(n.Add(1)) - 1
				b, _ := io.ReadAll(r.Body)
				if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Authorization") != "Bearer x" {
					t.Errorf("headers %v", r.Header)
				}
				mu.Lock()
				bodies = append(bodies, string(b))
				mu.Unlock()
				if k < len(tc.statuses) {
					w.WriteHeader(tc.statuses[k])
					return
				}
				w.WriteHeader(http.StatusOK)
			}))
			defer srv.Close()
			cfg := fastConfig(srv.URL)
			cfg.Retries = tc.retries
			cfg.Header = http.Header{"Authorization": {"Bearer x"}}
			s, err := New(cfg, prometheus.NewRegistry(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Send([]byte(`{"alert":1}`)); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := counterValue(s.sent); got != tc.sent {
				t.Errorf("sent %v, want %v", got, tc.sent)
			}
			if got := counterValue(s.failed); got != tc.failed {
				t.Errorf("failed %v, want %v", got, tc.failed)
			}
			if got := n.Load(); got != tc.attempts {
				t.Errorf("attempts %d, want %d", got, tc.attempts)
			}
			for _, b := range bodies {
				if b != `{"alert":1}` {
					t.Errorf("body %q", b)
				}
			}
		})
	}
}

// TestQueueBoundAndDrops blocks the endpoint so the queue fills: further
// alerts are dropped and counted, Send never blocks, and Close with an
// expired context abandons the rest.
func TestQueueBoundAndDrops(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	cfg := fastConfig(srv.URL)
	cfg.Queue = 2
	cfg.Timeout = 10 * time.Second
	s, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The first alert is taken by the delivery goroutine; wait for that.
	if err := s.Send([]byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(s.queue) != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	var dropped int
	for range 10 {
		if s.Send([]byte(`{}`)) == ErrDropped {
			dropped++
		}
	}
	if dropped != 8 {
		t.Errorf("dropped %d of 10 with a queue of 2, want 8", dropped)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); err == nil {
		t.Error("Close returned nil while the endpoint hung")
	}
	if s.Send([]byte(`{}`)) != ErrDropped {
		t.Error("Send after Close was accepted")
	}
	// 8 dropped on a full queue, 2 queued ones abandoned at close, 1
	// in-flight abandoned, 1 after close.
	if got := counterValue(s.dropped); got != 12 {
		t.Errorf("dropped counter %v, want 12", got)
	}
}

func TestRetryAfter(t *testing.T) {
	var n atomic.Int32
	var first, second time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			first = time.Now()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		second = time.Now()
	}))
	defer srv.Close()
	cfg := fastConfig(srv.URL)
	cfg.MaxBackoff = 2 * time.Second
	s, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Send([]byte(`{}`))
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if gap := second.Sub(first); gap < 900*time.Millisecond {
		t.Errorf("retried after %v, want ≥ 1s (Retry-After)", gap)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		DefaultConfig("ftp://x"),
		DefaultConfig("not a url"),
		func() Config { c := DefaultConfig("http://x"); c.Queue = 0; return c }(),
		func() Config { c := DefaultConfig("http://x"); c.Timeout = 0; return c }(),
		func() Config { c := DefaultConfig("http://x"); c.MaxBackoff = time.Millisecond; return c }(),
	}
	for _, c := range bad {
		if c.Validate() == nil {
			t.Errorf("%+v validated", c)
		}
	}
	if err := DefaultConfig("https://hooks.example.com/x").Validate(); err != nil {
		t.Error(err)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
