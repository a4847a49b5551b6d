package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/drift"
	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/synth"
	"github.com/eddyrec/eddy/learner/modelrec"
	"github.com/eddyrec/eddy/stream"
	"github.com/eddyrec/eddy/stream/task"
)

// listSink is an eventSink that also takes the served list of each
// request the generator begins (eddy gen --recs).
type listSink interface {
	served(g *synth.Generator, first *event.Event, items []int32)
}

// genRecs makes the served-list records a scorer would have logged for
// the synthetic stream's requests, for a drift role to watch without a
// scorer: the request's impressions in order, the first impression's time,
// and the default ranker's five features at serving time, computed from
// the generator's ground truth (mf_score is the true affinity). With a
// drift sample it also makes the copies that eddy serve --drift-sample
// would (same bytes, the drift input topic, the source header).
type genRecs struct {
	topic    string
	drift    *task.Copier   // nil: no copies
	requests map[string]int // requests seen per user: user_log_activity
	pending  []*kgo.Record
}

var recsRecordHeaders = []kgo.RecordHeader{{Key: event.SchemaHeader, Value: []byte(drift.ServedListSchemaHeaderValue)}}

func (r *genRecs) served(g *synth.Generator, first *event.Event, items []int32) {
	u, _ := g.UserIndex(first.UserID)
	r.requests[first.UserID]++
	activity := math.Log1p(float64(r.requests[first.UserID]))
	nItems := float64(g.Config().Items)
	l := drift.ServedList{RequestID: first.RequestID, UserID: first.UserID, ModelVersion: "gen", Time: first.Time,
		Items: make([]drift.ServedItem, len(items))}
	for k, it := range items {
		i := int(it)
		weight, _ := g.Popularity(i)
		mf := f32(g.Affinity(u, i))
		// Sorted by name, as drift.Features are.
		l.Items[k] = drift.ServedItem{ItemID: g.ItemID(i), Position: k, Score: mf, Features: drift.Features{
			{Name: modelrec.FeatureItemCTR, Value: f32(math.Min(1, 0.05*weight*nItems))},
			{Name: modelrec.FeatureItemLogPopularity, Value: f32(math.Log1p(1e4 * weight))},
			{Name: modelrec.FeatureItemRecency, Value: f32(math.Mod(float64(i)*0.6180339887, 1))},
			{Name: modelrec.FeatureMFScore, Value: mf},
			{Name: modelrec.FeatureUserLogActivity, Value: f32(activity)},
		}}
	}
	v, err := json.Marshal(l)
	if err != nil {
		return // finite by construction; never happens
	}
	key := []byte(first.UserID)
	r.pending = append(r.pending, &kgo.Record{Topic: r.topic, Key: key, Value: v, Headers: recsRecordHeaders})
	if r.drift != nil {
		if c := r.drift.Copy(key, v, time.Time{}); c != nil {
			r.pending = append(r.pending, c)
		}
	}
}

// f32 rounds v to float32 as the scorer's features are (it logs float32
// values as float64).
func f32(v float64) float64 { return float64(float32(v)) }

// take returns the pending records and forgets them.
func (r *genRecs) take() []*kgo.Record {
	p := r.pending
	r.pending = nil
	return p
}

// newRecs returns the served-list maker of --recs; with a drift sample it
// first makes sure the drift input topic exists, as eddy serve does.
func (g *genFlags) newRecs(ctx context.Context, kf *kafkaFlags, log *slog.Logger) (*genRecs, error) {
	r := &genRecs{topic: kf.layout.Name(stream.TopicRecs), requests: map[string]int{}}
	switch {
	case g.recsDriftSample == 0:
		return r, nil
	case !(g.recsDriftSample > 0 && g.recsDriftSample <= 1):
		return nil, usageError{fmt.Errorf("--recs-drift-sample %v: want 0–1", g.recsDriftSample)}
	}
	input := driftTopics(kf, g.recsDriftGroup).Input
	if err := ensureDriftInput(ctx, kf, input, log); err != nil {
		return nil, err
	}
	r.drift = task.NewCopier(input, g.recsDriftSample, kgo.RecordHeader{Key: drift.SourceHeader, Value: []byte(drift.SourceRecs.String())})
	return r, nil
}
