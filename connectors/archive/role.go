package archive

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Role is the archive role: a consumer-group member that reads the events
// and served-list topics (read_committed) and writes them to Parquet files
// in a Store, exactly once per record across crashes and rebalances (see
// partitionState for the protocol).
type Role struct {
	cfg   Config
	store Store
	log   *slog.Logger
	m     *metrics
	cl    *kgo.Client
	adm   *kadm.Client

	// mu guards parts: the poll loop and the group's assignment callbacks
	// both reach them (never at once, with BlockRebalanceOnPoll, but the
	// lock says so to the race detector and to readers).
	mu    sync.Mutex
	parts map[topicPartition]*partBuf
	dec   rowDecoder

	failing atomic.Int32 // partitions whose last flush failed
	lastErr atomic.Pointer[error]
}

type topicPartition struct {
	topic     string
	partition int32
}

// partBuf is one assigned partition: its checkpoint and the records read
// since, grouped by event hour.
type partBuf struct {
	kind  Kind
	tp    topicPartition
	state partitionState
	// last is the highest offset read; the buffer covers [state.Next, last].
	last   int64
	rows   int
	bytes  int64
	oldest time.Time // when the first buffered record was read
	events map[int64][]EventRow
	recs   map[int64][]RecsRow
	// retry is set after a failed flush: no fetching and no flush before it.
	retry   time.Time
	backoff time.Duration
	paused  bool
}

func (p *partBuf) empty() bool { return p.last < p.state.Next }

// New makes the role on clientOpts (the Kafka connection: brokers, TLS,
// SASL) writing to store. Run starts it.
func New(cfg Config, store Store, clientOpts []kgo.Opt, reg prometheus.Registerer, log *slog.Logger) (*Role, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	r := &Role{cfg: cfg, store: store, log: log, m: m, parts: map[topicPartition]*partBuf{}}
	var topics []string
	for _, t := range []string{cfg.EventsTopic, cfg.RecsTopic} {
		if t != "" {
			topics = append(topics, t)
		}
	}
	opts := append(slices.Clone(clientOpts),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(topics...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.AdjustFetchOffsetsFn(r.assigned),
		kgo.OnPartitionsRevoked(r.revoked),
		kgo.OnPartitionsLost(r.lost),
		kgo.FetchMaxBytes(64<<20),
		kgo.FetchMaxPartitionBytes(8<<20),
	)
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	// The group may assign partitions as soon as the client exists; the
	// callbacks take mu, so they see cl and adm set.
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cl, err = kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("archive: kafka client: %w", err)
	}
	r.adm = kadm.NewClient(r.cl)
	return r, nil
}

func (r *Role) kindOf(topic string) Kind {
	if topic == r.cfg.RecsTopic {
		return Recs
	}
	return Events
}

// Ready is false while a partition's flush is failing.
func (r *Role) Ready() error {
	if n := r.failing.Load(); n > 0 {
		why := "unknown"
		if e := r.lastErr.Load(); e != nil {
			why = (*e).Error()
		}
		return fmt.Errorf("archive: %d partition(s) cannot write to %s: %s", n, r.store, why)
	}
	return nil
}

// assigned runs when partitions are assigned, before they are fetched: it
// recovers each one's checkpoint (undoing a half-written flush) and starts
// it right after its last archived offset.
func (r *Role) assigned(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for topic, ps := range offsets {
		k := r.kindOf(topic)
		var starts kadm.ListedOffsets
		for p := range ps {
			st, undone, err := recoverState(ctx, r.store, k, p)
			if err != nil {
				// The group cannot go on without a partition's position;
				// the client retries the assignment after this error.
				r.log.Error("archive: cannot read a partition's state", "kind", k, "partition", p, "err", err)
				return nil, err
			}
			if undone > 0 {
				r.m.recovered.WithLabelValues(string(k)).Inc()
				r.log.Info("archive: undid a flush cut short by a crash; its records are read again", "kind", k, "partition", p, "files", undone, "from", st.Next)
			}
			st.Topic = topic
			tp := topicPartition{topic, p}
			r.parts[tp] = newPartBuf(k, tp, st)
			ps[p] = kgo.NewOffset().At(st.Next)
			if starts == nil {
				starts, _ = r.adm.ListStartOffsets(ctx, topic)
			}
			if o, ok := starts.Lookup(topic, p); ok && o.Err == nil && o.Offset > st.Next {
				gap := o.Offset - st.Next
				r.m.gap.WithLabelValues(string(k)).Add(float64(gap))
				r.log.Warn("archive: retention deleted records before they were archived", "kind", k, "partition", p, "from", st.Next, "to", o.Offset)
				// The buffer covers what the fetch will return.
				r.parts[tp].state.Next = o.Offset
				r.parts[tp].last = o.Offset - 1
				ps[p] = kgo.NewOffset().At(o.Offset)
			}
		}
	}
	return offsets, nil
}

func newPartBuf(k Kind, tp topicPartition, st partitionState) *partBuf {
	return &partBuf{kind: k, tp: tp, state: st, last: st.Next - 1}
}

// revoked writes out what revoked partitions hold, so that their next
// owner starts after it.
func (r *Role) revoked(ctx context.Context, _ *kgo.Client, lost map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for topic, ps := range lost {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			if pb := r.parts[tp]; pb != nil {
				if err := r.flush(ctx, pb); err != nil {
					r.log.Warn("archive: could not write a revoked partition's buffer; its next owner reads it again", "kind", pb.kind, "partition", p, "err", err)
				}
				r.drop(pb)
				delete(r.parts, tp)
			}
		}
	}
}

// lost drops partitions the group took away without a revoke (a session
// timeout): their buffer is read again by the next owner.
func (r *Role) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for topic, ps := range lost {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			if pb := r.parts[tp]; pb != nil {
				r.drop(pb)
				delete(r.parts, tp)
			}
		}
	}
}

func (r *Role) drop(pb *partBuf) {
	r.m.buffered.WithLabelValues(string(pb.kind)).Sub(float64(pb.rows))
	if !pb.retry.IsZero() {
		r.failing.Add(-1)
	}
}

// Run consumes until ctx ends, then writes out every buffer and leaves the
// group. It returns nil on a clean stop.
func (r *Role) Run(ctx context.Context) error {
	defer r.cl.Close()
	tick := min(r.cfg.FlushAge/4, time.Second)
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, tick)
		fs := r.cl.PollRecords(pctx, 50_000)
		cancel()
		if err := r.handle(ctx, fs); err != nil {
			r.cl.AllowRebalance()
			return err
		}
		r.cl.AllowRebalance()
	}
	// Stopping: write out what is buffered, with a context of its own.
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r.mu.Lock()
	for _, pb := range r.parts {
		if err := r.flush(sctx, pb); err != nil {
			r.log.Warn("archive: could not write a buffer at stop; it is read again at the next start", "kind", pb.kind, "partition", pb.tp.partition, "err", err)
		}
	}
	r.mu.Unlock()
	r.commit(sctx)
	return nil
}

func (r *Role) handle(ctx context.Context, fs kgo.Fetches) error {
	var fatal error
	fs.EachError(func(topic string, p int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		if errors.Is(err, kgo.ErrClientClosed) {
			fatal = err
			return
		}
		r.log.Warn("archive: fetch", "topic", topic, "partition", p, "err", err)
	})
	if fatal != nil {
		return fatal
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	fs.EachRecord(func(rec *kgo.Record) {
		pb := r.parts[topicPartition{rec.Topic, rec.Partition}]
		if pb == nil || rec.Offset <= pb.last {
			return // not ours any more, or already buffered
		}
		r.add(pb, rec, now)
	})
	flushed := false
	for _, pb := range r.parts {
		if !r.due(pb, now) {
			continue
		}
		if err := r.flush(ctx, pb); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.failed(pb, err)
			continue
		}
		flushed = true
	}
	if flushed {
		r.commit(ctx)
	}
	return nil
}

func (r *Role) add(pb *partBuf, rec *kgo.Record, now time.Time) {
	if pb.empty() {
		pb.oldest = now
	}
	pb.last = rec.Offset
	pb.bytes += int64(len(rec.Value) + len(rec.Key))
	switch pb.kind {
	case Events:
		row, err := r.dec.event(rec)
		if err != nil {
			r.m.invalid.WithLabelValues(string(pb.kind)).Inc()
			return
		}
		if pb.events == nil {
			pb.events = map[int64][]EventRow{}
		}
		h := hourOf(row.Ts)
		pb.events[h] = append(pb.events[h], row)
	case Recs:
		row, err := r.dec.served(rec)
		if err != nil {
			r.m.invalid.WithLabelValues(string(pb.kind)).Inc()
			return
		}
		if pb.recs == nil {
			pb.recs = map[int64][]RecsRow{}
		}
		h := hourOf(row.Ts)
		pb.recs[h] = append(pb.recs[h], row)
	}
	pb.rows++
	r.m.buffered.WithLabelValues(string(pb.kind)).Inc()
}

func (r *Role) due(pb *partBuf, now time.Time) bool {
	if pb.empty() {
		return false
	}
	if !pb.retry.IsZero() {
		return !now.Before(pb.retry)
	}
	return pb.rows >= r.cfg.FlushRows || pb.bytes >= r.cfg.FlushBytes || now.Sub(pb.oldest) >= r.cfg.FlushAge
}

// failed keeps a partition's buffer after a failed flush and stops its
// fetching until the retry, so that memory stays bounded while the disk is
// full or the bucket unreachable.
func (r *Role) failed(pb *partBuf, err error) {
	r.m.flushErrors.WithLabelValues(string(pb.kind)).Inc()
	r.lastErr.Store(&err)
	if pb.retry.IsZero() {
		r.failing.Add(1)
		pb.backoff = r.cfg.RetryBackoff
	} else {
		pb.backoff = min(2*pb.backoff, r.cfg.MaxRetryBackoff)
	}
	pb.retry = time.Now().Add(pb.backoff)
	if !pb.paused {
		r.cl.PauseFetchPartitions(map[string][]int32{pb.tp.topic: {pb.tp.partition}})
		pb.paused = true
	}
	r.log.Error("archive: cannot write to the archive; this partition stops reading and keeps its records until it can",
		"kind", pb.kind, "partition", pb.tp.partition, "store", r.store.String(), "retry_in", pb.backoff, "err", err)
}

// flush writes a partition's buffer out: one file per event hour, under
// the pending-then-commit protocol of partitionState.
func (r *Role) flush(ctx context.Context, pb *partBuf) error {
	if pb.empty() {
		return nil
	}
	start := time.Now()
	st := pb.state
	if st.Pending != nil {
		// A failed attempt of this buffer left its range pending: undo it
		// before the range (grown or not) is written again.
		for _, key := range st.Pending.Files {
			if err := r.store.Delete(ctx, key); err != nil {
				return err
			}
		}
		st.Pending = nil
	}
	var hours []int64
	switch pb.kind {
	case Events:
		hours = slices.Sorted(maps.Keys(pb.events))
	case Recs:
		hours = slices.Sorted(maps.Keys(pb.recs))
	}
	first, last := st.Next, pb.last
	files := make([]string, len(hours))
	for i, h := range hours {
		files[i] = fileKey(pb.kind, h, pb.tp.partition, first, last)
	}
	if len(files) > 0 {
		st.Pending = &flush{First: first, Last: last, Files: files}
		if err := saveState(ctx, r.store, pb.kind, pb.tp.partition, st); err != nil {
			return err
		}
		pb.state = st
	}
	meta := fileMeta{kind: pb.kind, topic: pb.tp.topic, partition: pb.tp.partition, first: first, last: last}
	var written int64
	for i, h := range hours {
		var body []byte
		var err error
		switch pb.kind {
		case Events:
			rows := pb.events[h]
			slices.SortFunc(rows, func(a, b EventRow) int { return cmp.Or(cmp.Compare(a.Ts, b.Ts), cmp.Compare(a.Offset, b.Offset)) })
			body, err = encodeFile(rows, eventSchema, meta)
		case Recs:
			rows := pb.recs[h]
			slices.SortFunc(rows, func(a, b RecsRow) int { return cmp.Or(cmp.Compare(a.Ts, b.Ts), cmp.Compare(a.Offset, b.Offset)) })
			body, err = encodeFile(rows, recsSchema, meta)
		}
		if err != nil {
			return err
		}
		if err := r.store.Put(ctx, files[i], body); err != nil {
			return err
		}
		written += int64(len(body))
	}
	st.Pending = nil
	st.Next = last + 1
	st.Files += int64(len(files))
	st.Rows += int64(pb.rows)
	if err := saveState(ctx, r.store, pb.kind, pb.tp.partition, st); err != nil {
		return err
	}
	k := string(pb.kind)
	r.m.records.WithLabelValues(k).Add(float64(pb.rows))
	r.m.files.WithLabelValues(k).Add(float64(len(files)))
	r.m.bytes.WithLabelValues(k).Add(float64(written))
	r.m.buffered.WithLabelValues(k).Sub(float64(pb.rows))
	r.m.flushTime.WithLabelValues(k).Observe(time.Since(start).Seconds())
	if !pb.retry.IsZero() {
		r.failing.Add(-1)
		r.log.Info("archive: writing again", "kind", pb.kind, "partition", pb.tp.partition)
	}
	if pb.paused {
		r.cl.ResumeFetchPartitions(map[string][]int32{pb.tp.topic: {pb.tp.partition}})
	}
	*pb = partBuf{kind: pb.kind, tp: pb.tp, state: st, last: st.Next - 1}
	return nil
}

// commit records the archived positions as the group's offsets: for lag
// monitoring only (kafka-consumer-groups, Burrow); the role itself starts
// from the archive's state.
func (r *Role) commit(ctx context.Context) {
	offs := map[string]map[int32]kgo.EpochOffset{}
	for tp, pb := range r.parts {
		if offs[tp.topic] == nil {
			offs[tp.topic] = map[int32]kgo.EpochOffset{}
		}
		offs[tp.topic][tp.partition] = kgo.EpochOffset{Epoch: -1, Offset: pb.state.Next}
	}
	r.cl.CommitOffsets(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		if err != nil && ctx.Err() == nil {
			r.log.Debug("archive: commit offsets for lag monitoring", "err", err)
		}
	})
}
