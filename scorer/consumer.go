package scorer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Topics names the model topics the scorer replays.
type Topics struct {
	Users, Items, Ranker string
	// Versions is the retrain role's model.versions: with it, a promoted
	// version is built beside the live one and swapped in whole ("" reads
	// every record into the live state, as before retraining existed).
	Versions string
}

// headerVersion marks a promotion's vectors (retrain.HeaderVersion; not
// imported, to keep the scorer free of the batch trainer's dependencies).
const headerVersion = "eddy-model-version"

// Consumer replays the model topics into a State: every partition from
// the beginning, with direct partition consumption (no consumer group), so
// any number of scorers can run side by side and each holds the whole
// model. It is ready once it has applied everything up to the end offsets
// it saw at start. When the broker becomes unreachable it keeps the state
// it has (the scorer keeps serving) and reports the loss in Ready and the
// eddy_scorer_kafka_connected metric.
type Consumer struct {
	s      *Scorer
	topics Topics
	cl     *kgo.Client
	log    *slog.Logger

	// Promotion (only the consumer's goroutine touches these): live is the
	// version requests read once a promotion has been swapped in (0
	// before: every record goes to the live state); next is the promoted
	// version being built, nextVersion its number; promoted holds each
	// promoted version's publication, read from Versions.
	opts        []kgo.Opt
	live        uint64
	next        *State
	nextVersion uint64
	promoted    map[uint64]*publication

	mu        sync.Mutex
	target    map[string]map[int32]int64 // end offsets at start
	done      map[string]map[int32]int64 // next offset applied
	ready     bool
	lostSince time.Time
	lastErr   error
}

// NewConsumer returns a consumer that applies topics to s's state using
// client options opts (brokers, TLS, SASL: stream.ClientConfig.Opts).
// The consumer owns the client it creates.
func NewConsumer(s *Scorer, topics Topics, log *slog.Logger, opts ...kgo.Opt) (*Consumer, error) {
	base := append([]kgo.Opt(nil), opts...)
	consume := []string{topics.Users, topics.Items, topics.Ranker}
	if topics.Versions != "" {
		consume = append(consume, topics.Versions)
	}
	opts = append(opts,
		kgo.ConsumeTopics(consume...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond),
		// The learner writes the model topics in Kafka transactions: read
		// only committed records, and keep the transaction markers so that
		// catching up to the start offsets can be seen (a marker takes the
		// last offset of a partition).
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("scorer: kafka client: %w", err)
	}
	return &Consumer{s: s, topics: topics, cl: cl, log: log, done: map[string]map[int32]int64{},
		opts: base, promoted: map[uint64]*publication{}}, nil
}

// Close closes the consumer's client.
func (c *Consumer) Close() { c.cl.Close() }

// Ready is a readiness check: nil once caught up and while Kafka is
// reachable.
func (c *Consumer) Ready(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.ready && c.target == nil:
		return errors.New("reading end offsets of the model topics")
	case !c.ready:
		return fmt.Errorf("catching up with the model topics (%s)", c.progressLocked())
	case !c.lostSince.IsZero():
		return fmt.Errorf("kafka unreachable since %s (%v); serving the last state", c.lostSince.UTC().Format(time.RFC3339), c.lastErr)
	}
	return nil
}

func (c *Consumer) progressLocked() string {
	var want, have int64
	for t, parts := range c.target {
		for p, end := range parts {
			want += end
			have += min(end, c.done[t][p])
		}
	}
	return fmt.Sprintf("%d of %d records", have, want)
}

// caughtUpLocked reports whether every partition reached its start end
// offset.
func (c *Consumer) caughtUpLocked() bool {
	for t, parts := range c.target {
		for p, end := range parts {
			if c.done[t][p] < end {
				return false
			}
		}
	}
	return true
}

// Run consumes until ctx is done. It returns nil on cancellation.
func (c *Consumer) Run(ctx context.Context) error {
	mctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	go func() { defer close(done); c.monitor(mctx, 2*time.Second) }()
	defer func() { stop(); <-done }()
	if err := c.loadTargets(ctx); err != nil {
		return err
	}
	if err := c.loadVersions(ctx); err != nil {
		// Not fatal: promotions are then recognised by their marked
		// vectors and the version records read below.
		c.log.Warn("scorer: could not read the model versions before replaying", "err", err)
	}
	var (
		users, items         []Record
		nextUsers, nextItems []Record
		frozenAt             time.Time // when the frozen copy was last taken
	)
	for ctx.Err() == nil {
		fs := c.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var fetchErr error
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.Canceled) {
				fetchErr = err
			}
		})
		if fetchErr != nil {
			c.noteConnectivity(ctx, fetchErr)
		}
		now := time.Now()
		var newest time.Time
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			users, items = users[:0], items[:0]
			nextUsers, nextItems = nextUsers[:0], nextItems[:0]
			for _, r := range p.Records {
				if r.Attrs.IsControl() {
					continue
				}
				if r.Timestamp.After(newest) {
					newest = r.Timestamp
				}
				switch p.Topic {
				case c.topics.Users, c.topics.Items:
					live, next := c.route(r)
					rec := Record{Key: r.Key, Value: r.Value}
					if p.Topic == c.topics.Users {
						if live {
							users = append(users, rec)
						}
						if next {
							nextUsers = append(nextUsers, rec)
						}
					} else {
						if live {
							items = append(items, rec)
						}
						if next {
							nextItems = append(nextItems, rec)
						}
					}
				case c.topics.Versions:
					c.noteVersion(r.Value)
				case c.topics.Ranker:
					if err := c.s.State().ApplyRanker(r.Value); err != nil {
						c.reject(p.Topic, 1, err)
					} else {
						c.s.metrics.applied.WithLabelValues(p.Topic).Inc()
					}
				}
			}
			st := c.s.State()
			c.applyBatch(p.Topic, users, st.ApplyUsers)
			c.applyBatch(p.Topic, items, st.ApplyItems)
			if c.next != nil {
				c.applyBatch(p.Topic, nextUsers, c.next.ApplyUsers)
				c.applyBatch(p.Topic, nextItems, c.next.ApplyItems)
			}
			last := p.Records[len(p.Records)-1]
			c.mu.Lock()
			if c.done[p.Topic] == nil {
				c.done[p.Topic] = map[int32]int64{}
			}
			c.done[p.Topic][p.Partition] = last.Offset + 1
			c.mu.Unlock()
		})
		if !newest.IsZero() {
			c.s.metrics.applyLag.Set(max(0, now.Sub(newest).Seconds()))
		}
		c.swapIfComplete()
		c.mu.Lock()
		if !c.ready && c.caughtUpLocked() {
			c.ready = true
			c.log.Info("scorer caught up with the model topics", "progress", c.progressLocked())
		}
		ready := c.ready
		c.mu.Unlock()
		if ready && c.s.wantFrozen && c.frozenDue(frozenAt) {
			c.s.Freeze()
			v, at := c.s.FrozenVersion()
			frozenAt = at
			c.log.Info("frozen variant's model copy taken", "model_version", v, "took", time.Since(at).Round(time.Millisecond))
		}
	}
	return nil
}

// frozenDue reports whether the frozen variants' copy is to be (re)taken
// now that the consumer is caught up: the first time; again while the copy
// holds no item or no user (a scorer started before the learner published anything
// would otherwise freeze an empty model); and every FrozenRefresh. Checked
// after each fetch, so an idle model topic delays a refresh until its next
// record, which is when there is something new to copy.
func (c *Consumer) frozenDue(last time.Time) bool {
	f := c.s.frozen.Load()
	switch {
	case f == nil || f.live == 0 || len(f.users) == 0 || f.src != c.s.State():
		return true
	case c.s.cfg.FrozenRefresh > 0:
		return time.Since(last) >= c.s.cfg.FrozenRefresh
	}
	return false
}

func (c *Consumer) applyBatch(topic string, recs []Record, apply func([]Record) (int, error)) {
	if len(recs) == 0 {
		return
	}
	n, err := apply(recs)
	c.s.metrics.applied.WithLabelValues(topic).Add(float64(n))
	if err != nil {
		c.reject(topic, len(recs)-n, err)
	}
}

func (c *Consumer) reject(topic string, n int, err error) {
	c.s.metrics.rejected.WithLabelValues(topic).Add(float64(n))
	c.log.Warn("model records rejected", "topic", topic, "count", n, "first_error", err)
}

// monitor pings the cluster every interval: PollFetches does not return
// while no broker answers, so broker loss must be detected beside it.
func (c *Consumer) monitor(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, interval)
		err := c.cl.Ping(pctx)
		cancel()
		c.noteConnectivity(ctx, err)
	}
}

// noteConnectivity records the outcome of a ping or fetch: an error marks
// Kafka unreachable until a ping succeeds again.
func (c *Consumer) noteConnectivity(ctx context.Context, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil && ctx.Err() == nil {
		if c.lostSince.IsZero() {
			c.lostSince = time.Now()
			c.log.Warn("kafka unreachable; serving the last state", "err", err)
		}
		c.lastErr = err
		c.s.metrics.connected.Set(0)
		return
	}
	if !c.lostSince.IsZero() {
		c.log.Info("kafka reachable again", "down_for", time.Since(c.lostSince).Round(time.Millisecond))
	}
	c.lostSince, c.lastErr = time.Time{}, nil
	c.s.metrics.connected.Set(1)
}

// loadTargets records the last stable offsets at start (the end of what a
// read_committed reader can see), retrying until the broker answers or ctx
// ends.
func (c *Consumer) loadTargets(ctx context.Context) error {
	adm := kadm.NewClient(c.cl)
	for {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ends, err := adm.ListCommittedOffsets(lctx, c.topics.Users, c.topics.Items, c.topics.Ranker)
		cancel()
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			target := map[string]map[int32]int64{}
			ends.Each(func(o kadm.ListedOffset) {
				if target[o.Topic] == nil {
					target[o.Topic] = map[int32]int64{}
				}
				target[o.Topic][o.Partition] = o.Offset
			})
			c.mu.Lock()
			c.target = target
			if c.caughtUpLocked() {
				c.ready = true
			}
			c.mu.Unlock()
			c.s.metrics.connected.Set(1)
			return nil
		}
		c.noteConnectivity(ctx, err)
		c.log.Warn("scorer: cannot read end offsets of the model topics; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
}
