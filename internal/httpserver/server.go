package httpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ReadinessCheck reports whether a part of the process can do its work; a
// non-nil error says why not and is shown in /readyz.
type ReadinessCheck func(ctx context.Context) error

// Server is an HTTP server with the endpoints every role exposes.
type Server struct {
	Mux *http.ServeMux

	addr     string
	log      *slog.Logger
	gatherer prometheus.Gatherer

	mu     sync.Mutex
	checks map[string]ReadinessCheck
	srv    *http.Server
	ln     net.Listener
}

// New creates a server for addr whose /metrics serves gatherer.
func New(addr string, gatherer prometheus.Gatherer, log *slog.Logger) *Server {
	s := &Server{
		Mux:      http.NewServeMux(),
		addr:     addr,
		log:      log,
		gatherer: gatherer,
		checks:   map[string]ReadinessCheck{},
	}
	s.Mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	s.Mux.HandleFunc("GET /readyz", s.readyz)
	s.Mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	return s
}

// AddReadiness registers a named check; /readyz is ready when all pass.
func (s *Server) AddReadiness(name string, check ReadinessCheck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = check
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	names := make([]string, 0, len(s.checks))
	for n := range s.checks {
		names = append(names, n)
	}
	checks := make(map[string]ReadinessCheck, len(s.checks))
	for n, c := range s.checks {
		checks[n] = c
	}
	s.mu.Unlock()
	sort.Strings(names)

	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	type result struct {
		Ready  bool   `json:"ready"`
		Detail string `json:"detail,omitempty"`
	}
	out := struct {
		Ready  bool              `json:"ready"`
		Checks map[string]result `json:"checks"`
	}{Ready: true, Checks: map[string]result{}}
	for _, n := range names {
		if err := checks[n](ctx); err != nil {
			out.Ready = false
			out.Checks[n] = result{Detail: err.Error()}
		} else {
			out.Checks[n] = result{Ready: true}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if !out.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(out)
}

// Listen binds the address; Addr is valid afterwards. Serve calls it if it
// was not called.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("httpserver: listen on %s: %w", s.addr, err)
	}
	s.ln = ln
	return nil
}

// Addr is the bound address (after Listen).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return s.addr
	}
	return s.ln.Addr().String()
}

// Serve serves until ctx is done, then stops accepting connections and
// waits up to drain for in-flight requests to finish.
func (s *Server) Serve(ctx context.Context, drain time.Duration) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	s.srv = &http.Server{
		Handler:           s.Mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	srv, ln := s.srv, s.ln
	s.mu.Unlock()

	s.log.Info("http server listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("httpserver: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("httpserver: shutdown: %w", err)
	}
	s.log.Info("http server stopped", "addr", ln.Addr().String())
	return nil
}
