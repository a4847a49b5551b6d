package task

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddyrec/eddy/stream"
)

// Runtime is one member of a consumer group that runs a task per assigned
// partition of its source topic. Make it with New and call Run once.
type Runtime struct {
	cfg        Config
	factory    ProcessorFactory
	log        *slog.Logger
	m          *metrics
	changelog  string
	clientOpts []kgo.Opt

	store *store
	adm   *kadm.Client

	// taskCtx outlives Run's context so that tasks can finish their batch
	// when Run is asked to stop; it is canceled once they have.
	taskCtx    context.Context
	taskCancel context.CancelFunc

	mu     sync.Mutex
	tasks  map[int32]*task
	joined atomic.Bool // the group assigned partitions at least once

	failMu     sync.Mutex
	failErr    error
	pollCancel context.CancelFunc
	ran        bool
}

// New validates cfg and opens the state store. reg may be nil (no metrics
// are registered); log may be nil (slog.Default).
func New(cfg Config, factory ProcessorFactory, reg prometheus.Registerer, log *slog.Logger) (*Runtime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if factory == nil {
		return nil, errors.New("task: a ProcessorFactory is required")
	}
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "stream.task", "group", cfg.Group, "store", cfg.Store)
	opts, err := cfg.Client.Opts()
	if err != nil {
		return nil, fmt.Errorf("task: %w", err)
	}
	opts = append(opts, kgo.WithLogger(kgoLogger{log}))
	m, err := newMetrics(reg, cfg.Group, cfg.Store)
	if err != nil {
		return nil, err
	}
	st := newMemStore()
	if !cfg.InMemory {
		if st, err = openStore(cfg.storeDir(), cfg.MemTableSize, log); err != nil {
			return nil, err
		}
	}
	return &Runtime{
		cfg:        cfg,
		factory:    factory,
		log:        log,
		m:          m,
		changelog:  cfg.changelogTopic(),
		clientOpts: opts,
		store:      st,
		tasks:      map[int32]*task{},
	}, nil
}

// ChangelogTopic is the name of the runtime's changelog topic.
func (r *Runtime) ChangelogTopic() string { return r.changelog }

// PartitionStatus describes one partition task (see Status).
type PartitionStatus struct {
	Partition int32
	// Restoring is true until the task has caught up with its changelog.
	Restoring bool
	// Next is the next source offset to apply: the last batch committed to
	// Kafka ends just before it. -1 before the first batch.
	Next int64
	// Lag is the high watermark seen minus Next, -1 when unknown.
	Lag int64
}

// Status lists the partition tasks of this instance, by partition.
func (r *Runtime) Status() []PartitionStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]PartitionStatus, 0, len(r.tasks))
	for p, t := range r.tasks {
		s := PartitionStatus{Partition: p, Restoring: t.restoring.Load(), Next: t.committed.Load(), Lag: -1}
		if hwm := t.hwm.Load(); hwm >= 0 && s.Next >= 0 {
			s.Lag = max(hwm-s.Next, 0)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b PartitionStatus) int { return int(a.Partition - b.Partition) })
	return out
}

// Ready reports whether this member has joined its group and every
// partition it holds is restored and at most maxLag records behind the high
// watermark it last saw: the test for /readyz.
func (r *Runtime) Ready(maxLag int64) bool {
	if !r.joined.Load() || r.failed() != nil {
		return false
	}
	for _, s := range r.Status() {
		if s.Restoring || s.Lag > maxLag {
			return false
		}
	}
	return true
}

// fail records the first fatal error and stops the poll loop.
func (r *Runtime) fail(err error) {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	if r.failErr == nil {
		r.failErr = err
		if r.pollCancel != nil {
			r.pollCancel()
		}
	}
}

func (r *Runtime) failed() error {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	return r.failErr
}

// Run joins the group and processes until ctx is canceled (it then returns
// nil after committing the batches in progress) or a fatal error: a
// processor error, a Kafka transaction that cannot commit, a wiped broker
// under WipeFail. Run closes the state store when it returns; a Runtime
// runs once.
func (r *Runtime) Run(ctx context.Context) (err error) {
	if r.ran {
		return errors.New("task: Runtime.Run called twice")
	}
	r.ran = true
	defer func() {
		if cerr := r.store.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	admCl, err := kgo.NewClient(r.clientOpts...)
	if err != nil {
		return fmt.Errorf("task: new admin client: %w", err)
	}
	defer admCl.Close()
	r.adm = kadm.NewClient(admCl)
	if err := r.setup(ctx); err != nil {
		return err
	}

	pollCtx, pollCancel := context.WithCancel(ctx)
	defer pollCancel()
	r.failMu.Lock()
	r.pollCancel = pollCancel
	r.failMu.Unlock()
	r.taskCtx, r.taskCancel = context.WithCancel(context.Background())
	defer r.taskCancel()

	opts := append([]kgo.Opt(nil), r.clientOpts...)
	opts = append(opts,
		kgo.ConsumerGroup(r.cfg.Group),
		kgo.ConsumeTopics(r.cfg.Topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.BlockRebalanceOnPoll(),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(r.cfg.SessionTimeout),
		kgo.RebalanceTimeout(r.cfg.RebalanceTimeout),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// A fetch in flight is not widened to partitions assigned
		// while it waits; a short wait bounds how long a newly assigned
		// (or restored) partition sits idle. Data on fetched partitions
		// is answered at once either way (with FetchMinBytes 1).
		kgo.FetchMaxWait(r.cfg.FetchMaxWait),
		kgo.FetchMinBytes(r.cfg.FetchMinBytes),
		kgo.OnPartitionsAssigned(r.onAssigned),
		kgo.OnPartitionsRevoked(r.onRevoked),
		kgo.OnPartitionsLost(r.onLost),
		kgo.AdjustFetchOffsetsFn(r.adjustOffsets),
	)
	if r.cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(r.cfg.InstanceID))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("task: new group consumer: %w", err)
	}
	r.log.Info("joining group", "topic", r.cfg.Topic, "changelog", r.changelog, "state_dir", r.store.dir)
	r.poll(pollCtx, cl)

	// Shutdown: stop intake (no more polls) → let tasks finish and commit
	// their batch → final lag commit → leave the group → close the store.
	cl.AllowRebalance()
	crashed := errors.Is(r.failed(), errSimulatedCrash)
	r.mu.Lock()
	all := make([]*task, 0, len(r.tasks))
	for p, t := range r.tasks {
		all = append(all, t)
		delete(r.tasks, p)
	}
	r.mu.Unlock()
	r.stop(all, !crashed)
	if !crashed {
		r.commitLag(cl, all, true)
	}
	cl.Close()
	if err := r.failed(); err != nil {
		return err
	}
	r.log.Info("left group")
	return nil
}

// setup creates the changelog topic if it is missing (compacted, as many
// partitions as the source) and checks the cluster id the state belongs to.
func (r *Runtime) setup(ctx context.Context) error {
	tds, err := r.adm.ListTopics(ctx, r.cfg.Topic)
	if err != nil {
		return fmt.Errorf("task: describe source topic %q: %w", r.cfg.Topic, err)
	}
	td, ok := tds[r.cfg.Topic]
	if !ok || td.Err != nil {
		return fmt.Errorf("task: source topic %q does not exist (create it first: eddy topics create)", r.cfg.Topic)
	}
	parts := int32(len(td.Partitions))
	rf := r.cfg.ReplicationFactor
	if rf == 0 {
		rf = int16(td.Partitions.NumReplicas())
	}
	spec := stream.TopicSpec{Name: r.changelog, Partitions: parts, ReplicationFactor: rf, Compacted: true}
	if r.cfg.InMemory {
		// Every start of an in-memory runtime reads its changelog from
		// the start, and compaction skips a log's active segment (by
		// default up to 1 GiB or 7 days): small segments that roll
		// hourly keep what a restore reads near the live state.
		spec.Configs = map[string]string{"segment.bytes": strconv.Itoa(inMemorySegmentBytes), "segment.ms": "3600000"}
	}
	st, err := stream.EnsureTopics(ctx, r.adm, []stream.TopicSpec{spec})
	if err != nil {
		return fmt.Errorf("task: ensure changelog topic: %w", err)
	}
	if st[0].Partitions != parts {
		return fmt.Errorf("task: changelog topic %q has %d partitions, source %q has %d: they must match",
			r.changelog, st[0].Partitions, r.cfg.Topic, parts)
	}
	if st[0].Mismatch != "" {
		r.log.Warn("changelog topic differs from what the runtime would create", "topic", r.changelog, "mismatch", st[0].Mismatch)
	}
	if st[0].Created {
		r.log.Info("created changelog topic", "topic", r.changelog, "partitions", parts)
	}

	md, err := r.adm.BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("task: read cluster metadata: %w", err)
	}
	stored, err := r.store.clusterID()
	if err != nil {
		return err
	}
	switch {
	case md.Cluster == "" || stored == md.Cluster:
	case stored == "":
		if err := r.store.setClusterID(md.Cluster); err != nil {
			return err
		}
	case r.cfg.OnBrokerWiped == WipeReset:
		r.log.Warn("state was built on another Kafka cluster; dropping it (reset policy)", "stored_cluster", stored, "cluster", md.Cluster)
		if err := r.store.dropAll(); err != nil {
			return err
		}
		if err := r.store.setClusterID(md.Cluster); err != nil {
			return err
		}
	default:
		r.log.Error("state was built on another Kafka cluster (was the broker's data wiped?); stopping. "+
			"Delete the state directory or run with the reset policy to start over",
			"stored_cluster", stored, "cluster", md.Cluster, "state_dir", r.store.dir)
		return fmt.Errorf("task: state belongs to cluster %q, broker is cluster %q: %w", stored, md.Cluster, ErrBrokerWiped)
	}

	// A store is built from one source topic; pointing it at another
	// would apply that topic's records to the wrong state.
	src, err := r.store.sourceTopic()
	if err != nil {
		return err
	}
	switch {
	case src == "":
		if err := r.store.setSourceTopic(r.cfg.Topic); err != nil {
			return err
		}
	case src != r.cfg.Topic:
		return fmt.Errorf("task: the state in %s was built from topic %q, not %q: use another store name or data dir", r.store.dir, src, r.cfg.Topic)
	}

	return nil
}

// bounds returns a partition's start offset and its end: the last stable
// offset when stable is true (every transaction before it is complete),
// else the high watermark.
//
// A topic created a moment ago may not be listed yet by every broker, so
// missing partitions are retried for up to 30 s (a real broker under load
// has been seen to take more than 5 s to list a new changelog topic).
func (r *Runtime) bounds(ctx context.Context, topic string, partition int32, stable bool) (start, end int64, err error) {
	for attempt := 0; ; attempt++ {
		start, end, err = r.boundsOnce(ctx, topic, partition, stable)
		if err == nil || attempt >= 300 || !errors.Is(err, errNoOffsets) && !errors.Is(err, kerr.UnknownTopicOrPartition) {
			return start, end, err
		}
		select {
		case <-ctx.Done():
			// Stopped while waiting: a stop, not a failure (a runtime
			// stopped during its restore returns nil).
			return 0, 0, fmt.Errorf("%w (waiting for %s partition %d: %v)", ctx.Err(), topic, partition, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

var errNoOffsets = errors.New("partition not listed")

// inMemorySegmentBytes is the segment size of an in-memory runtime's
// changelog (see Config.InMemory).
const inMemorySegmentBytes = 16 << 20

func (r *Runtime) boundsOnce(ctx context.Context, topic string, partition int32, stable bool) (start, end int64, err error) {
	starts, err := r.adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return 0, 0, fmt.Errorf("task: list start offsets of %s: %w", topic, err)
	}
	var ends kadm.ListedOffsets
	if stable {
		ends, err = r.adm.ListCommittedOffsets(ctx, topic)
	} else {
		ends, err = r.adm.ListEndOffsets(ctx, topic)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("task: list end offsets of %s: %w", topic, err)
	}
	s, ok1 := starts.Lookup(topic, partition)
	e, ok2 := ends.Lookup(topic, partition)
	switch {
	case !ok1 || !ok2:
		return 0, 0, fmt.Errorf("task: offsets of %s partition %d: %w", topic, partition, errNoOffsets)
	case s.Err != nil:
		return 0, 0, fmt.Errorf("task: start offset of %s partition %d: %w", topic, partition, s.Err)
	case e.Err != nil:
		return 0, 0, fmt.Errorf("task: end offset of %s partition %d: %w", topic, partition, e.Err)
	}
	return s.Offset, e.Offset, nil
}

// poll is the intake loop: it hands each partition's records to its task and
// commits durable offsets to the group now and then.
func (r *Runtime) poll(ctx context.Context, cl *kgo.Client) {
	lastCommit := time.Now()
	lastLag := map[int32]int64{}
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, r.cfg.LagCommitInterval)
		fs := cl.PollFetches(pctx)
		cancel()
		if fs.IsClientClosed() {
			return
		}
		fs.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return
			}
			r.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
		})
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if len(fp.Records) == 0 || ctx.Err() != nil {
				return
			}
			r.mu.Lock()
			t := r.tasks[fp.Partition]
			r.mu.Unlock()
			if t == nil {
				return
			}
			t.hwm.Store(fp.HighWatermark)
			select {
			case t.in <- fp.Records:
			case <-t.done:
				if t.err != nil && !errors.Is(t.err, context.Canceled) && !fenced(t.err) {
					r.fail(t.err)
				}
			case <-ctx.Done():
			}
		})
		if time.Since(lastCommit) >= r.cfg.LagCommitInterval {
			lastCommit = time.Now()
			r.mu.Lock()
			ts := make([]*task, 0, len(r.tasks))
			for p, t := range r.tasks {
				t.updateLag()
				// Commit only what moved: an idle group sends nothing.
				if n := t.committed.Load(); n != lastLag[p] {
					lastLag[p] = n
					ts = append(ts, t)
				}
			}
			r.mu.Unlock()
			r.commitLag(cl, ts, false)
		}
		cl.AllowRebalance()
	}
}

// commitLag commits the tasks' durable offsets to the group. They are for
// lag monitoring only: starting offsets always come from the local store.
func (r *Runtime) commitLag(cl *kgo.Client, ts []*task, sync bool) {
	offs := map[int32]kgo.EpochOffset{}
	for _, t := range ts {
		if n := t.committed.Load(); n >= 0 {
			offs[t.partition] = kgo.EpochOffset{Epoch: -1, Offset: n}
		}
	}
	if len(offs) == 0 {
		return
	}
	m := map[string]map[int32]kgo.EpochOffset{r.cfg.Topic: offs}
	if !sync {
		cl.CommitOffsets(r.taskCtx, m, nil)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl.CommitOffsetsSync(ctx, m, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			r.log.Debug("lag offset commit failed", "err", err)
		}
	})
}

// stop ends tasks: flush lets each finish and commit what it has queued;
// otherwise they stop at once. It waits for all of them.
func (r *Runtime) stop(ts []*task, flush bool) {
	for _, t := range ts {
		select {
		case <-t.ready:
		default:
			t.cancel() // still restoring: nothing to flush
		}
		if flush {
			close(t.drain)
		} else {
			t.cancel()
		}
	}
	for _, t := range ts {
		<-t.done
		t.cancel()
		r.m.tasks.Dec()
		r.m.lag.DeleteLabelValues(partitionLabel(t.partition))
		if t.err != nil && !errors.Is(t.err, context.Canceled) && !errors.Is(t.err, errSimulatedCrash) && !fenced(t.err) {
			r.fail(t.err)
		}
	}
}

func (r *Runtime) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range assigned[r.cfg.Topic] {
		if r.tasks[p] != nil {
			continue
		}
		t := newTask(r, p)
		r.tasks[p] = t
		r.m.tasks.Inc()
		go t.run()
	}
	r.joined.Store(true)
	r.log.Info("partitions assigned", "partitions", assigned[r.cfg.Topic])
}

func (r *Runtime) take(ps []int32) []*task {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*task
	for _, p := range ps {
		if t := r.tasks[p]; t != nil {
			out = append(out, t)
			delete(r.tasks, p)
		}
	}
	return out
}

// onRevoked flushes and stops the revoked tasks, then commits their offsets
// so the next owner's lag starts right.
func (r *Runtime) onRevoked(_ context.Context, cl *kgo.Client, revoked map[string][]int32) {
	ts := r.take(revoked[r.cfg.Topic])
	if len(ts) == 0 {
		return
	}
	r.log.Info("partitions revoked", "partitions", revoked[r.cfg.Topic])
	r.stop(ts, true)
	r.commitLag(cl, ts, true)
}

// onLost drops the lost tasks without committing anything more: another
// member may own the partitions already.
func (r *Runtime) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	ts := r.take(lost[r.cfg.Topic])
	if len(ts) == 0 {
		return
	}
	r.log.Warn("partitions lost", "partitions", lost[r.cfg.Topic])
	r.stop(ts, false)
}

// adjustOffsets replaces the group's committed offsets with the ones stored
// with the state, waiting for the new tasks to restore. The group calls it
// after onAssigned; its context ends when the next rebalance starts, and the
// tasks keep restoring across that (the group asks again).
func (r *Runtime) adjustOffsets(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	for p := range offsets[r.cfg.Topic] {
		r.mu.Lock()
		t := r.tasks[p]
		r.mu.Unlock()
		if t == nil {
			continue
		}
		select {
		case <-t.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if t.prepErr != nil {
			if !errors.Is(t.prepErr, context.Canceled) {
				r.fail(t.prepErr)
			}
			return nil, t.prepErr
		}
		if t.startAt >= 0 {
			offsets[r.cfg.Topic][p] = kgo.NewOffset().At(t.startAt).WithEpoch(-1)
		} else {
			offsets[r.cfg.Topic][p] = kgo.NewOffset().AtStart()
		}
	}
	return offsets, nil
}

// fenced reports whether err says that a newer producer took this
// partition's transactional id: another member owns the partition now (this
// one was too slow to see its revocation, or was dropped from the group).
// The batch it was committing is aborted by the broker and will be replayed
// by the new owner, so the task ends like a lost partition instead of
// stopping the whole runtime.
func fenced(err error) bool {
	return errors.Is(err, kerr.InvalidProducerEpoch) || errors.Is(err, kerr.ProducerFenced)
}
