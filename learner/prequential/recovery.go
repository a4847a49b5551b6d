package prequential

import "math"

// frozenSplit is the index of the first event the frozen model does not
// learn from.
func frozenSplit(cfg *Config, events int) int {
	return int(cfg.FrozenFrac * float64(events))
}

// RecoverAt is the share of its pre-shift HR a model must be back to, as
// the mean of RecoverSpan consecutive windows, to count as recovered.
const (
	RecoverAt   = 0.9
	RecoverSpan = 3
)

// Recovery describes one model's HR@K around a known change in the stream
// (Config.Shift). Windows are the result's windows of Config.Window scored
// positives; the window that straddles the shift belongs to neither side.
type Recovery struct {
	Model string `json:"-"`
	// Before is the mean HR of the windows that lie wholly after the
	// frozen model's training prefix (or the stream's start, when the
	// frozen model did not run) and before the shift, over BeforeWindows
	// windows: the level every model is compared with.
	Before        float64 `json:"hr_before"`
	BeforeWindows int     `json:"windows_before"`
	// Dip is the lowest window HR among the first RecoverSpan windows after
	// the shift.
	Dip float64 `json:"hr_dip"`
	// Tail is the mean HR of the last TailWindows windows of the stream,
	// after the shift: the level the model settled at.
	Tail        float64 `json:"hr_tail"`
	TailWindows int     `json:"windows_tail"`
	// Ratio is Tail / Before (NaN when Before is 0).
	Ratio float64 `json:"ratio"`
	// RecoverWindows counts the windows from the shift until the mean of
	// RecoverSpan consecutive windows first reaches RecoverAt·Before, that
	// run included; -1 when it never does.
	RecoverWindows int `json:"recover_windows"`
}

// recovery measures m around the shift at event index shift, comparing
// with windows that start at or after event from.
func recovery(r *Result, m *ModelResult, from, shift, tail int) Recovery {
	rc := Recovery{Model: m.Name, Ratio: math.NaN(), RecoverWindows: -1}
	first := -1 // first window wholly after the shift
	var sum float64
	for w, end := range r.WindowEndEvent {
		start := 0
		if w > 0 {
			start = r.WindowEndEvent[w-1] + 1
		}
		switch {
		case start >= from && end < shift:
			sum += m.WindowHR[w]
			rc.BeforeWindows++
		case start >= shift && first < 0:
			first = w
		}
	}
	if rc.BeforeWindows > 0 {
		rc.Before = sum / float64(rc.BeforeWindows)
	}
	if first < 0 {
		return rc
	}
	post := m.WindowHR[first:]
	// A last window of under half the usual size is too noisy to judge by.
	if last := r.Positives - (len(r.WindowEndEvent)-1)*r.Window; len(post) > 1 && 2*last < r.Window {
		post = post[:len(post)-1]
	}
	rc.Dip = math.Inf(1)
	for _, v := range post[:min(RecoverSpan, len(post))] {
		rc.Dip = min(rc.Dip, v)
	}
	switch {
	case tail <= 0:
		tail = max(1, len(post)/2)
	case tail > len(post):
		tail = len(post)
	}
	rc.TailWindows = tail
	sum = 0
	for _, v := range post[len(post)-tail:] {
		sum += v
	}
	rc.Tail = sum / float64(tail)
	if rc.Before > 0 {
		rc.Ratio = rc.Tail / rc.Before
	}
	for w := 0; w+RecoverSpan <= len(post); w++ {
		var s float64
		for _, v := range post[w : w+RecoverSpan] {
			s += v
		}
		if rc.BeforeWindows > 0 && s/RecoverSpan >= RecoverAt*rc.Before {
			rc.RecoverWindows = w + RecoverSpan
			break
		}
	}
	return rc
}

// RecoveryOf returns the named model's recovery, or nil.
func (r *Result) RecoveryOf(name string) *Recovery {
	for i := range r.Recovery {
		if r.Recovery[i].Model == name {
			return &r.Recovery[i]
		}
	}
	return nil
}
