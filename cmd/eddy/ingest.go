package main

import (
	"context"
	"flag"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/eddyrec/eddy/ingest"
	"github.com/eddyrec/eddy/internal/httpserver"
)

func newIngestCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy ingest", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	kf := newKafkaFlags()
	kf.register(fs)
	cfg := ingest.DefaultConfig()
	cfg.RegisterFlags(fs)
	httpAddr := fs.String("http-addr", ":8080", "HTTP listen address")
	drain := fs.Duration("shutdown-timeout", 30*time.Second, "how long SIGTERM waits for in-flight requests")
	return &ffcli.Command{
		Name:       "ingest",
		ShortUsage: "eddy ingest [flags]",
		ShortHelp:  "run the HTTP ingest API (POST /v1/events → Kafka)",
		LongHelp: `Serves POST /v1/events: validates events (a JSON object, a JSON array or
NDJSON) and produces the valid ones to <prefix>events keyed by user_id with an
idempotent producer and acks=all; the 202 is sent only after Kafka
acknowledged them. Invalid events of a batch go to <prefix>events.dlq with the
reason and are listed in the response. When Kafka cannot take the write
within --produce-timeout the answer is 503 with Retry-After.

Without --brokers it uses the broker on --embedded-broker-addr, or starts the
embedded broker in this process.`,
		FlagSet:   fs,
		Options:   ffOptions(),
		UsageFunc: usage,
		Exec: func(ctx context.Context, _ []string) error {
			return serveRoles(ctx, &common, kf, *httpAddr, *drain, cfg.Validate,
				func(_ context.Context, srv *httpserver.Server, reg prometheus.Registerer, log *slog.Logger) (func(), error) {
					return startIngest(kf, cfg, srv, reg, log)
				})
		},
	}
}
