package scorer

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/learner/modelrec"
	"github.com/eddyrec/eddy/stream"
)

// modelKafka is a broker with Eddy's model topics and a producer to them.
type modelKafka struct {
	k      *testkafka.Kafka
	topics Topics
	prod   *kgo.Client
}

func newModelKafka(t *testing.T, partitions int32) *modelKafka {
	k := testkafka.Start(t, partitions)
	return &modelKafka{k: k, prod: k.NewClient(t),
		topics: Topics{Users: k.Layout.Name(stream.TopicModelUsers), Items: k.Layout.Name(stream.TopicModelItems), Ranker: k.Layout.Name(stream.TopicModelRanker)}}
}

func (m *modelKafka) produce(t *testing.T, topic string, recs ...Record) {
	t.Helper()
	for _, r := range recs {
		if err := m.prod.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// newScorer returns a scorer with cfg and a consumer of the model topics
// into its state, not yet running; both are closed when the test ends.
func (m *modelKafka) newScorer(t *testing.T, cfg Config) (*Scorer, *Consumer) {
	t.Helper()
	s, err := New(cfg, NewState(cfg), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	kc := m.k.Client()
	opts, err := kc.Opts()
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewConsumer(s, m.topics, slog.New(slog.DiscardHandler), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return s, c
}

// recommendIDs returns the ids of user's top k, seen items excluded, and
// whether the answer was the fallback.
func recommendIDs(t *testing.T, s *Scorer, user string, k int) ([]string, bool) {
	t.Helper()
	resp, err := s.Recommend(context.Background(), Request{UserID: user, K: k, ExcludeSeen: true})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, it := range resp.Items {
		ids = append(ids, it.ItemID)
	}
	return ids, resp.Fallback
}

// run runs c until the test ends.
func run(t *testing.T, c *Consumer) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestConsumerReplaysAndFollowsModelTopics(t *testing.T) {
	m := newModelKafka(t, 3)
	k, topics, ctx := m.k, m.topics, context.Background()
	produce := func(topic string, recs ...Record) { t.Helper(); m.produce(t, topic, recs...) }
	// State that exists before the scorer starts.
	produce(topics.Items, itemRec(t, "a", []float32{3, 0}, 0, 1), itemRec(t, "b", []float32{2, 0}, 0, 1), itemRec(t, "c", []float32{1, 0}, 0, 1))
	produce(topics.Users, userRec(t, "u1", []float32{1, 0}, "a"))

	s, c := m.newScorer(t, DefaultConfig())
	if c.Ready(ctx) == nil {
		t.Fatal("ready before reading anything")
	}
	run(t, c)

	waitFor(t, "ready", func() bool { return c.Ready(ctx) == nil })
	recommend := func() []string { ids, _ := recommendIDs(t, s, "u1", 5); return ids }
	// Ready means caught up: the records produced before start are applied.
	if got := recommend(); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("after catch-up %v, want [b c]", got)
	}
	// Updates keep flowing: c overtakes b, a tombstone removes b, and the
	// user's seen list changes.
	produce(topics.Items, itemRec(t, "c", []float32{9, 0}, 0, 1), Record{Key: []byte("b")})
	produce(topics.Users, userRec(t, "u1", []float32{1, 0}, "c"))
	waitFor(t, "updates applied", func() bool { return slices.Equal(recommend(), []string{"a"}) })
	b, _ := modelrec.EncodeRanker(&modelrec.Ranker{Schema: 1, ModelVersion: 7, Features: []string{modelrec.FeatureMFScore}, Weights: []float64{1}})
	produce(topics.Ranker, Record{Key: []byte("default"), Value: b})
	waitFor(t, "ranker applied", func() bool { return s.State().ranker.Load() != nil && s.State().ModelVersion() == 7 })

	// Losing the broker: the scorer says so and keeps serving its state.
	if k.Embedded == nil {
		return
	}
	k.Embedded.Close()
	waitFor(t, "broker loss reported", func() bool {
		err := c.Ready(ctx)
		return err != nil && strings.Contains(err.Error(), "kafka unreachable")
	})
	if got := recommend(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("after broker loss %v, want [a]", got)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConsumerFreezesOnceCaughtUp: with a frozen variant the consumer takes
// the copy once it has caught up and holds users and items (not an empty
// model from before the learner published), then leaves it alone while the
// live model moves on (no --frozen-refresh).
func TestConsumerFreezesOnceCaughtUp(t *testing.T) {
	m := newModelKafka(t, 2)
	topics, ctx := m.topics, context.Background()
	produce := func(topic string, recs ...Record) { t.Helper(); m.produce(t, topic, recs...) }
	cfg := DefaultConfig()
	cfg.Variants = "frozen=1"
	s, c := m.newScorer(t, cfg)
	run(t, c)
	waitFor(t, "ready on empty topics", func() bool { return c.Ready(ctx) == nil })

	recommend := func() ([]string, bool) { return recommendIDs(t, s, "u1", 2) }
	// Items first: a copy without users is retaken until one has both.
	produce(topics.Items, itemRec(t, "a", []float32{3, 0}, 0, 1), itemRec(t, "b", []float32{2, 0}, 0, 1), itemRec(t, "c", []float32{1, 0}, 0, 9))
	waitFor(t, "items applied", func() bool { n, _, _ := s.State().Sizes(); return n == 3 })
	produce(topics.Users, userRec(t, "u1", []float32{1, 0}))
	waitFor(t, "frozen copy with u1", func() bool { ids, fb := recommend(); return !fb && slices.Equal(ids, []string{"a", "b"}) })
	_, at := s.FrozenVersion()

	// The live model turns u1 round; the frozen variant keeps the copy.
	produce(topics.Users, userRec(t, "u1", []float32{-1, 0}))
	waitFor(t, "live update", func() bool {
		s.State().mu.RLock()
		defer s.State().mu.RUnlock()
		return s.State().users["u1"].vec[0] == -1
	})
	produce(topics.Items, itemRec(t, "d", []float32{0, 1}, 0, 1))
	waitFor(t, "another batch", func() bool { n, _, _ := s.State().Sizes(); return n == 4 })
	if ids, fb := recommend(); fb || !slices.Equal(ids, []string{"a", "b"}) {
		t.Fatalf("frozen variant after live updates: %v fallback %v, want [a b] from the copy", ids, fb)
	}
	if _, at2 := s.FrozenVersion(); !at2.Equal(at) {
		t.Fatalf("copy retaken at %v (first %v) without --frozen-refresh", at2, at)
	}
}

func TestFrozenDue(t *testing.T) {
	full := &frozenModel{live: 1, users: map[string]frozenUser{"u": {}}}
	noUsers := &frozenModel{live: 1, users: map[string]frozenUser{}}
	now := time.Now()
	for _, tc := range []struct {
		name    string
		f       *frozenModel
		refresh time.Duration
		last    time.Time
		want    bool
	}{
		{"no copy yet", nil, 0, time.Time{}, true},
		{"copy without users", noUsers, 0, now, true},
		{"copy without items", &frozenModel{users: full.users}, 0, now, true},
		{"full copy, no refresh", full, 0, now.Add(-100 * time.Hour), false},
		{"full copy, refresh not due", full, time.Hour, now.Add(-59 * time.Minute), false},
		{"full copy, refresh due", full, time.Hour, now.Add(-61 * time.Minute), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.FrozenRefresh = tc.refresh
			c := &Consumer{s: &Scorer{cfg: cfg}}
			c.s.frozen.Store(tc.f)
			if got := c.frozenDue(tc.last); got != tc.want {
				t.Fatalf("frozenDue = %v, want %v", got, tc.want)
			}
		})
	}
}
