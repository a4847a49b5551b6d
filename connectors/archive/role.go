package archive

import (
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
//
// Two goroutines share the work: the poll loop decodes records into
// per-partition buffers, and the flusher encodes and writes the buffers
// that are due, one at a time, so that on two cores reading and writing
// overlap. At most one flush waits behind the one being written; a
// partition whose buffer is due while that queue is full keeps reading up
// to twice the flush size and then stops fetching until its flush is
// queued, which bounds memory while the store is slow or failing.
type Role struct {
	cfg   Config
	store Store
	log   *slog.Logger
	m     *metrics
	cl    *kgo.Client
	adm   *kadm.Client

	// mu guards parts and their fields: the poll loop, the flusher and the
	// group's assignment callbacks all reach them.
	mu    sync.Mutex
	parts map[topicPartition]*partBuf
	dec   rowDecoder

	jobs chan *flushJob
	// busy counts queued and running flushes; idle is signalled when it
	// drops to zero.
	busy int
	idle *sync.Cond

	failing atomic.Bool // the flusher's current flush has failed
	lastErr atomic.Pointer[error]
}

type topicPartition struct {
	topic     string
	partition int32
}

// partBuf is one assigned partition: its committed checkpoint and the
// records read since the last flush was handed to the flusher.
type partBuf struct {
	kind  Kind
	tp    topicPartition
	state partitionState // committed; updated by the flusher
	// start is the first offset of the buffer (the end of the last flush
	// handed over + 1); last is the highest offset read. The buffer covers
	// [start, last].
	start  int64
	last   int64
	rows   int
	bytes  int64
	oldest time.Time // when the first buffered record was read
	events map[int64][]EventRow
	recs   map[int64][]RecsRow
	paused bool
}

func (p *partBuf) empty() bool { return p.last < p.start }

// flushJob is a buffer handed to the flusher.
type flushJob struct {
	pb          *partBuf
	first, last int64
	rows        int
	events      map[int64][]EventRow
	recs        map[int64][]RecsRow
}

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
	r := &Role{cfg: cfg, store: store, log: log, m: m, parts: map[topicPartition]*partBuf{}, jobs: make(chan *flushJob, 1)}
	r.idle = sync.NewCond(&r.mu)
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

// Ready is false while a flush is failing, with the error.
func (r *Role) Ready() error {
	if r.failing.Load() {
		why := "unknown"
		if e := r.lastErr.Load(); e != nil {
			why = (*e).Error()
		}
		return fmt.Errorf("archive: cannot write to %s: %s", r.store, why)
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
			if starts == nil {
				starts, _ = r.adm.ListStartOffsets(ctx, topic)
				ends, _ := r.adm.ListEndOffsets(ctx, topic)
				ends.Each(func(o kadm.ListedOffset) {
					if s, _, err := loadState(ctx, r.store, k, o.Partition); err == nil && o.Err == nil && o.Offset < s.Next {
						// The archive is ahead of the log: the topic was
						// recreated or the broker's log wiped. Offsets below
						// the archived position would reuse file names, so
						// they are skipped, loudly.
						r.m.gap.WithLabelValues(string(k)).Add(float64(s.Next - o.Offset))
						r.log.Error("archive: the topic ends before what is archived (recreated topic or wiped broker); its records up to the archived position are not archived",
							"kind", k, "partition", o.Partition, "log_end", o.Offset, "archived_next", s.Next)
					}
				})
			}
			if o, ok := starts.Lookup(topic, p); ok && o.Err == nil && o.Offset > st.Next {
				r.m.gap.WithLabelValues(string(k)).Add(float64(o.Offset - st.Next))
				r.log.Warn("archive: retention deleted records before they were archived", "kind", k, "partition", p, "from", st.Next, "to", o.Offset)
				// The next flush covers what the fetch will return.
				st.Next = o.Offset
			}
			r.parts[tp] = &partBuf{kind: k, tp: tp, state: st, start: st.Next, last: st.Next - 1}
			ps[p] = kgo.NewOffset().At(st.Next)
		}
	}
	return offsets, nil
}

// revoked writes out what revoked partitions hold, so that their next
// owner starts after it.
func (r *Role) revoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	r.mu.Lock()
	var jobs []*flushJob
	for topic, ps := range revoked {
		for _, p := range ps {
			if pb := r.parts[topicPartition{topic, p}]; pb != nil {
				if j := r.detach(pb); j != nil {
					jobs = append(jobs, j)
				}
			}
		}
	}
	r.mu.Unlock()
	for _, j := range jobs {
		r.queue(j)
	}
	r.forget(revoked)
}

// lost drops partitions the group took away without a revoke (a session
// timeout): their buffer is read again by the next owner.
func (r *Role) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	r.forget(lost)
}

// forget waits for the flushes in flight (one may be a partition's being
// taken away) and drops the partitions.
func (r *Role) forget(gone map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.busy > 0 {
		r.idle.Wait()
	}
	for topic, ps := range gone {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			if pb := r.parts[tp]; pb != nil {
				r.m.buffered.WithLabelValues(string(pb.kind)).Sub(float64(pb.rows))
				delete(r.parts, tp)
			}
		}
	}
}

// queue hands j to the flusher, waiting for room.
func (r *Role) queue(j *flushJob) {
	r.mu.Lock()
	r.busy++
	r.mu.Unlock()
	r.jobs <- j
}

// tryQueue hands j to the flusher if there is room.
func (r *Role) tryQueue(j *flushJob) bool {
	r.busy++ // under mu
	select {
	case r.jobs <- j:
		return true
	default:
		r.busy--
		return false
	}
}

// detach takes a partition's buffer out as a flush job (nil when empty)
// and starts a new buffer after it. Under mu.
func (r *Role) detach(pb *partBuf) *flushJob {
	if pb.empty() {
		return nil
	}
	j := &flushJob{pb: pb, first: pb.start, last: pb.last, rows: pb.rows, events: pb.events, recs: pb.recs}
	pb.start, pb.rows, pb.bytes, pb.events, pb.recs = pb.last+1, 0, 0, nil, nil
	return j
}

// Run consumes until ctx ends, then writes out every buffer and leaves the
// group. It returns nil on a clean stop.
func (r *Role) Run(ctx context.Context) error {
	defer r.cl.Close()
	// The flusher outlives ctx by up to 30 s, to write what is buffered at
	// the stop.
	fctx, cancelFlush := context.WithCancel(context.Background())
	defer cancelFlush()
	flusherDone := make(chan struct{})
	go func() {
		defer close(flusherDone)
		r.flusher(fctx)
	}()
	tick := min(r.cfg.FlushAge/4, time.Second)
	var err error
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, tick)
		fs := r.cl.PollRecords(pctx, 50_000)
		cancel()
		err = r.handle(ctx, fs)
		r.cl.AllowRebalance()
		if err != nil {
			break
		}
	}
	// Stopping: hand every buffer over and wait (up to 30 s) for them.
	r.mu.Lock()
	var jobs []*flushJob
	for _, pb := range r.parts {
		if j := r.detach(pb); j != nil {
			jobs = append(jobs, j)
		}
	}
	r.mu.Unlock()
	stop := time.AfterFunc(30*time.Second, cancelFlush)
	defer stop.Stop()
	for _, j := range jobs {
		r.queue(j)
	}
	close(r.jobs)
	<-flusherDone
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.mu.Lock()
	r.commit(sctx)
	r.mu.Unlock()
	return err
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
	for _, pb := range r.parts {
		if !r.due(pb, now) {
			continue
		}
		j := &flushJob{pb: pb, first: pb.start, last: pb.last, rows: pb.rows, events: pb.events, recs: pb.recs}
		if r.tryQueue(j) {
			pb.start, pb.rows, pb.bytes, pb.events, pb.recs = pb.last+1, 0, 0, nil, nil
			if pb.paused {
				r.cl.ResumeFetchPartitions(map[string][]int32{pb.tp.topic: {pb.tp.partition}})
				pb.paused = false
			}
		} else if !pb.paused && (pb.rows >= 2*r.cfg.FlushRows || pb.bytes >= 2*r.cfg.FlushBytes) {
			// The flusher is far behind (a slow or failing store): stop
			// reading this partition until its buffer can be handed over.
			// Not sooner: a paused partition drops what the client has
			// fetched for it, and resuming it was measured to stall it for
			// seconds.
			r.cl.PauseFetchPartitions(map[string][]int32{pb.tp.topic: {pb.tp.partition}})
			pb.paused = true
		}
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
	return !pb.empty() && (pb.rows >= r.cfg.FlushRows || pb.bytes >= r.cfg.FlushBytes || now.Sub(pb.oldest) >= r.cfg.FlushAge)
}

// flusher writes the queued flushes in order, retrying a failed one with
// backoff until it succeeds or ctx ends (the records stay in Kafka, read
// again at the next start).
func (r *Role) flusher(ctx context.Context) {
	for j := range r.jobs {
		backoff := r.cfg.RetryBackoff
		for {
			err := r.write(ctx, j)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				r.log.Warn("archive: stopped before a flush was written; its records are read again at the next start",
					"kind", j.pb.kind, "partition", j.pb.tp.partition, "err", err)
				break
			}
			r.m.flushErrors.WithLabelValues(string(j.pb.kind)).Inc()
			r.lastErr.Store(&err)
			r.failing.Store(true)
			r.log.Error("archive: cannot write to the archive; reading stops as buffers fill, and nothing is lost",
				"kind", j.pb.kind, "partition", j.pb.tp.partition, "store", r.store.String(), "retry_in", backoff, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, r.cfg.MaxRetryBackoff)
		}
		r.mu.Lock()
		r.busy--
		if r.busy == 0 {
			r.idle.Broadcast()
		}
		r.mu.Unlock()
	}
}

// write writes a flush job out: one file per event hour, under the
// pending-then-commit protocol of partitionState.
func (r *Role) write(ctx context.Context, j *flushJob) error {
	start := time.Now()
	pb := j.pb
	r.mu.Lock()
	st := pb.state
	r.mu.Unlock()
	if st.Pending != nil {
		// A failed attempt of this job left its range pending: undo it
		// before the range is written again.
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
		hours = slices.Sorted(maps.Keys(j.events))
	case Recs:
		hours = slices.Sorted(maps.Keys(j.recs))
	}
	files := make([]string, len(hours))
	for i, h := range hours {
		files[i] = fileKey(pb.kind, h, pb.tp.partition, j.first, j.last)
	}
	setState := func(s partitionState) {
		r.mu.Lock()
		pb.state = s
		r.mu.Unlock()
	}
	if len(files) > 0 {
		st.Pending = &flush{First: j.first, Last: j.last, Files: files}
		if err := saveState(ctx, r.store, pb.kind, pb.tp.partition, st); err != nil {
			return err
		}
		setState(st)
	}
	meta := fileMeta{kind: pb.kind, topic: pb.tp.topic, partition: pb.tp.partition, first: j.first, last: j.last}
	var written int64
	for i, h := range hours {
		var body []byte
		var err error
		switch pb.kind {
		case Events:
			body, err = encodeSorted(j.events[h], eventSchema, meta, func(r *EventRow) (int64, int64) { return r.Ts, r.Offset })
		case Recs:
			body, err = encodeSorted(j.recs[h], recsSchema, meta, func(r *RecsRow) (int64, int64) { return r.Ts, r.Offset })
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
	st.Next = j.last + 1
	st.Files += int64(len(files))
	st.Rows += int64(j.rows)
	if err := saveState(ctx, r.store, pb.kind, pb.tp.partition, st); err != nil {
		return err
	}
	setState(st)
	k := string(pb.kind)
	r.m.records.WithLabelValues(k).Add(float64(j.rows))
	r.m.files.WithLabelValues(k).Add(float64(len(files)))
	r.m.bytes.WithLabelValues(k).Add(float64(written))
	r.m.buffered.WithLabelValues(k).Sub(float64(j.rows))
	r.m.flushTime.WithLabelValues(k).Observe(time.Since(start).Seconds())
	if r.failing.Swap(false) {
		r.log.Info("archive: writing again", "kind", pb.kind, "partition", pb.tp.partition)
	}
	r.mu.Lock()
	r.commit(ctx)
	r.mu.Unlock()
	return nil
}

// commit records the archived positions as the group's offsets, without
// waiting: for lag monitoring only (kafka-consumer-groups, Burrow); the
// role itself starts from the archive's state. Under mu.
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
