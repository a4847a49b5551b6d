package features

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/stream"
	"github.com/eddyrec/eddy/stream/task"
)

// driftTestHeader is the header the tests ask the copies to carry (the
// drift role's; features does not import drift).
var driftTestHeader = kgo.RecordHeader{Key: "eddy-drift-source", Value: []byte("events")}

// withDrift returns cfg copying a sample of users to the topic input,
// created here with the events topic's partition count.
func (e *stageEnv) withDrift(t *testing.T, cfg Config, sample float64) Config {
	t.Helper()
	cfg.DriftSample = sample
	cfg.DriftInput = e.k.Layout.Name("drift.input")
	cfg.DriftHeaderKey, cfg.DriftHeaderValue = driftTestHeader.Key, string(driftTestHeader.Value)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	spec := stream.TopicSpec{Name: cfg.DriftInput, Partitions: e.k.Layout.Partitions, ReplicationFactor: 1}
	if _, err := stream.EnsureTopics(ctx, kadm.NewClient(e.k.NewClient(t)), []stream.TopicSpec{spec}); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// copyView names a record by where it is and what it holds.
func copyView(r *kgo.Record) string {
	return fmt.Sprintf("p%d %s %s @%d", r.Partition, r.Key, r.Value, r.Timestamp.UnixMilli())
}

// TestDriftCopies: with a drift sample the user stage copies every record
// of the sampled users (duplicates and invalid records too), unchanged —
// key, value, timestamp and partition — with the drift header, once each
// across a stop and a restart; with no sample it copies nothing.
func TestDriftCopies(t *testing.T) {
	e := newStageEnv(t, 3, 300, 200)
	const sample = 0.3
	cfg := e.withDrift(t, e.config(), sample)
	dir := t.TempDir()
	e.produce(t, 6000, 300, 4)
	r := e.start(t, cfg, dir)
	deadline := time.Now().Add(60 * time.Second)
	for r.p.Stats().Events < uint64(len(e.sent)) {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: the stage did not start", r.p.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.stop(t)
	first := r.p.Stats()
	// The restart resumes from the stored offsets: nothing is copied again.
	r = e.start(t, cfg, dir)
	e.produce(t, 2000, 200, 2)
	e.waitMatch(t, 60*time.Second, r.p)
	r.stop(t)

	rule := task.NewForwarder(task.ForwardConfig{Sample: sample})
	var want []string
	for _, rec := range e.k.ReadAll(t, e.topics.Events) {
		if rule.Sampled(rec.Key) {
			want = append(want, copyView(rec))
		}
	}
	var got []string
	for _, rec := range e.k.ReadAll(t, cfg.DriftInput) {
		if len(rec.Headers) != 1 || rec.Headers[0].Key != driftTestHeader.Key || string(rec.Headers[0].Value) != string(driftTestHeader.Value) {
			t.Fatalf("copy %s has headers %v, want only %v", copyView(rec), rec.Headers, driftTestHeader)
		}
		got = append(got, copyView(rec))
	}
	slices.Sort(want)
	slices.Sort(got)
	if len(want) < 1000 {
		t.Fatalf("only %d records of sampled users: the test samples too few", len(want))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("drift input holds %d copies, want the %d records of sampled users once each", len(got), len(want))
	}
	if n := first.DriftCopies + r.p.Stats().DriftCopies; n != uint64(len(want)) {
		t.Errorf("stats count %d copies, want %d", n, len(want))
	}

	// No sample: nothing is copied.
	off := newStageEnv(t, 1, 50, 40)
	cfg = off.withDrift(t, off.config(), 0)
	off.produce(t, 300, 0, 1)
	r = off.start(t, cfg, t.TempDir())
	off.waitMatch(t, 60*time.Second, r.p)
	r.stop(t)
	if n := len(off.k.ReadAll(t, cfg.DriftInput)); n != 0 || r.p.Stats().DriftCopies != 0 {
		t.Fatalf("drift sample 0: %d copies in the input topic, stats %+v", n, r.p.Stats())
	}
}
