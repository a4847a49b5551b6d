package retrain

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/eddyrec/eddy/connectors/archive"
	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/trainset"
)

// ErrNoData is returned when the archive holds no event up to the
// acknowledged offsets (within the window).
var ErrNoData = errors.New("retrain: the archive holds no events to train on")

// dataset is a run's events, divided at the cut-off.
type dataset struct {
	set   *trainset.Set
	train []bool // the events before the cut-off (per-partition offsets)
	rng   DataRange
}

type archivedEvent struct {
	ev        event.Event
	partition int32
	offset    int64
}

// collect reads the archived events acknowledged before ends (per
// partition), keeps the last window of them (by event time) and divides
// them at cut-off = newest − holdout: the challenger the gate judges
// learns from the events before the cut-off, both models are judged on
// the rest. (The served model, trained once the gate has promoted, learns
// from all of them: the stages re-apply what came after ends.)
//
// notBefore, when set, moves the cut-off to at least that time: the live
// version's batch model learned from every event up to it, and judging it
// on events it learned from would favour it.
func collect(ctx context.Context, st archive.Store, ends map[int32]int64, window, holdout time.Duration, notBefore time.Time, conf learner.Confidence, progress func(archive.ScanStats)) (*dataset, error) {
	var evs []archivedEvent
	var bad int
	stats, err := archive.ScanEvents(ctx, st, archive.ScanOptions{SkipContext: true, Progress: progress}, func(r *archive.EventRow) error {
		if end, ok := ends[r.Partition]; !ok || r.Offset >= end {
			return nil // archived after the run began
		}
		ev, err := r.Event()
		if err != nil {
			bad++ // an event type this build cannot read: counted
			return nil
		}
		evs = append(evs, archivedEvent{ev: ev, partition: r.Partition, offset: r.Offset})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("retrain: scan the archive: %w", err)
	}
	d := &dataset{rng: DataRange{Files: stats.Files, Rows: stats.Rows, EndOffsets: ends}}
	if len(evs) == 0 {
		return nil, fmt.Errorf("%w (%d files read, end offsets %v)", ErrNoData, stats.Files, ends)
	}
	slices.SortStableFunc(evs, func(a, b archivedEvent) int { return a.ev.Time.Compare(b.ev.Time) })
	newest := evs[len(evs)-1].ev.Time
	from := newest.Add(-window)
	first, _ := slices.BinarySearchFunc(evs, from, func(a archivedEvent, t time.Time) int { return a.ev.Time.Compare(t) })
	evs = evs[first:]
	cutoff := newest.Add(-holdout).Truncate(time.Millisecond)
	if notBefore.After(cutoff) {
		cutoff = notBefore
	}
	b := trainset.NewBuilder(conf)
	for i := range evs {
		e := &evs[i]
		if b.Add(&e.ev) {
			d.train = append(d.train, e.ev.Time.Before(cutoff))
		}
	}
	d.set = b.Set() // already in time order: no permutation, train stays aligned
	if !slices.IsSortedFunc(d.set.TsMillis, cmp.Compare[int64]) {
		return nil, errors.New("retrain: internal error: events out of order after sorting")
	}
	d.rng.From, d.rng.To, d.rng.Cutoff = evs[0].ev.Time.UTC(), newest.UTC(), cutoff.UTC()
	d.rng.Events, d.rng.Users, d.rng.Items = d.set.Len(), d.set.Users.Len(), d.set.Items.Len()
	for _, ok := range d.train {
		if ok {
			d.rng.TrainEvents++
		} else {
			d.rng.HoldoutEvents++
		}
	}
	d.rng.Unreadable = bad
	return d, nil
}
