package scorer

import (
	"flag"
	"fmt"
	"time"
)

// MaxK is the largest k a request may ask for.
const MaxK = 1000

// Config holds the scorer's settings.
type Config struct {
	// Candidates is how many retrieval results the ranker re-scores
	// (default 200); with no ranker the top k are served as retrieved.
	Candidates int
	// PopularityHalfLife decays item popularity for the fallback and the
	// popularity feature (default 24h).
	PopularityHalfLife time.Duration
	// SearchWorkers is the number of goroutines scoring batches (default 2).
	SearchWorkers int
	// MaxBatch caps the queries scored in one pass (default 32).
	MaxBatch int
	// RecsBuffer bounds the served-list log queue; when full, lists are
	// dropped and counted (default 4096).
	RecsBuffer int
	// Variant names this scorer's model variant in responses and logs.
	Variant string
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Candidates: 200, PopularityHalfLife: 24 * time.Hour, SearchWorkers: 2, MaxBatch: 32, RecsBuffer: 4096, Variant: "default"}
}

// RegisterFlags binds the settings to flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.Candidates, "candidates", c.Candidates, "retrieval candidates re-scored by the ranker")
	fs.DurationVar(&c.PopularityHalfLife, "popularity-half-life", c.PopularityHalfLife, "half-life of the decayed item popularity (fallback and ranker feature)")
	fs.IntVar(&c.SearchWorkers, "search-workers", c.SearchWorkers, "goroutines scoring batched top-K passes")
	fs.IntVar(&c.MaxBatch, "max-batch", c.MaxBatch, "most concurrent queries scored in one pass over the item matrix")
	fs.IntVar(&c.RecsBuffer, "recs-buffer", c.RecsBuffer, "served lists queued for the recs topic before new ones are dropped")
	fs.StringVar(&c.Variant, "variant", c.Variant, "model variant name reported in responses and served lists")
}

// Validate reports the first setting out of range.
func (c Config) Validate() error {
	switch {
	case c.Candidates < 1 || c.Candidates > 10000:
		return fmt.Errorf("scorer: --candidates %d: want 1–10000", c.Candidates)
	case c.PopularityHalfLife <= 0:
		return fmt.Errorf("scorer: --popularity-half-life %v: want > 0", c.PopularityHalfLife)
	case c.SearchWorkers < 1 || c.SearchWorkers > 256:
		return fmt.Errorf("scorer: --search-workers %d: want 1–256", c.SearchWorkers)
	case c.MaxBatch < 1 || c.MaxBatch > 1024:
		return fmt.Errorf("scorer: --max-batch %d: want 1–1024", c.MaxBatch)
	case c.RecsBuffer < 1 || c.RecsBuffer > 1<<20:
		return fmt.Errorf("scorer: --recs-buffer %d: want 1–1048576", c.RecsBuffer)
	case c.Variant == "" || len(c.Variant) > 64:
		return fmt.Errorf("scorer: --variant %q: want 1–64 bytes", c.Variant)
	}
	return nil
}
