package learner

import (
	"fmt"
	"math"

	"github.com/eddyrec/eddy/event"
)

// Confidence turns an event into a training signal for the MF: a label (1
// pulls the user and item together, 0 pushes them apart) and a weight. The
// weights encode how much an interaction says about taste: a watch near its
// end or a like counts more than a click; skips and dislikes are negatives.
type Confidence struct {
	Click    float32 // positive weight of a click. Default 1.
	Like     float32 // positive weight of a like. Default 2.
	Purchase float32 // positive weight of a purchase. Default 2.
	Dislike  float32 // negative weight of a dislike. Default 1.
	Skip     float32 // negative weight of a skip. Default 0.5.

	// A watch with ratio r ≥ WatchPositiveAt is a positive of weight
	// WatchBase + WatchGain·r; below WatchNegativeBelow it is a negative of
	// weight WatchNegative (the user abandoned it); in between it is
	// ignored. A watch without a duration is a positive of weight
	// WatchBase + WatchGain/2. Defaults 0.3, 0.1, 0.5, 1.5, 0.5.
	WatchPositiveAt    float32
	WatchNegativeBelow float32
	WatchBase          float32
	WatchGain          float32
	WatchNegative      float32

	// A rating v ≥ RatingPositiveAt is a positive of weight
	// 1 + RatingGain·(v − RatingPositiveAt); RatingWeakAt ≤ v <
	// RatingPositiveAt is a weak positive of weight RatingWeak (the user
	// chose to watch it); lower ratings are negatives of weight
	// RatingNegative. Defaults 4, 0.5, 3, 0.6, 0.5 (measured on MovieLens:
	// what a user bothers to rate says more than the rating itself).
	RatingPositiveAt float32
	RatingGain       float32
	RatingWeakAt     float32
	RatingWeak       float32
	RatingNegative   float32
}

// DefaultConfidence returns the defaults documented on Confidence.
func DefaultConfidence() Confidence {
	return Confidence{
		Click: 1, Like: 2, Purchase: 2, Dislike: 1, Skip: 0.5,
		WatchPositiveAt: 0.3, WatchNegativeBelow: 0.1, WatchBase: 0.5, WatchGain: 1.5, WatchNegative: 0.5,
		RatingPositiveAt: 4, RatingGain: 0.5, RatingWeakAt: 3, RatingWeak: 0.6, RatingNegative: 0.5,
	}
}

// Validate reports the first negative or non-finite weight.
func (c Confidence) Validate() error {
	for _, f := range []struct {
		name string
		v    float32
	}{
		{"click", c.Click}, {"like", c.Like}, {"purchase", c.Purchase}, {"dislike", c.Dislike},
		{"skip", c.Skip}, {"watch positive at", c.WatchPositiveAt},
		{"watch negative below", c.WatchNegativeBelow}, {"watch base", c.WatchBase},
		{"watch gain", c.WatchGain}, {"watch negative", c.WatchNegative},
		{"rating positive at", c.RatingPositiveAt}, {"rating gain", c.RatingGain},
		{"rating weak at", c.RatingWeakAt}, {"rating weak", c.RatingWeak},
		{"rating negative", c.RatingNegative},
	} {
		if math.IsNaN(float64(f.v)) || math.IsInf(float64(f.v), 0) || f.v < 0 {
			return fmt.Errorf("learner: confidence %s %v: want a finite value ≥ 0", f.name, f.v)
		}
	}
	return nil
}

// Signal returns the label and weight of ev. A zero weight means the event
// carries no MF signal (impressions; watches of middling ratio).
func (c Confidence) Signal(ev *event.Event) (label, weight float32) {
	switch ev.Type {
	case event.Click:
		return 1, c.Click
	case event.Like:
		return 1, c.Like
	case event.Purchase:
		return 1, c.Purchase
	case event.Dislike:
		return 0, c.Dislike
	case event.Skip:
		return 0, c.Skip
	case event.Watch:
		r := ev.WatchRatio()
		switch {
		case r < 0:
			return 1, c.WatchBase + c.WatchGain/2
		case float32(r) >= c.WatchPositiveAt:
			return 1, c.WatchBase + c.WatchGain*float32(r)
		case float32(r) < c.WatchNegativeBelow:
			return 0, c.WatchNegative
		}
		return 0, 0
	case event.Rating:
		if !ev.HasValue {
			return 0, 0
		}
		v := float32(ev.Value)
		switch {
		case v >= c.RatingPositiveAt:
			return 1, 1 + c.RatingGain*(v-c.RatingPositiveAt)
		case v >= c.RatingWeakAt:
			return 1, c.RatingWeak
		}
		return 0, c.RatingNegative
	}
	return 0, 0
}

// Positive reports whether ev is a clear positive, the kind of event
// prequential evaluation scores a recommendation against: a click, like or
// purchase, a watch of ratio ≥ WatchPositiveAt (or without a duration), a
// rating ≥ RatingPositiveAt.
func (c Confidence) Positive(ev *event.Event) bool {
	switch ev.Type {
	case event.Click, event.Like, event.Purchase:
		return true
	case event.Watch:
		r := ev.WatchRatio()
		return r < 0 || float32(r) >= c.WatchPositiveAt
	case event.Rating:
		return ev.HasValue && float32(ev.Value) >= c.RatingPositiveAt
	}
	return false
}
