package retrain

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/connectors/archive"
	"github.com/eddyrec/eddy/learner/ials"
)

// Topics names the topics the role reads and writes.
type Topics struct {
	Events, Control, Versions, Users, Items string
}

// Config configures the retrain role.
type Config struct {
	// ClientOpts reach the brokers (seeds, TLS, SASL).
	ClientOpts []kgo.Opt
	Topics     Topics
	// Archive holds the events (and receives the snapshots, under
	// models/<version>/); ArchiveName says where, for the records.
	Archive     archive.Store
	ArchiveName string
	// Window is how far back from the newest archived event a run reads;
	// Holdout is the newest part of it the challenger does not learn
	// from and both models are judged on.
	Window, Holdout time.Duration
	// ArchiveWait bounds the wait for the archive to hold every event
	// acknowledged when a run begins.
	ArchiveWait time.Duration
	IALS        ials.Config
	Gate        GateConfig
	// SeenItems is the number of recent item ids kept with each user's
	// row, as the online user stage keeps.
	SeenItems int
	// MaxHoldoutUsers caps the users judged (a seeded sample); 0 judges
	// all. Full ranking costs users × items × dim per model.
	MaxHoldoutUsers int
	// Schedule, when positive, asks for a run that often as well.
	Schedule time.Duration
	// TransactionalID fences a second instance of the role: only one may
	// write versions.
	TransactionalID string
	// PublishTimeout bounds the promotion transaction.
	PublishTimeout time.Duration
}

// DefaultConfig returns the defaults: 30 days read, the last day held
// out, the iALS and gate defaults.
func DefaultConfig() Config {
	return Config{Window: 30 * 24 * time.Hour, Holdout: 24 * time.Hour, ArchiveWait: 5 * time.Minute,
		IALS: ials.DefaultConfig(), Gate: DefaultGate(), SeenItems: 100, MaxHoldoutUsers: 20_000,
		TransactionalID: "eddy-retrain", PublishTimeout: 5 * time.Minute}
}

// Validate reports the first setting out of range.
func (c *Config) Validate() error {
	t := c.Topics
	switch {
	case t.Events == "" || t.Control == "" || t.Versions == "" || t.Users == "" || t.Items == "":
		return errors.New("retrain: every topic must be named")
	case c.Window <= 0 || c.Holdout <= 0 || c.Holdout >= c.Window:
		return fmt.Errorf("retrain: --holdout %v must be positive and shorter than --window %v", c.Holdout, c.Window)
	case c.ArchiveWait <= 0:
		return fmt.Errorf("retrain: --archive-wait %v: want > 0", c.ArchiveWait)
	case c.SeenItems < 0 || c.SeenItems > 1024:
		return fmt.Errorf("retrain: seen items %d: want 0–1024", c.SeenItems)
	case c.MaxHoldoutUsers < 0:
		return fmt.Errorf("retrain: max holdout users %d: want ≥ 0", c.MaxHoldoutUsers)
	case c.Schedule < 0 || (c.Schedule > 0 && c.Schedule < time.Minute):
		return fmt.Errorf("retrain: --schedule %v: want 0 (off) or at least 1m", c.Schedule)
	case c.TransactionalID == "":
		return errors.New("retrain: transactional id must be set")
	case c.PublishTimeout <= 0:
		return fmt.Errorf("retrain: publish timeout %v: want > 0", c.PublishTimeout)
	}
	if err := c.IALS.Validate(); err != nil {
		return err
	}
	return c.Gate.Validate()
}
