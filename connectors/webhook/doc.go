// Package webhook is an alert sink: it posts JSON alerts (drift reports
// that drifted, retrain requests, or anything else the caller marshals) to
// an HTTP endpoint, such as a chat integration or an incident tool, with a
// per-request timeout, retries with exponential backoff and jitter on
// network errors, 429 and 5xx, and a bounded queue so that a slow or dead
// endpoint never blocks or grows the drift role: when the queue is full,
// new alerts are dropped and counted.
//
// It owns delivery only. What is an alert, and when to send one, is the
// caller's (the drift role sends a report's JSON when Report.Drifted, and
// every RetrainRequest). Prometheus Alertmanager, configured with the
// rules in deploy/prometheus, is the other, independent route.
package webhook
