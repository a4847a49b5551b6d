// Package ingest owns the front door: the HTTP API that takes events
// (POST /v1/events), validates them with the event contract, and produces the
// valid ones to the events topic, keyed by user id, with an idempotent
// producer and acks=all. The invalid ones of a batch go to the dead-letter
// topic with the reason.
//
// Guarantees:
//   - 202 means every accepted event was acknowledged by Kafka (all in-sync
//     replicas). Nothing is acknowledged from a memory buffer.
//   - A failed or timed-out produce answers 503 with Retry-After. Some of the
//     batch may have been written anyway; clients retry the whole batch and
//     downstream de-duplication by event_id makes the retry harmless
//     (at-least-once ingest, exactly-once effect).
//   - Memory is bounded: request bodies are capped (413), and the bytes of
//     all requests in flight are capped (--max-inflight-bytes); past the cap
//     the answer is 503 at once instead of an unbounded queue.
//
// Auth is an optional static bearer token compared in constant time.
package ingest
