package ingest

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// Config holds the ingest settings users set.
type Config struct {
	// MaxBodyBytes caps one request body; larger bodies get 413.
	MaxBodyBytes int64
	// MaxInflightBytes caps the body bytes of all requests being decoded or
	// produced at once; a request past the cap gets 503.
	MaxInflightBytes int64
	// MaxEventsPerRequest caps the events of one batch.
	MaxEventsPerRequest int
	// ProduceTimeout is how long a request waits for Kafka's
	// acknowledgement before answering 503.
	ProduceTimeout time.Duration
	// RetryAfter is the Retry-After sent with 503.
	RetryAfter time.Duration
	// Strict rejects unknown fields in events.
	Strict bool
	// AuthTokenFile holds the bearer token; empty disables auth.
	AuthTokenFile string
	// AuthToken is loaded from AuthTokenFile by Validate.
	AuthToken string
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		MaxBodyBytes:        1 << 20,
		MaxInflightBytes:    64 << 20,
		MaxEventsPerRequest: 20000,
		ProduceTimeout:      5 * time.Second,
		RetryAfter:          time.Second,
	}
}

// RegisterFlags binds the settings to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", c.MaxBodyBytes, "largest accepted request body in bytes (413 above)")
	fs.Int64Var(&c.MaxInflightBytes, "max-inflight-bytes", c.MaxInflightBytes, "cap on the body bytes of all requests in flight (503 above)")
	fs.IntVar(&c.MaxEventsPerRequest, "max-events-per-request", c.MaxEventsPerRequest, "largest accepted batch, in events")
	fs.DurationVar(&c.ProduceTimeout, "produce-timeout", c.ProduceTimeout, "how long to wait for Kafka to acknowledge a batch before answering 503")
	fs.DurationVar(&c.RetryAfter, "retry-after", c.RetryAfter, "Retry-After sent with 503 answers")
	fs.BoolVar(&c.Strict, "strict", c.Strict, "reject events with unknown fields")
	fs.StringVar(&c.AuthTokenFile, "auth-token-file", c.AuthTokenFile, "file holding the bearer token clients must send (empty: no auth)")
}

// Validate checks the settings and loads the auth token.
func (c *Config) Validate() error {
	if c.MaxBodyBytes <= 0 {
		return errors.New("ingest: --max-body-bytes must be positive")
	}
	if c.MaxInflightBytes < c.MaxBodyBytes {
		return fmt.Errorf("ingest: --max-inflight-bytes (%d) must be at least --max-body-bytes (%d)", c.MaxInflightBytes, c.MaxBodyBytes)
	}
	if c.MaxEventsPerRequest <= 0 {
		return errors.New("ingest: --max-events-per-request must be positive")
	}
	if c.ProduceTimeout <= 0 {
		return errors.New("ingest: --produce-timeout must be positive")
	}
	if c.RetryAfter < time.Second {
		c.RetryAfter = time.Second
	}
	if c.AuthTokenFile != "" && c.AuthToken == "" {
		b, err := os.ReadFile(c.AuthTokenFile)
		if err != nil {
			return fmt.Errorf("ingest: read --auth-token-file: %w", err)
		}
		c.AuthToken = strings.TrimSpace(string(b))
		if c.AuthToken == "" {
			return fmt.Errorf("ingest: --auth-token-file %q is empty", c.AuthTokenFile)
		}
	}
	return nil
}
