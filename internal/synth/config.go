package synth

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// DriftKind is the kind of change injected into the model at the drift point.
type DriftKind uint8

// The drift kinds. DriftNone is the zero value: no drift.
const (
	DriftNone DriftKind = iota
	// DriftPopularity shuffles item popularity ranks: new items become hot.
	DriftPopularity
	// DriftTaste moves user latent vectors: which items a user likes changes.
	DriftTaste
	// DriftWatchRatio shrinks every watch ratio, as a broken player would.
	DriftWatchRatio
)

var driftKindNames = [...]string{
	DriftNone:       "none",
	DriftPopularity: "popularity",
	DriftTaste:      "taste",
	DriftWatchRatio: "watch-ratio",
}

// String returns the name of k as ParseDriftKind accepts it.
func (k DriftKind) String() string {
	if int(k) < len(driftKindNames) {
		return driftKindNames[k]
	}
	return fmt.Sprintf("DriftKind(%d)", uint8(k))
}

// ParseDriftKind returns the DriftKind named s ("none", "popularity",
// "taste" or "watch-ratio"; the empty string means none).
func ParseDriftKind(s string) (DriftKind, error) {
	if s == "" {
		return DriftNone, nil
	}
	for k, name := range driftKindNames {
		if name == s {
			return DriftKind(k), nil
		}
	}
	return DriftNone, fmt.Errorf("synth: unknown drift kind %q (want one of %s)", s, strings.Join(driftKindNames[:], ", "))
}

// MarshalText implements encoding.TextMarshaler, so a DriftKind can be a flag
// (flag.TextVar) or a config field.
func (k DriftKind) MarshalText() ([]byte, error) {
	if int(k) >= len(driftKindNames) {
		return nil, fmt.Errorf("synth: invalid drift kind %d", uint8(k))
	}
	return []byte(driftKindNames[k]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *DriftKind) UnmarshalText(b []byte) error {
	v, err := ParseDriftKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// Config describes a synthetic interaction stream. Start from DefaultConfig;
// the zero Config is not valid. See the package documentation for the model
// that the fields parameterise.
type Config struct {
	// Seed selects the stream; the same Config always yields the same events.
	// Default 1.
	Seed uint64

	// Users is the number of users, ids "u0".."u<Users-1>". Default 10,000.
	Users int
	// Items is the number of items, ids "i0".."i<Items-1>". It must be at
	// least ImpressionsPerRequest. Default 5,000.
	Items int
	// Dim is the latent dimension of user and item vectors. Default 16.
	Dim int

	// ZipfS is the exponent of item popularity: the item of popularity rank
	// r is drawn for an impression with weight r^-ZipfS. 0 is uniform.
	// Default 1.1.
	ZipfS float64
	// UserActivityS is the same exponent for how often users start
	// sessions. 0 is uniform. Default 0.8.
	UserActivityS float64
	// Explore is the share of impression slots filled uniformly at random
	// instead of by popularity. Default 0.2.
	Explore float64

	// ImpressionsPerRequest is the length of a served list. Default 10.
	ImpressionsPerRequest int
	// SessionLength is the mean number of requests in a session (geometric,
	// at least 1). Default 4.
	SessionLength float64
	// ConcurrentSessions is the number of sessions whose events interleave.
	// Default 64.
	ConcurrentSessions int

	// TargetCTR is the expected share of impressions that get clicked; the
	// click model's intercept is calibrated to it. Default 0.08.
	TargetCTR float64
	// AffinityWeight multiplies the user·item affinity in the click logit.
	// Default 2.
	AffinityWeight float64
	// PopularityWeight multiplies the popularity term pop(i) ∈ [0,1] in the
	// click logit. Default 1.
	PopularityWeight float64
	// PositionDecay is subtracted from the click logit per list position.
	// Default 0.1.
	PositionDecay float64

	// WatchProb is the probability that a click is followed by a watch.
	// Default 0.9.
	WatchProb float64
	// ItemLengthMedian is the median item length in seconds (log-normal).
	// Default 240.
	ItemLengthMedian float64
	// ItemLengthSigma is the log-normal shape of item lengths. Default 0.8.
	ItemLengthSigma float64
	// CompletionBias and CompletionWeight give the probability that a watch
	// runs (nearly) to the end: sigmoid(CompletionBias +
	// CompletionWeight·affinity). Defaults −1.5 and 1.5.
	CompletionBias   float64
	CompletionWeight float64

	// LikeRate scales P(like | watch) = LikeRate·ratio·2·sigmoid(a).
	// Default 0.08.
	LikeRate float64
	// DislikeRate scales P(dislike | watch) =
	// DislikeRate·(1−ratio)·2·sigmoid(−a). Default 0.2.
	DislikeRate float64
	// SkipRate is P(skip | watch ratio < 0.1). Default 0.5.
	SkipRate float64
	// PurchaseRate scales P(purchase | watch ratio ≥ 0.5) =
	// PurchaseRate·2·sigmoid(a). Default 0.02.
	PurchaseRate float64
	// RatingRate is P(rating | watch). Default 0.03.
	RatingRate float64

	// Start is the time of the stream's first event. Default
	// 2025-01-01T00:00:00Z, fixed so that output is reproducible.
	Start time.Time
	// MeanInterEvent is the mean gap between consecutive event times
	// (exponential). Event time is simulated; pacing in wall-clock time is
	// the caller's job. Default 20ms.
	MeanInterEvent time.Duration

	// DriftAt injects drift before the event with this 0-based index, so
	// events DriftAt, DriftAt+1, ... come from the changed model. 0 = none.
	DriftAt int64
	// DriftAtTime injects drift at the first event whose time is at or after
	// it. The zero time = none. At most one of DriftAt and DriftAtTime may
	// be set, and DriftKind must be set with either.
	DriftAtTime time.Time
	// DriftKind is what changes at the drift point.
	DriftKind DriftKind
	// DriftStrength in (0,1] scales the change (see the package
	// documentation). Default 1.
	DriftStrength float64
}

// DefaultConfig returns the documented defaults: 10,000 users, 5,000 items,
// 16 latent dimensions, Zipf 1.1 popularity, lists of 10, CTR 8 %, no drift.
func DefaultConfig() Config {
	return Config{
		Seed:                  1,
		Users:                 10_000,
		Items:                 5_000,
		Dim:                   16,
		ZipfS:                 1.1,
		UserActivityS:         0.8,
		Explore:               0.2,
		ImpressionsPerRequest: 10,
		SessionLength:         4,
		ConcurrentSessions:    64,
		TargetCTR:             0.08,
		AffinityWeight:        2,
		PopularityWeight:      1,
		PositionDecay:         0.1,
		WatchProb:             0.9,
		ItemLengthMedian:      240,
		ItemLengthSigma:       0.8,
		CompletionBias:        -1.5,
		CompletionWeight:      1.5,
		LikeRate:              0.08,
		DislikeRate:           0.2,
		SkipRate:              0.5,
		PurchaseRate:          0.02,
		RatingRate:            0.03,
		Start:                 time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		MeanInterEvent:        20 * time.Millisecond,
		DriftStrength:         1,
	}
}

// Limits of Validate. They keep memory bounded (vectors are float32) and the
// millisecond clock inside int64.
const (
	maxUsersItems   = 50_000_000
	maxDim          = 512
	maxVectorFloats = 1 << 28 // 1 GiB of float32
	maxImpressions  = 100
	maxSessions     = 100_000
)

var (
	minStart = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxStart = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Validate reports every field that breaks its rule, joined into one error
// that names each field and the rule.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, v any, rule string) {
		errs = append(errs, fmt.Errorf("synth: %s = %v: %s", field, v, rule))
	}
	intIn := func(field string, v, lo, hi int) {
		if v < lo || v > hi {
			bad(field, v, fmt.Sprintf("must be in [%d, %d]", lo, hi))
		}
	}
	// floatIn rejects NaN too, because every comparison with NaN is false.
	floatIn := func(field string, v, lo, hi float64) {
		if !(v >= lo && v <= hi) {
			bad(field, v, fmt.Sprintf("must be in [%g, %g]", lo, hi))
		}
	}
	intIn("Users", c.Users, 1, maxUsersItems)
	intIn("ImpressionsPerRequest", c.ImpressionsPerRequest, 1, maxImpressions)
	intIn("Items", c.Items, max(1, c.ImpressionsPerRequest), maxUsersItems)
	intIn("Dim", c.Dim, 1, maxDim)
	if c.Users > 0 && c.Items > 0 && c.Dim > 0 && (int64(c.Users)+int64(c.Items))*int64(c.Dim) > maxVectorFloats {
		bad("(Users+Items)*Dim", (int64(c.Users)+int64(c.Items))*int64(c.Dim), fmt.Sprintf("must be at most %d", maxVectorFloats))
	}
	floatIn("ZipfS", c.ZipfS, 0, 5)
	floatIn("UserActivityS", c.UserActivityS, 0, 5)
	floatIn("Explore", c.Explore, 0, 1)
	floatIn("SessionLength", c.SessionLength, 1, 1e6)
	intIn("ConcurrentSessions", c.ConcurrentSessions, 1, maxSessions)
	floatIn("TargetCTR", c.TargetCTR, 1e-4, 0.9)
	floatIn("AffinityWeight", c.AffinityWeight, 0, 20)
	floatIn("PopularityWeight", c.PopularityWeight, 0, 20)
	floatIn("PositionDecay", c.PositionDecay, 0, 10)
	floatIn("WatchProb", c.WatchProb, 0, 1)
	floatIn("ItemLengthMedian", c.ItemLengthMedian, 1, 1e6)
	floatIn("ItemLengthSigma", c.ItemLengthSigma, 0, 5)
	floatIn("CompletionBias", c.CompletionBias, -20, 20)
	floatIn("CompletionWeight", c.CompletionWeight, 0, 20)
	floatIn("LikeRate", c.LikeRate, 0, 1)
	floatIn("DislikeRate", c.DislikeRate, 0, 1)
	floatIn("SkipRate", c.SkipRate, 0, 1)
	floatIn("PurchaseRate", c.PurchaseRate, 0, 1)
	floatIn("RatingRate", c.RatingRate, 0, 1)
	if c.Start.Before(minStart) || !c.Start.Before(maxStart) {
		bad("Start", c.Start.Format(time.RFC3339Nano), "must be in [1970-01-01, 2200-01-01)")
	}
	if c.MeanInterEvent <= 0 || c.MeanInterEvent > 24*time.Hour {
		bad("MeanInterEvent", c.MeanInterEvent, "must be in (0, 24h]")
	}
	if c.DriftAt < 0 {
		bad("DriftAt", c.DriftAt, "must be at least 0 (0 = no drift)")
	}
	if int(c.DriftKind) >= len(driftKindNames) {
		bad("DriftKind", uint8(c.DriftKind), "unknown drift kind")
	}
	hasTrigger := c.DriftAt > 0 || !c.DriftAtTime.IsZero()
	switch {
	case c.DriftAt > 0 && !c.DriftAtTime.IsZero():
		bad("DriftAtTime", c.DriftAtTime.Format(time.RFC3339Nano), "must be zero when DriftAt is set (one trigger only)")
	case hasTrigger && c.DriftKind == DriftNone:
		bad("DriftKind", c.DriftKind, "must be set when DriftAt or DriftAtTime is")
	case !hasTrigger && c.DriftKind != DriftNone:
		bad("DriftKind", c.DriftKind, "needs DriftAt or DriftAtTime")
	}
	if !(c.DriftStrength > 0 && c.DriftStrength <= 1) {
		bad("DriftStrength", c.DriftStrength, "must be in (0, 1]")
	}
	if !c.DriftAtTime.IsZero() && !c.DriftAtTime.Before(maxStart) {
		bad("DriftAtTime", c.DriftAtTime.Format(time.RFC3339Nano), "must be before 2200-01-01")
	}
	return errors.Join(errs...)
}
