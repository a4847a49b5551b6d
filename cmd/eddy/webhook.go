package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrec/eddy/connectors/webhook"
)

// roleWebhook is a role's webhook sink (--drift-webhook-url,
// --retrain-webhook-url). Its metrics carry source=<role>, because eddy up
// may run two sinks on one registry. What it cannot queue is logged, not
// returned: an alert never stops a role.
type roleWebhook struct {
	sink *webhook.Sink
	log  *slog.Logger
}

// startWebhook starts role's sink for url; with url empty it returns nil,
// whose close does nothing.
func startWebhook(url, role string, reg prometheus.Registerer, log *slog.Logger) (*roleWebhook, error) {
	if url == "" {
		return nil, nil
	}
	if reg != nil {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"source": role}, reg)
	}
	s, err := webhook.New(webhook.DefaultConfig(url), reg, log.With("sink", "webhook"))
	if err != nil {
		return nil, fmt.Errorf("%s: webhook: %w", role, err)
	}
	return &roleWebhook{sink: s, log: log}, nil
}

// send queues body; what names it in the log line when it cannot be.
func (w *roleWebhook) send(what string, body []byte, attrs ...any) {
	if err := w.sink.Send(body); err != nil {
		w.log.Warn(what+" not queued for the webhook", append(attrs, "err", err)...)
	}
}

// close delivers what is queued, for up to 5 s.
func (w *roleWebhook) close() {
	if w == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = w.sink.Close(ctx)
}
