package stage

import (
	"errors"
	"fmt"
	"time"

	"github.com/eddyrec/eddy/learner"
)

// Topics names the topics the stages read and write.
type Topics struct {
	// Events is the user stage's source (keyed by user_id).
	Events string
	// ItemGrads carries gradients from the user stage to the item stage.
	ItemGrads string
	// ModelUsers and ModelItems are the compacted model topics the scorer
	// replays.
	ModelUsers, ModelItems string
	// Versions is the retrain role's model.versions: with it, both stages
	// adopt each promoted version (promotion.go); "" never adopts.
	Versions string
}

// Config configures both stages. Fill it with DefaultConfig.
type Config struct {
	// MF is the learner's hyper-parameters; both stages (and every
	// instance) must run the same.
	MF learner.MFConfig
	// ModelVersion is written into every model record (see doc.go).
	// Default 1.
	ModelVersion uint64
	// SeenItems is how many recently consumed item ids a user record
	// carries for the scorer's exclude_seen. Default 100.
	SeenItems int
	// PopularityHalfLife decays item popularity and impressions in event
	// time; keep it equal to the scorer's --popularity-half-life. Default
	// 24h.
	PopularityHalfLife time.Duration
	// Topics are the stages' topics.
	Topics Topics
	// MaxReadyLag is how many source records a partition may be behind
	// its high watermark while the stage reports ready. Default 10,000.
	MaxReadyLag int64
}

// DefaultConfig returns the defaults documented on Config's fields, with
// learner.DefaultMFConfig.
func DefaultConfig() Config {
	return Config{
		MF:                 learner.DefaultMFConfig(),
		ModelVersion:       1,
		SeenItems:          100,
		PopularityHalfLife: 24 * time.Hour,
		MaxReadyLag:        10_000,
	}
}

// Validate reports the first setting out of range.
func (c *Config) Validate() error {
	if err := c.MF.Validate(); err != nil {
		return fmt.Errorf("stage: %w", err)
	}
	switch {
	case c.SeenItems < 0 || c.SeenItems > maxSeen:
		return fmt.Errorf("stage: seen items %d: want 0–%d", c.SeenItems, maxSeen)
	case c.PopularityHalfLife <= 0:
		return fmt.Errorf("stage: popularity half-life %v: want > 0", c.PopularityHalfLife)
	case c.MaxReadyLag < 0:
		return fmt.Errorf("stage: max ready lag %d: want ≥ 0", c.MaxReadyLag)
	case c.Topics.Events == "" || c.Topics.ItemGrads == "" || c.Topics.ModelUsers == "" || c.Topics.ModelItems == "":
		return errors.New("stage: all four topics (events, item-grads, model.users, model.items) are required")
	case c.MF.NegativeWindow > maxWindow:
		return fmt.Errorf("stage: negative window %d: want ≤ %d (it is part of each partition's state)", c.MF.NegativeWindow, maxWindow)
	}
	return nil
}
