package scorer

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/eddyrec/eddy/scorer/topk"
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
	// SearchWorkers bounds the passes over the item matrix running at once
	// (default 2, one per core of the target machine); each pass runs on
	// the goroutine of one of the requests it answers.
	SearchWorkers int
	// MaxBatch caps the queries scored in one pass (default 32).
	MaxBatch int
	// RecsBuffer bounds the served-list log queue; when full, lists are
	// dropped and counted (default 4096).
	RecsBuffer int
	// DriftSample > 0 also publishes the served lists of that share of
	// users (task.KeySample on user_id, as the drift role samples) to
	// DriftInput, with the one header DriftHeaderKey: DriftHeaderValue:
	// a drift role that takes its served lists from there (eddy drift
	// --recs-from serve) reads its sample instead of the whole recs topic.
	// Set by eddy serve --drift-sample and by eddy up, not by a flag of
	// the scorer's own.
	DriftSample      float64
	DriftInput       string
	DriftHeaderKey   string
	DriftHeaderValue string
	// Variant names this scorer's model variant in responses and logs
	// when Variants is empty.
	Variant string
	// Variants, when set, splits users between variants by a hash of
	// their user_id: "name[:policy]=weight,..." (see ParseVariants,
	// Assign); Variant is then unused. Empty: every request is served
	// as today, by the online policy, as variant Variant.
	Variants string
	// Index selects the retrieval index: "int8" (the default: an int8 scan
	// of the items, then an exact float32 re-score of the best K + 32;
	// recall@10 and @200 measured 1.0 against exact) or "exact" (float32
	// scan of every item).
	Index string
	// FrozenRefresh is how often a frozen variant's model copy is re-taken
	// from the live model (0, the default: only once, when the scorer
	// first catches up; 24h imitates a nightly batch model). Only used when
	// a variant has the frozen policy.
	FrozenRefresh time.Duration
}

// Retrieval index kinds (Config.Index).
const (
	IndexExact = "exact"
	IndexInt8  = "int8"
)

// IndexKernel names the scan kernel the configured index uses on this CPU
// and build ("avx512vnni", "avx512", "avx2" or "go").
func (c Config) IndexKernel() string {
	if c.Index == IndexInt8 {
		return topk.Q8KernelName()
	}
	return topk.KernelName()
}

// newIndex returns the configured index over m.
func (c Config) newIndex(m *topk.Matrix) topk.MatrixIndex {
	if c.Index == IndexInt8 {
		return topk.NewQuantized(m, topk.DefaultRescoreMargin)
	}
	return topk.NewExact(m)
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Candidates: 200, PopularityHalfLife: 24 * time.Hour, SearchWorkers: 2, MaxBatch: 32, RecsBuffer: 4096, Variant: "default", Index: IndexInt8}
}

// RegisterFlags binds the settings to flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.Candidates, "candidates", c.Candidates, "retrieval candidates re-scored by the ranker")
	fs.DurationVar(&c.PopularityHalfLife, "popularity-half-life", c.PopularityHalfLife, "half-life of the decayed item popularity (fallback and ranker feature)")
	fs.IntVar(&c.SearchWorkers, "search-workers", c.SearchWorkers, "most passes over the item matrix running at once (each batches the requests waiting)")
	fs.IntVar(&c.MaxBatch, "max-batch", c.MaxBatch, "most concurrent queries scored in one pass over the item matrix")
	fs.IntVar(&c.RecsBuffer, "recs-buffer", c.RecsBuffer, "served lists queued for the recs topic before new ones are dropped")
	fs.StringVar(&c.Variant, "variant", c.Variant, "model variant name reported in responses and served lists (without --variants)")
	fs.StringVar(&c.Variants, "variants", c.Variants, "experiment: split users by a hash of user_id between variants name[:policy]=weight,... (policy online, retrieval, popularity or frozen; a name that is a policy uses it, others online), e.g. online=8,frozen=1,popularity=1")
	fs.DurationVar(&c.FrozenRefresh, "frozen-refresh", c.FrozenRefresh, "with a frozen variant: re-take its model copy from the live model this often (0: once, when the scorer first caught up; 24h imitates a nightly batch model)")
	fs.StringVar(&c.Index, "index", c.Index, "retrieval index: int8 (int8 scan, exact float32 re-score of the best k+32) or exact (float32 scan)")
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
	case c.FrozenRefresh < 0:
		return fmt.Errorf("scorer: --frozen-refresh %v: want ≥ 0", c.FrozenRefresh)
	case c.Index != IndexExact && c.Index != IndexInt8:
		return fmt.Errorf("scorer: --index %q: want %s or %s", c.Index, IndexInt8, IndexExact)
	case !(c.DriftSample >= 0 && c.DriftSample <= 1):
		return fmt.Errorf("scorer: drift sample %v: want 0–1", c.DriftSample)
	case c.DriftSample > 0 && (c.DriftInput == "" || c.DriftHeaderKey == ""):
		return errors.New("scorer: a drift sample needs the drift role's input topic and source header")
	}
	if _, err := ParseVariants(c.Variants); err != nil {
		return fmt.Errorf("scorer: --variants %q: %w", c.Variants, err)
	}
	return nil
}

// variants returns the configured variants: those of Variants, or the
// single online variant named Variant.
func (c Config) variants() []Variant {
	vs, err := ParseVariants(c.Variants)
	if err != nil || len(vs) == 0 {
		return []Variant{{Name: c.Variant, Policy: PolicyOnline, Weight: 1}}
	}
	return vs
}
