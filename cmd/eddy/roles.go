package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/eddyrec/eddy/ingest"
	"github.com/eddyrec/eddy/internal/httpserver"
	"github.com/eddyrec/eddy/stream"
)

// newRegistry is the process's one metrics registry, with Go runtime and
// process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// startIngest mounts the ingest role on srv. The returned closer flushes and
// closes its producer; call it after the HTTP server has drained.
func startIngest(kf *kafkaFlags, cfg ingest.Config, srv *httpserver.Server, reg prometheus.Registerer, log *slog.Logger) (func(), error) {
	cl, err := kf.client.NewClient(ingest.ProducerOpts(cfg)...)
	if err != nil {
		return nil, err
	}
	s, err := ingest.New(cfg, cl, ingest.Topics{
		Events: kf.layout.Name(stream.TopicEvents),
		DLQ:    kf.layout.Name(stream.TopicEventsDLQ),
	}, reg, log.With("role", "ingest"))
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("ingest: %w", err)
	}
	s.Register(srv.Mux)
	srv.AddReadiness("ingest", s.Ready)
	return cl.Close, nil
}

// roleStart mounts one role on the shared HTTP server and starts its
// background work; the returned closer stops it.
type roleStart func(ctx context.Context, srv *httpserver.Server, reg prometheus.Registerer, log *slog.Logger) (func(), error)

// serveRoles is the body of a role command: it sets up logging, checks the
// Kafka settings and validate, makes sure there is a broker and the topics,
// starts the roles on one HTTP server and serves until ctx ends. Shutdown is
// ordered: the server drains its in-flight requests first, then the roles
// stop in reverse order of starting, then the embedded broker, if any.
func serveRoles(ctx context.Context, common *commonFlags, kf *kafkaFlags, httpAddr string, drain time.Duration, validate func() error, roles ...roleStart) error {
	log, err := startKafkaCommand(common, kf)
	if err != nil {
		return err
	}
	if validate != nil {
		if err := validate(); err != nil {
			return usageError{err}
		}
	}
	closeBroker, err := kf.connect(log, true)
	if err != nil {
		return err
	}
	defer closeBroker()
	if _, err := kf.ensureTopics(ctx, log); err != nil {
		return err
	}
	reg := newRegistry()
	srv := httpserver.New(httpAddr, reg, log)
	for _, start := range roles {
		stop, err := start(ctx, srv, reg, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	return srv.Serve(ctx, drain)
}

// backgroundRole runs one role's Run in a goroutine of its own. A Run that
// ends before stop (with an error or without) is the role's failure:
// failed reports it, for the role's readiness, and onFail, if set, hears
// of it (a single-role command stops on it).
type backgroundRole struct {
	mu     sync.Mutex
	err    error
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startBackground(ctx context.Context, name string, run func(context.Context) error, log *slog.Logger, onFail func(error)) *backgroundRole {
	b := &backgroundRole{}
	rctx, cancel := context.WithCancel(ctx)
	b.cancel = cancel
	b.wg.Go(func() {
		err := run(rctx)
		if err == nil && rctx.Err() == nil {
			err = errors.New(name + " role stopped")
		}
		if err != nil && rctx.Err() == nil {
			log.Error(name+" role stopped", "err", err)
			b.mu.Lock()
			b.err = fmt.Errorf("%s role failed: %w", name, err)
			b.mu.Unlock()
			if onFail != nil {
				onFail(err)
			}
		}
	})
	return b
}

// failed is the role's failure, or nil while it runs.
func (b *backgroundRole) failed() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// stop ends the role's Run and waits for it.
func (b *backgroundRole) stop() {
	b.cancel()
	b.wg.Wait()
}
