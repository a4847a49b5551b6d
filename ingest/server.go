package ingest

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/semaphore"

	"github.com/eddyrec/eddy/event"
)

// Topics names the topics ingest writes to.
type Topics struct {
	Events string
	DLQ    string
}

// Server is the ingest HTTP API.
type Server struct {
	cfg      Config
	client   *kgo.Client
	topics   Topics
	log      *slog.Logger
	inflight *semaphore.Weighted
	m        *metrics
	now      func() time.Time
}

// ProducerOpts are the franz-go options ingest needs from its client:
// acks=all with the idempotent producer (franz-go's default, stated here so
// that nobody turns it off by accident) and a produce buffer bounded like the
// in-flight request bytes.
func ProducerOpts(cfg Config) []kgo.Opt {
	return []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.MaxBufferedBytes(int(2 * cfg.MaxInflightBytes)),
		kgo.ProducerLinger(2 * time.Millisecond),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	}
}

// New creates the server. The client must have been built with ProducerOpts.
func New(cfg Config, client *kgo.Client, topics Topics, reg prometheus.Registerer, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Server{
		cfg:      cfg,
		client:   client,
		topics:   topics,
		log:      log,
		inflight: semaphore.NewWeighted(cfg.MaxInflightBytes),
		m:        m,
		now:      time.Now,
	}, nil
}

// Register mounts the API on mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.Handle("POST /v1/events", http.HandlerFunc(s.postEvents))
}

// Ready reports whether Kafka answers; used by /readyz.
func (s *Server) Ready(ctx context.Context) error {
	if err := s.client.Ping(ctx); err != nil {
		return fmt.Errorf("kafka unreachable: %w", err)
	}
	return nil
}

// Response is the body of a 202 or 400 answer to POST /v1/events.
type Response struct {
	Accepted int              `json:"accepted"`
	Rejected []RejectedReport `json:"rejected"`
}

// RejectedReport names one rejected event of a batch.
type RejectedReport struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

type errorBody struct {
	Error string `json:"error"`
}

func (s *Server) postEvents(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := s.handle(w, r)
	s.m.requests.WithLabelValues(strconv.Itoa(code)).Inc()
	s.m.duration.Observe(time.Since(start).Seconds())
}

// handle serves one request and returns the status code it wrote.
func (s *Server) handle(w http.ResponseWriter, r *http.Request) int {
	if s.cfg.AuthToken != "" && !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="eddy"`)
		return writeJSON(w, http.StatusUnauthorized, errorBody{"missing or wrong bearer token"})
	}
	ct := r.Header.Get("Content-Type")
	mediaType, _, err := mime.ParseMediaType(ct)
	if err != nil || !supportedMediaType(mediaType) {
		return writeJSON(w, http.StatusUnsupportedMediaType, errorBody{fmt.Sprintf(
			"content type %q: want application/json (object or array) or application/x-ndjson", ct)})
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{fmt.Sprintf(
			"body of %d bytes is over the limit of %d bytes", r.ContentLength, s.cfg.MaxBodyBytes)})
	}

	// Reserve the body's bytes before reading it: the reservation bounds the
	// memory of everything in flight (body, decoded events, records).
	reserve := s.cfg.MaxBodyBytes
	if r.ContentLength > 0 {
		reserve = r.ContentLength
	}
	if !s.inflight.TryAcquire(reserve) {
		s.m.overloaded.Inc()
		return s.unavailable(w, "ingest is at its in-flight byte limit; retry later")
	}
	s.m.inflightBytes.Add(float64(reserve))
	defer func() {
		s.inflight.Release(reserve)
		s.m.inflightBytes.Sub(float64(reserve))
	}()

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{fmt.Sprintf(
				"body is over the limit of %d bytes", s.cfg.MaxBodyBytes)})
		}
		return writeJSON(w, http.StatusBadRequest, errorBody{"reading body: " + err.Error()})
	}

	events, rejected, err := event.DecodeBatch(body, mediaType, event.DecodeOptions{
		Strict:    s.cfg.Strict,
		MaxEvents: s.cfg.MaxEventsPerRequest,
		Now:       s.now,
	})
	if err != nil {
		s.m.events.WithLabelValues("rejected").Inc()
		status := http.StatusBadRequest
		if errors.Is(err, event.ErrUnsupportedContentType) {
			status = http.StatusUnsupportedMediaType
		}
		return writeJSON(w, status, errorBody{err.Error()})
	}

	resp := Response{Accepted: len(events), Rejected: make([]RejectedReport, len(rejected))}
	for i, rj := range rejected {
		resp.Rejected[i] = RejectedReport{Index: rj.Index, Error: rj.Err.Error()}
	}
	if err := s.produce(r.Context(), events, rejected); err != nil {
		s.log.Warn("produce failed", "events", len(events), "dead_letters", len(rejected), "err", err)
		return s.unavailable(w, "kafka did not acknowledge the batch in time; retry it (events are de-duplicated by event_id)")
	}
	s.m.events.WithLabelValues("accepted").Add(float64(len(events)))
	s.m.events.WithLabelValues("rejected").Add(float64(len(rejected)))
	if len(events) == 0 {
		return writeJSON(w, http.StatusBadRequest, resp)
	}
	return writeJSON(w, http.StatusAccepted, resp)
}

// produce writes the valid events and the dead letters and waits until Kafka
// acknowledged all of them, or the produce timeout ran out.
func (s *Server) produce(ctx context.Context, events []event.Event, rejected []event.Rejection) error {
	if len(events)+len(rejected) == 0 {
		return nil
	}
	now := s.now()
	records := make([]*kgo.Record, 0, len(events)+len(rejected))
	// One backing array for all values: one allocation per batch instead of
	// one per event.
	buf := make([]byte, 0, 160*len(events))
	for i := range events {
		start := len(buf)
		buf = events[i].AppendJSON(buf)
		records = append(records, &kgo.Record{
			Topic:   s.topics.Events,
			Key:     []byte(events[i].UserID),
			Value:   buf[start:len(buf):len(buf)],
			Headers: eventHeaders,
		})
	}
	for _, rj := range rejected {
		v, err := json.Marshal(rj.DeadLetter(now, "http"))
		if err != nil {
			return fmt.Errorf("ingest: encode dead letter: %w", err)
		}
		records = append(records, &kgo.Record{Topic: s.topics.DLQ, Value: v, Headers: dlqHeaders})
	}
	pctx, cancel := context.WithTimeout(ctx, s.cfg.ProduceTimeout)
	defer cancel()
	start := time.Now()
	err := produceAll(pctx, s.client, records)
	s.m.produce.Observe(time.Since(start).Seconds())
	if len(rejected) > 0 && err == nil {
		s.m.dlq.Add(float64(len(rejected)))
	}
	return err
}

// produceAll hands records to the producer and waits until all are
// acknowledged or ctx ends. It does not use ProduceSync: with the idempotent
// producer a batch already sent to a broker that then vanished is not failed
// by its context (its sequence numbers are taken), so ProduceSync can wait for
// as long as the broker is away. Records left behind stay in the client's
// bounded buffer and are delivered or failed later; a client that retries
// after the 503 may duplicate them, which de-duplication by event_id absorbs.
func produceAll(ctx context.Context, cl *kgo.Client, records []*kgo.Record) error {
	var (
		remaining atomic.Int64
		errOnce   sync.Once
		firstErr  error
		done      = make(chan struct{})
	)
	remaining.Store(int64(len(records)))
	for _, r := range records {
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				errOnce.Do(func() { firstErr = err })
			}
			if remaining.Add(-1) == 0 {
				close(done)
			}
		})
	}
	select {
	case <-done:
		return firstErr
	case <-ctx.Done():
		return fmt.Errorf("ingest: waiting for acknowledgements: %w", ctx.Err())
	}
}

var (
	eventHeaders = []kgo.RecordHeader{{Key: event.SchemaHeader, Value: []byte(event.SchemaHeaderValue)}}
	dlqHeaders   = []kgo.RecordHeader{{Key: event.SchemaHeader, Value: []byte(event.DeadLetterSchemaHeaderValue)}}
)

func (s *Server) authorized(r *http.Request) bool {
	const prefix = "Bearer "
	h := r.Header.Get("Authorization")
	if len(h) < len(prefix) || h[:len(prefix)] != prefix {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(h[len(prefix):]), []byte(s.cfg.AuthToken)) == 1
}

func (s *Server) unavailable(w http.ResponseWriter, msg string) int {
	w.Header().Set("Retry-After", strconv.Itoa(int(s.cfg.RetryAfter/time.Second)))
	return writeJSON(w, http.StatusServiceUnavailable, errorBody{msg})
}

func supportedMediaType(mt string) bool {
	switch mt {
	case "application/json", "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines":
		return true
	}
	return false
}

func writeJSON(w http.ResponseWriter, code int, v any) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
	return code
}

type metrics struct {
	events        *prometheus.CounterVec
	requests      *prometheus.CounterVec
	duration      prometheus.Histogram
	produce       prometheus.Histogram
	inflightBytes prometheus.Gauge
	overloaded    prometheus.Counter
	dlq           prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	latency := []float64{.0005, .001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_ingest_events_total", Help: "Events received over HTTP, by result (accepted, rejected).",
		}, []string{"result"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_ingest_requests_total", Help: "POST /v1/events requests by HTTP status code.",
		}, []string{"code"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "eddy_ingest_request_duration_seconds", Help: "Time to answer POST /v1/events, including the Kafka acknowledgement.", Buckets: latency,
		}),
		produce: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "eddy_ingest_produce_duration_seconds", Help: "Time from handing a batch to the producer to Kafka's acknowledgement.", Buckets: latency,
		}),
		inflightBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eddy_ingest_inflight_bytes", Help: "Body bytes of requests being decoded or produced.",
		}),
		overloaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_ingest_overloaded_total", Help: "Requests answered 503 because the in-flight byte limit was reached.",
		}),
		dlq: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_ingest_dead_letters_total", Help: "Invalid events written to the dead-letter topic.",
		}),
	}
	for _, c := range []prometheus.Collector{m.events, m.requests, m.duration, m.produce, m.inflightBytes, m.overloaded, m.dlq} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("ingest: register metrics: %w", err)
		}
	}
	// Make both results visible at zero from the start.
	m.events.WithLabelValues("accepted")
	m.events.WithLabelValues("rejected")
	return m, nil
}
