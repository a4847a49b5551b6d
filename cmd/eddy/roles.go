package main

import (
	"fmt"
	"log/slog"

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
