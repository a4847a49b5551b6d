package drift

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Source names the record stream a signal is read from.
type Source uint8

// The sources.
const (
	SourceEvents  Source = iota + 1 // eddy.events: one observation per event (or per user at window close)
	SourceRecs                      // eddy.recs: one observation per served list or served item
	SourceOutcome                   // the join of eddy.recs with eddy.events by request_id
)

var sourceNames = [...]string{SourceEvents: "events", SourceRecs: "recs", SourceOutcome: "outcome"}

// String returns "events", "recs" or "outcome".
func (s Source) String() string {
	if s >= SourceEvents && int(s) < len(sourceNames) {
		return sourceNames[s]
	}
	return fmt.Sprintf("source(%d)", uint8(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s Source) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Source) UnmarshalText(b []byte) error {
	for i, n := range sourceNames {
		if i > 0 && string(b) == n {
			*s = Source(i)
			return nil
		}
	}
	return fmt.Errorf("unknown source %q (want events, recs or outcome)", b)
}

// SignalKind says how a signal is summarised and compared. It extends Kind
// with ranks: a rank signal counts item ids in a FreqTable and is compared
// on the share of observations per popularity-rank bucket of the
// reference (see RankBuckets), so that a million-item catalogue becomes six
// comparable categories instead of a million noisy ones.
type SignalKind uint8

// The signal kinds.
const (
	SignalNumeric     SignalKind = iota + 1 // Sketch
	SignalCategorical                       // FreqTable, compared per category
	SignalRank                              // FreqTable of item ids, compared per reference rank bucket
)

var signalKindNames = [...]string{SignalNumeric: "numeric", SignalCategorical: "categorical", SignalRank: "rank"}

// String returns "numeric", "categorical" or "rank".
func (k SignalKind) String() string {
	if k >= SignalNumeric && int(k) < len(signalKindNames) {
		return signalKindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// MarshalText implements encoding.TextMarshaler.
func (k SignalKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *SignalKind) UnmarshalText(b []byte) error {
	for i, n := range signalKindNames {
		if i > 0 && string(b) == n {
			*k = SignalKind(i)
			return nil
		}
	}
	return fmt.Errorf("unknown kind %q (want numeric, categorical or rank)", b)
}

// Duration is a time.Duration that reads "5m" from YAML and JSON.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// SignalConfig is one monitored signal.
type SignalConfig struct {
	// Name is the signal's label in reports and metrics: [a-z0-9_.:-],
	// at most 64 bytes, unique.
	Name string `yaml:"name" json:"name"`
	// Source is events, recs or outcome.
	Source Source `yaml:"source" json:"source"`
	// Field is what is observed; see Fields for the catalogue per source.
	// context.<key> (events) and feature.<name> (recs) take any key.
	Field string `yaml:"field" json:"field"`
	// Kind must match the field's kind; empty takes it from the field.
	Kind SignalKind `yaml:"kind,omitempty" json:"kind"`
	// Method is the distance or test; empty (auto) picks DefaultSignalMethod.
	Method Method `yaml:"method,omitempty" json:"method"`
	// Threshold: drift when the distance is ≥ Threshold, or for tests
	// when p < Threshold; 0 takes the method's default.
	Threshold float64 `yaml:"threshold,omitempty" json:"threshold"`
	// MinSamples: a window with fewer observations is not judged (status
	// "insufficient"); 0 takes Config.MinSamples.
	MinSamples int64 `yaml:"min_samples,omitempty" json:"min_samples"`
}

// WindowConfig says how records are cut into windows.
type WindowConfig struct {
	// Size is the length of a tumbling event-time window (default 5m).
	Size Duration `yaml:"size" json:"size"`
	// Events, when > 0, cuts count-based windows of that many events per
	// partition instead (tests and offline runs); Size is then ignored.
	// Served lists do not count.
	Events int64 `yaml:"events,omitempty" json:"events,omitempty"`
	// Lateness is how long after its end (in event time, by the
	// partition's largest timestamp seen) a window stays open for late
	// records (default 30s). Later records are dropped and counted.
	Lateness Duration `yaml:"lateness" json:"lateness"`
	// MaxUsers bounds the per-user aggregates a partition's window keeps
	// (events_per_user, session_length); users beyond it are not tracked
	// for those signals and are counted as UsersDropped (default 50,000).
	MaxUsers int `yaml:"max_users" json:"max_users"`
	// MaxRequests bounds the served lists held for the outcome join per
	// partition (default 100,000); the oldest is closed early when full.
	MaxRequests int `yaml:"max_requests" json:"max_requests"`
	// Sample is the share of users observed (default 1: all). Users are
	// chosen by a hash of user_id, so a sampled user's events, lists and
	// joins are all kept and per-user signals stay exact for them. At
	// high rates sampling is what keeps drift cheap: every signal needs a
	// few thousand observations per window, not millions (see doc.go,
	// "Cost").
	Sample float64 `yaml:"sample" json:"sample"`
	// Attribution is how long after a list is served its clicks count
	// (default 10m); the list's CTR observation is made then.
	Attribution Duration `yaml:"attribution" json:"attribution"`
}

// TriggerConfig is the retraining trigger policy.
type TriggerConfig struct {
	// Consecutive is K: a signal drifted in K consecutive judged windows
	// asks for retraining (default 3).
	Consecutive int `yaml:"consecutive" json:"consecutive"`
	// Cooldown is the least event time between two requests (default 6h).
	Cooldown Duration `yaml:"cooldown" json:"cooldown"`
	// DailyMax is the most requests in any 24 h of event time (default 4).
	DailyMax int `yaml:"daily_max" json:"daily_max"`
	// Repeat, when > 0, asks again after that long while the same drift
	// episode continues (cooldown and DailyMax still apply). 0 (the
	// default) asks once per episode: retraining on the same drifted data
	// again rarely helps, and the alert keeps firing for a human.
	Repeat Duration `yaml:"repeat,omitempty" json:"repeat,omitempty"`
}

// Config is the drift role's configuration, read from YAML by LoadConfig.
type Config struct {
	Window WindowConfig `yaml:"window" json:"window"`
	// ReferenceWindows is how many merged windows form a reference when
	// one is captured (after a model promotion, or at first start);
	// default 12 (one hour of 5-minute windows).
	ReferenceWindows int `yaml:"reference_windows" json:"reference_windows"`
	// MinSamples is the default per-signal minimum window size (default 200).
	MinSamples int64 `yaml:"min_samples" json:"min_samples"`
	// SketchK is the KLL accuracy of numeric signals (default DefaultK).
	SketchK int `yaml:"sketch_k" json:"sketch_k"`
	// TableCapacity bounds categorical and rank tables (default 4,096).
	TableCapacity int            `yaml:"table_capacity" json:"table_capacity"`
	Trigger       TriggerConfig  `yaml:"trigger" json:"trigger"`
	Signals       []SignalConfig `yaml:"signals" json:"signals"`
}

// DefaultConfig returns the product defaults: 5-minute windows, a
// reference of 12 windows and the default signals (DefaultSignals).
func DefaultConfig() Config {
	return Config{
		Window: WindowConfig{
			Size:        Duration(5 * time.Minute),
			Lateness:    Duration(30 * time.Second),
			MaxUsers:    50_000,
			MaxRequests: 100_000,
			Sample:      1,
			Attribution: Duration(10 * time.Minute),
		},
		ReferenceWindows: 12,
		MinSamples:       200,
		SketchK:          DefaultK,
		TableCapacity:    4096,
		Trigger: TriggerConfig{
			Consecutive: 3,
			Cooldown:    Duration(6 * time.Hour),
			DailyMax:    4,
		},
		Signals: DefaultSignals(),
	}
}

// DefaultSignals returns the signals monitored when the configuration names
// none. Thresholds are calibrated (see doc.go, "Calibration") so that a
// stationary stream of 5-minute windows raises no alert in a day while the
// synthetic shifts are caught in the first or second window.
func DefaultSignals() []SignalConfig {
	return []SignalConfig{
		// Feature drift (eddy.events).
		{Name: "event_type", Source: SourceEvents, Field: "type"},
		{Name: "watch_ratio", Source: SourceEvents, Field: "watch_ratio"},
		{Name: "session_length", Source: SourceEvents, Field: "session_length", Threshold: perUserThreshold},
		{Name: "events_per_user", Source: SourceEvents, Field: "events_per_user", Threshold: perUserThreshold},
		{Name: "consumed_item_rank", Source: SourceEvents, Field: "item_rank"},
		{Name: "context_device", Source: SourceEvents, Field: "context.device"},
		{Name: "context_country", Source: SourceEvents, Field: "context.country"},
		// Prediction drift (eddy.recs).
		{Name: "score", Source: SourceRecs, Field: "score"},
		{Name: "served_item_rank", Source: SourceRecs, Field: "item_rank"},
		{Name: "fallback", Source: SourceRecs, Field: "fallback", Threshold: binaryThreshold},
		{Name: "feature_mf_score", Source: SourceRecs, Field: "feature.mf_score"},
		{Name: "feature_item_pop", Source: SourceRecs, Field: "feature.item_pop"},
		{Name: "feature_item_ctr", Source: SourceRecs, Field: "feature.item_ctr"},
		// Outcomes (join).
		{Name: "ctr", Source: SourceOutcome, Field: "ctr", Threshold: binaryThreshold},
		{Name: "clicked_score", Source: SourceOutcome, Field: "clicked_score"},
		{Name: "unrecommended_engagement", Source: SourceOutcome, Field: "unrecommended", Threshold: binaryThreshold},
	}
}

// binaryThreshold is the JS distance threshold of the default binary
// signals (rates): for two categories JS distance ≈ 0.35·h with Cohen's
// h = |2 asin √p − 2 asin √q|, so 0.1 is h ≈ 0.28 (CTR 0.57 → 0.43, or a
// fallback rate 0 → 3%), several times the stationary noise (~0.03).
const binaryThreshold = 0.1

// perUserThreshold is the normalised Wasserstein threshold of the per-user
// signals: one heavy-tailed observation per active user, a few hundred per
// 5-minute window, reached 0.19 on stationary synthetic days.
const perUserThreshold = 0.4

// LoadConfig reads a YAML file: every key is optional and takes its
// default when absent; a non-empty signals list replaces DefaultSignals.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("drift: read config: %w", err)
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("drift: config %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig parses YAML (strictly: unknown keys are errors), fills
// defaults and validates.
func ParseConfig(b []byte) (Config, error) {
	cfg := DefaultConfig()
	cfg.Signals = nil
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("drift: parse config: %w", err)
	}
	if len(cfg.Signals) == 0 {
		cfg.Signals = DefaultSignals()
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Limits of Validate.
const (
	MaxSignals      = 256
	maxSignalName   = 64
	maxWindowUsers  = 10_000_000
	maxJoinRequests = 10_000_000
)

// Validate checks every field and returns all problems joined, each naming
// the field and the rule. It fills kinds, methods and thresholds left
// empty in Signals, so a validated Config is complete.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field string, v any, rule string) {
		errs = append(errs, fmt.Errorf("drift: %s = %v: %s", field, v, rule))
	}
	w := &c.Window
	if w.Events < 0 {
		bad("window.events", w.Events, "must be ≥ 0")
	}
	if w.Events == 0 && (w.Size < Duration(time.Second) || w.Size > Duration(24*time.Hour)) {
		bad("window.size", time.Duration(w.Size), "must be between 1s and 24h")
	}
	if w.Lateness < 0 || w.Lateness > Duration(time.Hour) {
		bad("window.lateness", time.Duration(w.Lateness), "must be between 0 and 1h")
	}
	if w.MaxUsers < 1 || w.MaxUsers > maxWindowUsers {
		bad("window.max_users", w.MaxUsers, fmt.Sprintf("must be in [1, %d]", maxWindowUsers))
	}
	if w.MaxRequests < 1 || w.MaxRequests > maxJoinRequests {
		bad("window.max_requests", w.MaxRequests, fmt.Sprintf("must be in [1, %d]", maxJoinRequests))
	}
	if !(w.Sample > 0 && w.Sample <= 1) {
		bad("window.sample", w.Sample, "must be in (0, 1]")
	}
	if w.Attribution <= 0 || w.Attribution > Duration(24*time.Hour) {
		bad("window.attribution", time.Duration(w.Attribution), "must be in (0, 24h]")
	}
	if c.ReferenceWindows < 1 || c.ReferenceWindows > 10_000 {
		bad("reference_windows", c.ReferenceWindows, "must be in [1, 10000]")
	}
	if c.MinSamples < 1 {
		bad("min_samples", c.MinSamples, "must be ≥ 1")
	}
	if c.SketchK < MinK || c.SketchK > MaxK {
		bad("sketch_k", c.SketchK, fmt.Sprintf("must be in [%d, %d]", MinK, MaxK))
	}
	if c.TableCapacity < 16 || c.TableCapacity > MaxFreqCapacity {
		bad("table_capacity", c.TableCapacity, fmt.Sprintf("must be in [16, %d]", MaxFreqCapacity))
	}
	t := &c.Trigger
	if t.Consecutive < 1 || t.Consecutive > 1000 {
		bad("trigger.consecutive", t.Consecutive, "must be in [1, 1000]")
	}
	if t.Cooldown < 0 {
		bad("trigger.cooldown", time.Duration(t.Cooldown), "must be ≥ 0")
	}
	if t.DailyMax < 1 || t.DailyMax > 1000 {
		bad("trigger.daily_max", t.DailyMax, "must be in [1, 1000]")
	}
	if t.Repeat < 0 {
		bad("trigger.repeat", time.Duration(t.Repeat), "must be ≥ 0")
	}
	if len(c.Signals) == 0 {
		bad("signals", "[]", "at least one signal is needed")
	}
	if len(c.Signals) > MaxSignals {
		bad("signals", len(c.Signals), fmt.Sprintf("at most %d signals", MaxSignals))
	}
	names := map[string]bool{}
	for i := range c.Signals {
		s := &c.Signals[i]
		at := fmt.Sprintf("signals[%d]", i)
		if s.Name != "" {
			at = fmt.Sprintf("signals[%d] (%s)", i, s.Name)
		}
		if !validName(s.Name) {
			bad(at+".name", fmt.Sprintf("%q", s.Name), "must be 1–64 bytes of a-z, 0-9, _ . : -")
		} else if names[s.Name] {
			bad(at+".name", s.Name, "duplicate signal name")
		}
		names[s.Name] = true
		f, err := lookupField(s.Source, s.Field)
		if err != nil {
			bad(at+".field", fmt.Sprintf("%s/%q", s.Source, s.Field), err.Error())
			continue
		}
		if s.Kind == 0 {
			s.Kind = f.Kind
		}
		if s.Kind != f.Kind {
			bad(at+".kind", s.Kind, fmt.Sprintf("field %s is %s", s.Field, f.Kind))
			continue
		}
		if s.Method == MethodAuto {
			s.Method = DefaultSignalMethod(s.Kind)
		}
		if !methodFits(s.Kind, s.Method) {
			bad(at+".method", s.Method, fmt.Sprintf("does not apply to %s signals", s.Kind))
		}
		if s.Threshold == 0 {
			s.Threshold = DefaultSignalThreshold(s.Method)
		}
		if math.IsNaN(s.Threshold) || s.Threshold < 0 || (s.Method.HasPValue() && s.Threshold >= 1) {
			bad(at+".threshold", s.Threshold, "must be > 0 (and < 1 for tests)")
		}
		if s.MinSamples == 0 {
			s.MinSamples = c.MinSamples
		}
		if s.MinSamples < 1 {
			bad(at+".min_samples", s.MinSamples, "must be ≥ 1")
		}
	}
	return errors.Join(errs...)
}

func validName(s string) bool {
	if s == "" || len(s) > maxSignalName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("_.:-", c) >= 0) {
			return false
		}
	}
	return true
}

// DefaultSignalMethod is the method a signal gets when none is configured:
// normalised Wasserstein for numeric signals and Jensen–Shannon for
// categorical and rank signals. Hypothesis tests are not defaults: with
// thousands of observations per window they flag differences too small to
// matter, and at p < 0.05 a day of 288 windows would alert ~14 times per
// signal by chance.
func DefaultSignalMethod(k SignalKind) Method {
	if k == SignalNumeric {
		return MethodWasserstein
	}
	return MethodJS
}

// DefaultSignalThreshold is the threshold a signal gets when none is
// configured: 0.25 for the distances (PSI's "significant" edge), above
// Evidently's 0.1 because 5-minute windows are small and clustered (a
// session's events share a user, device and country): the calibration
// (doc.go) measured stationary windows of the synthetic stream reaching
// ~0.15 on per-user and context signals over a day, while the synthetic
// shifts score 0.4–1.6. Binary signals get 0.1 in DefaultSignals. Tests
// keep p < 0.05.
func DefaultSignalThreshold(m Method) float64 {
	if m.HasPValue() {
		return 0.05
	}
	return 0.25
}

func methodFits(k SignalKind, m Method) bool {
	switch m {
	case MethodKS, MethodWasserstein:
		return k == SignalNumeric
	case MethodPSI, MethodJS, MethodChiSquare:
		return true
	case MethodZTest:
		return k != SignalRank
	}
	return false
}
