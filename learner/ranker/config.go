package ranker

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/modelrec"
)

// Topics names the topics of the ranker stages.
type Topics struct {
	Events string // source: <prefix>events (key = user_id)
	Recs   string // source: <prefix>recs, the scorer's served lists (key = user_id)
	// Input is internal: engagement events and served lists, keyed by
	// user id (stream.TopicRankerInput).
	Input string
	// Examples is internal: labelled examples, one partition
	// (stream.TopicRankerExamples).
	Examples string
	// Ranker is the compacted <prefix>model.ranker the scorer replays.
	Ranker string
}

// Config configures the ranker stages. Fill it with DefaultConfig.
type Config struct {
	// Features are the dense features the ranker learns weights for, in
	// the order it publishes them; the scorer computes them at serving
	// time and logs them with every served item. Default: every
	// modelrec.Feature* the scorer knows.
	Features []string
	// FTRL is the learner's hyper-parameters (Dense and HashBits are set
	// by the trainer). Default learner.DefaultFTRLConfig.
	FTRL learner.FTRLConfig
	// Confidence decides which engagements are positives and which are
	// explicit negatives (see Reason). Default learner.DefaultConfidence.
	Confidence learner.Confidence
	// LabelWindow is how long (event time) after a list was served an
	// engagement still counts; unanswered items become negatives after
	// it. Default 30 min.
	LabelWindow time.Duration
	// MaxListsPerUser and MaxPendingLists bound the joiner's pending
	// served lists, per user and per input partition; the oldest are
	// dropped (without examples) beyond them. Defaults 100 and 100,000
	// (a list of 10 items with 5 features takes about 1 KB of state).
	MaxListsPerUser int
	MaxPendingLists int
	// MaxOrphansPerUser and MaxOrphans bound engagements that arrived
	// before their served list, likewise. Defaults 1,000 and 100,000. The
	// per-user bound is ten times the lists' because the two forwarders
	// copy independently: in a backlog the events' one can run the whole
	// backlog ahead of the served lists' one, and then every engagement of
	// a user waits as an orphan (about 60 bytes each) until the lists
	// catch up; at 100, a user with 100 clicks in a backlog lost labels.
	MaxOrphansPerUser int
	MaxOrphans        int
	// PublishEvery and PublishInterval throttle the trainer: it publishes
	// its weights after a batch once PublishEvery examples were learnt
	// since the last publish, or once PublishInterval has passed since it
	// (wall clock) with at least one new example. Defaults 10,000 and 1 s.
	PublishEvery    int
	PublishInterval time.Duration
	// Name is the model.ranker record key. Default "default".
	Name string
	// ModelVersion is written into every Ranker record: the lineage of
	// the online model, as stage.Config.ModelVersion (the scorer reports
	// the highest version of any model record it applied). Default 1.
	ModelVersion uint64
	// MaxReadyLag is how many source records a stage may be behind while
	// the stages report ready. Default 10,000.
	MaxReadyLag int64
	Topics      Topics
}

// DefaultConfig returns the defaults documented on Config's fields.
func DefaultConfig() Config {
	return Config{
		Features: []string{modelrec.FeatureMFScore, modelrec.FeatureItemLogPopularity, modelrec.FeatureItemCTR,
			modelrec.FeatureItemRecency, modelrec.FeatureUserLogActivity},
		FTRL:              learner.DefaultFTRLConfig(),
		Confidence:        learner.DefaultConfidence(),
		LabelWindow:       30 * time.Minute,
		MaxListsPerUser:   100,
		MaxPendingLists:   100_000,
		MaxOrphansPerUser: 1000,
		MaxOrphans:        100_000,
		PublishEvery:      10_000,
		PublishInterval:   time.Second,
		Name:              "default",
		ModelVersion:      1,
		MaxReadyLag:       10_000,
	}
}

// Validate reports the first setting out of range.
func (c *Config) Validate() error {
	f := c.FTRL
	f.Dense, f.HashBits = 1, 0
	if err := f.Validate(); err != nil {
		return fmt.Errorf("ranker: %w", err)
	}
	if err := c.Confidence.Validate(); err != nil {
		return fmt.Errorf("ranker: %w", err)
	}
	t := c.Topics
	switch {
	case len(c.Features) == 0 || len(c.Features) > modelrec.MaxRankerFeatures-1:
		return fmt.Errorf("ranker: %d features: want 1–%d", len(c.Features), modelrec.MaxRankerFeatures-1)
	case c.LabelWindow <= 0:
		return fmt.Errorf("ranker: label window %v: want > 0", c.LabelWindow)
	case c.MaxListsPerUser < 1 || c.MaxPendingLists < 1 || c.MaxOrphansPerUser < 1 || c.MaxOrphans < 1:
		return errors.New("ranker: pending list and orphan bounds must be ≥ 1")
	case c.PublishEvery < 1 || c.PublishInterval <= 0:
		return fmt.Errorf("ranker: publish every %d / interval %v: want ≥ 1 / > 0", c.PublishEvery, c.PublishInterval)
	case c.Name == "" || len(c.Name) > 256:
		return errors.New("ranker: name: want 1–256 bytes")
	case c.MaxReadyLag < 0:
		return fmt.Errorf("ranker: max ready lag %d: want ≥ 0", c.MaxReadyLag)
	case t.Events == "" || t.Recs == "" || t.Input == "" || t.Examples == "" || t.Ranker == "":
		return errors.New("ranker: all five topics (events, recs, ranker.input, ranker.examples, model.ranker) are required")
	}
	for i, n := range c.Features {
		if n == "" || len(n) > maxFeatureName || slices.Contains(c.Features[:i], n) {
			return fmt.Errorf("ranker: feature %q: want 1–%d bytes, once", n, maxFeatureName)
		}
	}
	return nil
}
