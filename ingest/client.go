package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/eddyrec/eddy/event"
)

// Client posts event batches to an ingest server. It is what `eddy gen --to
// http://...` and the benchmarks use, and a reference for applications.
type Client struct {
	// URL is the server's base URL, e.g. "http://127.0.0.1:8080".
	URL string
	// Token is sent as a bearer token when non-empty.
	Token string
	// HTTP is the client to use; nil means a client with a 30 s timeout.
	HTTP *http.Client
	// MaxRetries bounds retries of 503 answers and connection errors; each
	// waits for the server's Retry-After (or 1 s).
	MaxRetries int

	body []byte // reused NDJSON buffer
}

// StatusError is a non-retryable answer from the server.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("ingest: server answered %d: %s", e.Code, strings.TrimSpace(e.Body))
}

// Post sends events as one NDJSON batch and returns the server's answer. A
// 400 whose body is a Response (every event rejected) is returned with a
// *StatusError. Not safe for concurrent use (it reuses its buffer).
func (c *Client) Post(ctx context.Context, events []event.Event) (Response, error) {
	b := c.body[:0]
	for i := range events {
		b = events[i].AppendJSON(b)
		b = append(b, '\n')
	}
	c.body = b
	return c.PostBody(ctx, "application/x-ndjson", b)
}

// PostBody sends a raw body with the given content type.
func (c *Client) PostBody(ctx context.Context, contentType string, body []byte) (Response, error) {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	var last error
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.URL, "/")+"/v1/events", bytes.NewReader(body))
		if err != nil {
			return Response{}, fmt.Errorf("ingest: build request: %w", err)
		}
		req.Header.Set("Content-Type", contentType)
		if c.Token != "" {
			req.Header.Set("Authorization", "Bearer "+c.Token)
		}
		wait := time.Second
		resp, err := hc.Do(req)
		if err == nil {
			data, rerr := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
			resp.Body.Close()
			switch {
			case rerr != nil:
				last = fmt.Errorf("ingest: read answer: %w", rerr)
			case resp.StatusCode == http.StatusAccepted:
				var out Response
				if err := json.Unmarshal(data, &out); err != nil {
					return Response{}, fmt.Errorf("ingest: decode answer: %w", err)
				}
				return out, nil
			case resp.StatusCode == http.StatusServiceUnavailable:
				last = &StatusError{Code: resp.StatusCode, Body: string(data)}
				if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
					wait = time.Duration(s) * time.Second
				}
			default:
				var out Response
				_ = json.Unmarshal(data, &out)
				return out, &StatusError{Code: resp.StatusCode, Body: string(data)}
			}
		} else {
			if ctx.Err() != nil {
				return Response{}, ctx.Err()
			}
			last = err
		}
		if attempt >= c.MaxRetries {
			return Response{}, last
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return Response{}, errors.Join(ctx.Err(), last)
		case <-t.C:
		}
	}
}
