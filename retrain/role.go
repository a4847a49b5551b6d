package retrain

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/learner/modelrec"
)

// HeaderVersion is the record header that marks a promotion's vectors on
// the model topics with their version (decimal).
const HeaderVersion = "eddy-model-version"

// Role is the retrain role: it reads requests from the control topic and
// answers each with a version record (promoted, rejected or failed),
// written in one Kafka transaction with a promoted version's vectors.
// Its position is the newest control offset any version answered, so a
// request the role was killed while running is read and run again, and
// one answered is never run twice.
type Role struct {
	cfg  Config
	log  *slog.Logger
	m    *metrics
	cons *kgo.Client // control topic, admin requests
	prod *kgo.Client // transactional: vectors + version record

	mu   sync.Mutex
	hist *History
	// OnVersion, when set, is called after each version record is
	// committed (eddy up tells the drift role of promotions with it).
	onVersion func(*Version)
	// beforeCommit, set by tests, runs when a version's records are
	// written and its transaction not yet committed.
	beforeCommit func()
	ready        bool
}

// pending is a request read and not answered yet.
type pending struct {
	req    Request
	offset int64
}

// New returns the role; Run starts it.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Role, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Archive == nil {
		return nil, errors.New("retrain: no archive to train from")
	}
	cons, err := kgo.NewClient(append(append([]kgo.Opt(nil), cfg.ClientOpts...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(250*time.Millisecond))...)
	if err != nil {
		return nil, fmt.Errorf("retrain: kafka client: %w", err)
	}
	prod, err := kgo.NewClient(append(append([]kgo.Opt(nil), cfg.ClientOpts...),
		kgo.TransactionalID(cfg.TransactionalID),
		kgo.TransactionTimeout(cfg.PublishTimeout),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerBatchMaxBytes(4<<20),
		kgo.MaxBufferedRecords(1<<20))...)
	if err != nil {
		cons.Close()
		return nil, fmt.Errorf("retrain: kafka producer: %w", err)
	}
	return &Role{cfg: cfg, log: log, m: newMetrics(reg), cons: cons, prod: prod, hist: &History{}}, nil
}

// OnVersion sets a function called after each committed version record.
func (r *Role) OnVersion(fn func(*Version)) { r.onVersion = fn }

// Close closes the role's clients.
func (r *Role) Close() {
	r.cons.Close()
	r.prod.Close()
}

// Ready reports whether the role has read its history and is consuming.
func (r *Role) Ready(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.ready {
		return errors.New("reading the version history")
	}
	return nil
}

// History returns a copy of the versions known to the role.
func (r *Role) History() []*Version {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Version(nil), r.hist.All()...)
}

// Run reads the history, then answers requests until ctx is done. It
// returns nil on cancellation.
func (r *Role) Run(ctx context.Context) error {
	h, err := ReadHistory(ctx, r.cfg.ClientOpts, r.cfg.Topics.Versions, r.log)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	r.mu.Lock()
	r.hist, r.ready = h, true
	r.mu.Unlock()
	r.m.liveVersion.Set(float64(h.LiveVersion()))
	if lv := h.Live(); lv != nil {
		r.m.promotedAt.Set(float64(lv.Finished.Unix()))
	}
	from := h.ControlOffset()
	r.log.Info("retrain: ready", "versions", len(h.All()), "live_version", h.LiveVersion(), "control_offset", from)
	r.cons.AddConsumePartitions(map[string]map[int32]kgo.Offset{r.cfg.Topics.Control: {0: kgo.NewOffset().At(from)}})
	var queue []pending
	nextSchedule := time.Time{}
	if r.cfg.Schedule > 0 {
		nextSchedule = time.Now().Add(r.cfg.Schedule)
	}
	backoff := time.Second
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := r.cons.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				r.log.Warn("retrain: reading the control topic", "err", err)
			}
		})
		got := 0
		fs.EachRecord(func(rec *kgo.Record) {
			got++
			req, err := DecodeRequest(rec.Value)
			switch {
			case IsOtherKind(err):
				return
			case err != nil:
				r.m.badRequests.Inc()
				r.log.Warn("retrain: skipping a control record", "offset", rec.Offset, "err", err)
				return
			}
			r.m.requests.WithLabelValues(req.Trigger).Inc()
			queue = append(queue, pending{req: req, offset: rec.Offset})
		})
		r.m.pendingReqs.Set(float64(len(queue)))
		if !nextSchedule.IsZero() && time.Now().After(nextSchedule) {
			nextSchedule = time.Now().Add(r.cfg.Schedule)
			if err := r.ask(ctx, Request{Kind: KindRetrain, Trigger: TriggerSchedule, Reason: "every " + r.cfg.Schedule.String()}); err != nil {
				r.log.Warn("retrain: could not send the scheduled request", "err", err)
			}
		}
		// Wait for the control topic to be drained before running, so
		// that every request already there joins this run.
		if got > 0 || len(queue) == 0 {
			continue
		}
		n, err := r.answer(ctx, queue)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.log.Error("retrain: run interrupted; it runs again", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Minute)
			continue
		}
		backoff = time.Second
		queue = queue[n:]
		r.m.pendingReqs.Set(float64(len(queue)))
		if !nextSchedule.IsZero() {
			nextSchedule = time.Now().Add(r.cfg.Schedule)
		}
	}
	return nil
}

// ask writes a request to the control topic.
func (r *Role) ask(ctx context.Context, req Request) error {
	req.ID, req.Time = NewRequestID(), time.Now().UTC()
	b, err := req.Encode()
	if err != nil {
		return err
	}
	return r.cons.ProduceSync(ctx, &kgo.Record{Topic: r.cfg.Topics.Control, Key: []byte(req.ID), Value: b}).FirstErr()
}

// NewRequestID returns a random request id.
func NewRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "req-" + hex.EncodeToString(b[:])
}

// answer runs the head of the queue: one rollback, or every retrain
// request up to the next rollback coalesced into one run. It returns how
// many requests the committed version answered.
func (r *Role) answer(ctx context.Context, queue []pending) (int, error) {
	n := 1
	if queue[0].req.Kind == KindRetrain {
		for n < len(queue) && queue[n].req.Kind == KindRetrain {
			n++
		}
	}
	batch := queue[:n]
	r.mu.Lock()
	h := r.hist
	r.mu.Unlock()
	v := &Version{Version: h.Next(), Parent: h.LiveVersion(), Trigger: batch[0].req.Trigger, Code: CodeVersion(),
		Requested: batch[0].req.Time, Started: time.Now().UTC(), ControlOffset: batch[n-1].offset}
	for _, p := range batch {
		v.RequestIDs = append(v.RequestIDs, p.req.ID)
		v.ReportIDs = append(v.ReportIDs, p.req.ReportIDs...)
		if p.req.Trigger == TriggerManual {
			v.Trigger = TriggerManual // an operator asked: say so
		}
	}
	r.m.running.Set(1)
	r.m.runStarted.Set(float64(v.Started.Unix()))
	defer func() { r.m.running.Set(0); r.m.runStarted.Set(0) }()
	r.log.Info("retrain: run started", "version", v.Version, "trigger", v.Trigger, "requests", n, "live_version", v.Parent)
	var c *candidate
	var err error
	if batch[0].req.Kind == KindRollback {
		c, err = r.rollback(ctx, v, batch[0].req.Version)
	} else {
		c, err = r.retrain(ctx, v)
	}
	if err != nil {
		return 0, err
	}
	v.Finished = time.Now().UTC()
	if err := r.publish(ctx, c); err != nil {
		return 0, err
	}
	r.mu.Lock()
	r.hist.Add(c.v)
	r.mu.Unlock()
	r.m.runs.WithLabelValues(v.Decision).Inc()
	r.m.duration.Observe(v.Finished.Sub(v.Started).Seconds())
	r.m.lastRun.Set(float64(v.Finished.Unix()))
	if v.Decision == Promoted {
		r.m.liveVersion.Set(float64(v.Version))
		r.m.promotedAt.Set(float64(v.Finished.Unix()))
	}
	r.log.Info("retrain: run ended", "version", v.Version, "decision", v.Decision, "reason", v.Reason,
		"seconds", v.Finished.Sub(v.Started).Seconds())
	if r.onVersion != nil {
		r.onVersion(c.v)
	}
	return n, nil
}

// publish commits the version record, with a promoted version's vectors
// before it, in one transaction: a reader (read_committed) sees all of
// them or none, and the record says where on the model topics they are.
func (r *Role) publish(ctx context.Context, c *candidate) error {
	cctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	if err := r.prod.BeginTransaction(); err != nil {
		return fmt.Errorf("retrain: begin transaction: %w", err)
	}
	abort := func(err error) error {
		if aerr := r.prod.AbortBufferedRecords(context.WithoutCancel(ctx)); aerr != nil {
			err = errors.Join(err, aerr)
		}
		if aerr := r.prod.EndTransaction(context.WithoutCancel(ctx), kgo.TryAbort); aerr != nil {
			err = errors.Join(err, aerr)
		}
		return err
	}
	if len(c.rows) > 0 {
		pub, err := r.produceRows(cctx, c)
		if err != nil {
			return abort(err)
		}
		c.v.Published = pub
	}
	b, err := c.v.Encode()
	if err != nil {
		return abort(err)
	}
	r.prod.Produce(cctx, &kgo.Record{Topic: r.cfg.Topics.Versions, Key: Key(c.v.Version), Value: b}, nil)
	if err := r.prod.Flush(cctx); err != nil {
		return abort(fmt.Errorf("retrain: write the version record: %w", err))
	}
	if r.beforeCommit != nil {
		r.beforeCommit()
	}
	if err := r.prod.EndTransaction(cctx, kgo.TryCommit); err != nil {
		return abort(fmt.Errorf("retrain: commit version %d: %w", c.v.Version, err))
	}
	return nil
}

// produceRows writes the vectors and returns where they went.
func (r *Role) produceRows(ctx context.Context, c *candidate) (*Publication, error) {
	pub := &Publication{UserRanges: map[int32][2]int64{}, ItemRanges: map[int32][2]int64{}}
	var mu sync.Mutex
	var firstErr error
	note := func(rec *kgo.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		ranges := pub.UserRanges
		if rec.Topic == r.cfg.Topics.Items {
			ranges = pub.ItemRanges
		}
		rg, ok := ranges[rec.Partition]
		if !ok {
			rg = [2]int64{rec.Offset, rec.Offset + 1}
		}
		rg[0], rg[1] = min(rg[0], rec.Offset), max(rg[1], rec.Offset+1)
		ranges[rec.Partition] = rg
	}
	hdr := []kgo.RecordHeader{{Key: HeaderVersion, Value: Key(c.v.Version)}}
	for i := range c.rows {
		row := &c.rows[i]
		val, err := modelrec.AppendVector(nil, &row.Vector)
		if err != nil {
			return nil, fmt.Errorf("retrain: encode %v row %d: %w", row.Vector.Kind, i, err)
		}
		topic := r.cfg.Topics.Users
		if row.Vector.Kind == modelrec.KindItem {
			topic = r.cfg.Topics.Items
			pub.Items++
		} else {
			pub.Users++
		}
		pub.Dim = len(row.Vector.Vec)
		r.prod.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(row.Key), Value: val, Headers: hdr}, note)
	}
	if err := r.prod.Flush(ctx); err != nil {
		return nil, fmt.Errorf("retrain: write the vectors: %w", err)
	}
	if firstErr != nil {
		return nil, fmt.Errorf("retrain: write the vectors: %w", firstErr)
	}
	r.m.publishedRow.WithLabelValues("user").Add(float64(pub.Users))
	r.m.publishedRow.WithLabelValues("item").Add(float64(pub.Items))
	return pub, nil
}
