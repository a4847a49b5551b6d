package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Sink.
type Config struct {
	// URL receives a POST per alert (http or https).
	URL string
	// Header values added to every request (e.g. Authorization).
	Header http.Header
	// Timeout bounds each attempt (default 5s).
	Timeout time.Duration
	// Retries is how many times a failed attempt is retried (default 5).
	Retries int
	// Backoff is the first retry delay, doubled per retry up to MaxBackoff,
	// with ±50% jitter (defaults 500ms and 30s). A Retry-After header on
	// 429/503 is honoured up to MaxBackoff.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Queue is how many alerts may wait for delivery (default 256).
	Queue int
}

// DefaultConfig returns the defaults for url.
func DefaultConfig(url string) Config {
	return Config{URL: url, Timeout: 5 * time.Second, Retries: 5, Backoff: 500 * time.Millisecond, MaxBackoff: 30 * time.Second, Queue: 256}
}

// Validate names the first field that breaks its rule.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webhook: url %q: want an absolute http(s) URL", c.URL)
	}
	switch {
	case c.Timeout <= 0:
		return fmt.Errorf("webhook: timeout %v: must be > 0", c.Timeout)
	case c.Retries < 0 || c.Retries > 100:
		return fmt.Errorf("webhook: retries %d: must be in [0, 100]", c.Retries)
	case c.Backoff <= 0 || c.MaxBackoff < c.Backoff:
		return fmt.Errorf("webhook: backoff %v / max %v: want 0 < backoff ≤ max", c.Backoff, c.MaxBackoff)
	case c.Queue < 1 || c.Queue > 1<<20:
		return fmt.Errorf("webhook: queue %d: must be in [1, %d]", c.Queue, 1<<20)
	}
	return nil
}

// Sink delivers alerts in order from one goroutine. Send never blocks.
type Sink struct {
	cfg    Config
	client *http.Client
	log    *slog.Logger
	queue  chan []byte
	done   chan struct{}
	stop   context.CancelFunc
	ctx    context.Context

	mu     sync.Mutex // guards closed and sends on queue
	closed bool

	sent, failed, dropped prometheus.Counter
}

// New starts a sink. reg may be nil; log may be nil (discard). Close it to
// stop.
func New(cfg Config, reg prometheus.Registerer, log *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sink{
		cfg: cfg, client: &http.Client{}, log: log,
		queue: make(chan []byte, cfg.Queue), done: make(chan struct{}),
		ctx: ctx, stop: cancel,
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_webhook_sent_total", Help: "Alerts delivered to the webhook (2xx).",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_webhook_failed_total", Help: "Alerts given up after all retries or rejected with a 4xx.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_webhook_dropped_total", Help: "Alerts dropped because the delivery queue was full or the sink closed.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.sent, s.failed, s.dropped} {
			if err := reg.Register(c); err != nil {
				cancel()
				return nil, fmt.Errorf("webhook: register metrics: %w", err)
			}
		}
	}
	go s.run()
	return s, nil
}

// ErrDropped is returned by Send when the queue is full or the sink closed.
var ErrDropped = errors.New("webhook: alert dropped")

// Send queues one alert body (JSON). It does not block; when the queue is
// full the alert is dropped, counted and ErrDropped returned.
func (s *Sink) Send(body []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.dropped.Inc()
		return ErrDropped
	}
	select {
	case s.queue <- body:
		return nil
	default:
		s.dropped.Inc()
		return ErrDropped
	}
}

// Close stops accepting alerts and waits until the queued ones are
// delivered or ctx ends; then pending deliveries are abandoned (their
// alerts counted as dropped).
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.queue)
	}
	s.mu.Unlock()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.stop()
		<-s.done
		return ctx.Err()
	}
}

func (s *Sink) run() {
	defer close(s.done)
	defer s.stop()
	for body := range s.queue {
		if s.ctx.Err() != nil {
			s.dropped.Inc()
			continue
		}
		s.deliver(body)
	}
}

// deliver posts one alert with retries.
func (s *Sink) deliver(body []byte) {
	delay := s.cfg.Backoff
	for attempt := 0; ; attempt++ {
		retry, wait, err := s.post(body)
		if err == nil {
			s.sent.Inc()
			return
		}
		if !retry || attempt >= s.cfg.Retries {
			s.failed.Inc()
			s.log.Warn("webhook: alert not delivered", "attempts", attempt+1, "err", err)
			return
		}
		if wait <= 0 {
			// ±50% jitter keeps many sinks from retrying in lockstep.
			wait = delay/2 + rand.N(delay)
			delay = min(2*delay, s.cfg.MaxBackoff)
		}
		wait = min(wait, s.cfg.MaxBackoff)
		s.log.Debug("webhook: retrying", "attempt", attempt+1, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			s.dropped.Inc()
			return
		}
	}
}

// post makes one attempt. retry says whether a failure may succeed later;
// wait is a server-requested delay (Retry-After), if any.
func (s *Sink) post(body []byte) (retry bool, wait time.Duration, err error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return false, 0, fmt.Errorf("webhook: build request: %w", err)
	}
	for k, vs := range s.cfg.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return true, 0, fmt.Errorf("webhook: post: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, 0, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		if secs, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && secs >= 0 {
			wait = time.Duration(secs) * time.Second
		}
		return true, wait, fmt.Errorf("webhook: status %d", resp.StatusCode)
	}
	return false, 0, fmt.Errorf("webhook: status %d (not retried)", resp.StatusCode)
}
