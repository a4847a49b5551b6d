package synth

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// specField binds one key of the spec syntax to a Config field. Parsing and
// rendering share this table so they cannot drift apart.
type specField struct {
	key string
	set func(c *Config, v string) error
	get func(c *Config) string
}

func intField(key string, f func(*Config) *int) specField {
	return specField{key,
		func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("not an integer")
			}
			*f(c) = n
			return nil
		},
		func(c *Config) string { return strconv.Itoa(*f(c)) }}
}

func int64Field(key string, f func(*Config) *int64) specField {
	return specField{key,
		func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("not an integer")
			}
			*f(c) = n
			return nil
		},
		func(c *Config) string { return strconv.FormatInt(*f(c), 10) }}
}

func uint64Field(key string, f func(*Config) *uint64) specField {
	return specField{key,
		func(c *Config, v string) error {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return fmt.Errorf("not an unsigned integer")
			}
			*f(c) = n
			return nil
		},
		func(c *Config) string { return strconv.FormatUint(*f(c), 10) }}
}

func floatField(key string, f func(*Config) *float64) specField {
	return specField{key,
		func(c *Config, v string) error {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("not a number")
			}
			*f(c) = x
			return nil
		},
		func(c *Config) string { return strconv.FormatFloat(*f(c), 'g', -1, 64) }}
}

func durationField(key string, f func(*Config) *time.Duration) specField {
	return specField{key,
		func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("not a duration like 20ms")
			}
			*f(c) = d
			return nil
		},
		func(c *Config) string { return f(c).String() }}
}

// timeField parses RFC 3339 or integer Unix milliseconds (as event
// timestamps do); the empty string is the zero time.
func timeField(key string, f func(*Config) *time.Time) specField {
	return specField{key,
		func(c *Config, v string) error {
			if v == "" {
				*f(c) = time.Time{}
				return nil
			}
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
				*f(c) = time.UnixMilli(ms).UTC()
				return nil
			}
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return fmt.Errorf("not an RFC 3339 time or Unix milliseconds")
			}
			*f(c) = t
			return nil
		},
		func(c *Config) string {
			if f(c).IsZero() {
				return ""
			}
			return f(c).Format(time.RFC3339Nano)
		}}
}

var specFields = []specField{
	uint64Field("seed", func(c *Config) *uint64 { return &c.Seed }),
	intField("users", func(c *Config) *int { return &c.Users }),
	intField("items", func(c *Config) *int { return &c.Items }),
	intField("dim", func(c *Config) *int { return &c.Dim }),
	floatField("zipf-s", func(c *Config) *float64 { return &c.ZipfS }),
	floatField("user-activity-s", func(c *Config) *float64 { return &c.UserActivityS }),
	floatField("explore", func(c *Config) *float64 { return &c.Explore }),
	intField("impressions", func(c *Config) *int { return &c.ImpressionsPerRequest }),
	floatField("session-length", func(c *Config) *float64 { return &c.SessionLength }),
	intField("sessions", func(c *Config) *int { return &c.ConcurrentSessions }),
	floatField("ctr", func(c *Config) *float64 { return &c.TargetCTR }),
	floatField("affinity-weight", func(c *Config) *float64 { return &c.AffinityWeight }),
	floatField("popularity-weight", func(c *Config) *float64 { return &c.PopularityWeight }),
	floatField("position-decay", func(c *Config) *float64 { return &c.PositionDecay }),
	floatField("watch-prob", func(c *Config) *float64 { return &c.WatchProb }),
	floatField("length-median", func(c *Config) *float64 { return &c.ItemLengthMedian }),
	floatField("length-sigma", func(c *Config) *float64 { return &c.ItemLengthSigma }),
	floatField("completion-bias", func(c *Config) *float64 { return &c.CompletionBias }),
	floatField("completion-weight", func(c *Config) *float64 { return &c.CompletionWeight }),
	floatField("like-rate", func(c *Config) *float64 { return &c.LikeRate }),
	floatField("dislike-rate", func(c *Config) *float64 { return &c.DislikeRate }),
	floatField("skip-rate", func(c *Config) *float64 { return &c.SkipRate }),
	floatField("purchase-rate", func(c *Config) *float64 { return &c.PurchaseRate }),
	floatField("rating-rate", func(c *Config) *float64 { return &c.RatingRate }),
	timeField("start", func(c *Config) *time.Time { return &c.Start }),
	durationField("inter-event", func(c *Config) *time.Duration { return &c.MeanInterEvent }),
	int64Field("drift-at", func(c *Config) *int64 { return &c.DriftAt }),
	timeField("drift-at-time", func(c *Config) *time.Time { return &c.DriftAtTime }),
	{"drift-kind",
		func(c *Config, v string) error {
			k, err := ParseDriftKind(v)
			if err != nil {
				return fmt.Errorf("unknown drift kind (want none, popularity, taste or watch-ratio)")
			}
			c.DriftKind = k
			return nil
		},
		func(c *Config) string { return c.DriftKind.String() }},
	floatField("drift-strength", func(c *Config) *float64 { return &c.DriftStrength }),
}

// SpecKeys returns the keys ParseSpec accepts, in documentation order.
func SpecKeys() []string {
	keys := make([]string, len(specFields))
	for i, f := range specFields {
		keys[i] = f.key
	}
	return keys
}

// ParseSpec parses an options string such as
//
//	users=1000,items=500,seed=7,drift-at=50000,drift-kind=taste,dim=16
//
// into a validated Config. Keys not given keep their DefaultConfig values;
// the empty string is the default Config. Keys (see SpecKeys) are the Config
// fields in kebab case, with these short forms: impressions
// (ImpressionsPerRequest), sessions (ConcurrentSessions), ctr (TargetCTR),
// inter-event (MeanInterEvent, a Go duration such as 20ms), length-median and
// length-sigma (ItemLength*). Times (start, drift-at-time) are RFC 3339 or
// Unix milliseconds. A key may appear once.
func ParseSpec(s string) (Config, error) {
	c := DefaultConfig()
	if strings.TrimSpace(s) == "" {
		return c, nil
	}
	seen := make(map[string]bool)
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return Config{}, fmt.Errorf("synth: spec: %q is not key=value", part)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		f := lookupSpecField(k)
		if f == nil {
			return Config{}, fmt.Errorf("synth: spec: unknown key %q (known: %s)", k, strings.Join(SpecKeys(), ", "))
		}
		if seen[k] {
			return Config{}, fmt.Errorf("synth: spec: key %q given twice", k)
		}
		seen[k] = true
		if err := f.set(&c, v); err != nil {
			return Config{}, fmt.Errorf("synth: spec: %s=%q: %w", k, v, err)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("synth: spec %q: %w", s, err)
	}
	return c, nil
}

func lookupSpecField(key string) *specField {
	for i := range specFields {
		if specFields[i].key == key {
			return &specFields[i]
		}
	}
	return nil
}

// Spec renders c in the syntax ParseSpec reads, listing only the fields that
// differ from DefaultConfig (so DefaultConfig().Spec() is ""). For a valid
// Config, ParseSpec(c.Spec()) returns c.
func (c Config) Spec() string {
	def := DefaultConfig()
	var b strings.Builder
	for _, f := range specFields {
		v := f.get(&c)
		if v == f.get(&def) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(f.key)
		b.WriteByte('=')
		b.WriteString(v)
	}
	return b.String()
}
