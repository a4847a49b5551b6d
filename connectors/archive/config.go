package archive

import (
	"errors"
	"fmt"
	"time"
)

// Config configures the archive role.
type Config struct {
	// EventsTopic and RecsTopic are the topics archived under events/ and
	// recs/; "" leaves one out.
	EventsTopic string
	RecsTopic   string
	// Group is the consumer group the role's instances share; partitions
	// are spread over them, and each partition's progress lives in the
	// archive (_state/), not in the group's offsets.
	Group string
	// InstanceID, if set, makes the member static (KIP-345): a restarted
	// instance takes its partitions back at once instead of waiting for
	// the group to time its old member out. Unique per instance.
	InstanceID string
	// A partition's buffer is written out when it holds FlushRows records,
	// FlushBytes bytes of record values, or its oldest record was read
	// FlushAge ago, whichever comes first.
	FlushRows  int
	FlushBytes int64
	FlushAge   time.Duration
	// RetryBackoff is the first wait after a failed flush (a full disk,
	// an unreachable bucket); it doubles up to MaxRetryBackoff. Nothing is
	// lost meanwhile: the partition stops fetching and keeps its buffer.
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
}

// DefaultConfig returns the defaults: 1M rows, 128 MiB or 1 minute per
// flush.
func DefaultConfig() Config {
	return Config{
		Group:           "eddy-archive",
		FlushRows:       1_000_000,
		FlushBytes:      128 << 20,
		FlushAge:        time.Minute,
		RetryBackoff:    time.Second,
		MaxRetryBackoff: 30 * time.Second,
	}
}

// Validate checks what a user can set.
func (c *Config) Validate() error {
	switch {
	case c.EventsTopic == "" && c.RecsTopic == "":
		return errors.New("archive: nothing to archive (no events or recs topic)")
	case c.Group == "":
		return errors.New("archive: group must be set")
	case c.FlushRows < 1 || c.FlushRows > 100_000_000:
		return fmt.Errorf("archive: flush rows %d: want 1–100000000", c.FlushRows)
	case c.FlushBytes < 1<<10 || c.FlushBytes > 4<<30:
		return fmt.Errorf("archive: flush bytes %d: want 1 KiB–4 GiB", c.FlushBytes)
	case c.FlushAge < 100*time.Millisecond || c.FlushAge > 24*time.Hour:
		return fmt.Errorf("archive: flush age %v: want 100ms–24h", c.FlushAge)
	case c.RetryBackoff <= 0 || c.MaxRetryBackoff < c.RetryBackoff:
		return fmt.Errorf("archive: retry backoff %v–%v: want 0 < first ≤ max", c.RetryBackoff, c.MaxRetryBackoff)
	}
	return nil
}
