package stage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/modelrec"
)

// ItemReplica is the user stage's in-memory copy of <prefix>model.items
// (see doc.go): item vectors and biases by item id, read from the
// beginning with read_committed and direct partition consumption, so
// every user-stage instance holds all items. It is safe for concurrent use:
// one goroutine (Run) writes, partition tasks read.
type ItemReplica struct {
	topic string
	dim   int
	cl    *kgo.Client
	log   *slog.Logger
	m     *metrics

	mu     sync.RWMutex
	index  map[string]int32
	vecs   []float32 // dim per item
	bias   []float32
	counts []uint32
	live   []bool
	liveN  int
	// vers is each item's model version; floor the newest promoted
	// version seen (a record marked with VersionHeader). Items below the
	// floor are in the replaced model's space: read reports them missing
	// (the item stage starts them over), and records below it are stale.
	vers  []uint64
	floor uint64

	pmu       sync.Mutex
	target    map[int32]int64 // last stable offsets at start
	done      map[int32]int64 // next offset consumed, markers included
	caughtUp  chan struct{}
	closeOnce sync.Once
}

// NewItemReplica returns a replica of topic for vectors of dimension dim,
// using client options opts (brokers, TLS, SASL).
func NewItemReplica(topic string, dim int, log *slog.Logger, m *metrics, opts ...kgo.Opt) (*ItemReplica, error) {
	if log == nil {
		log = slog.Default()
	}
	opts = append(append([]kgo.Opt(nil), opts...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers take offsets: progress towards the end
		// offsets is tracked over them (see testkafka.ReadAll).
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(50*time.Millisecond),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("stage: item replica client: %w", err)
	}
	if m == nil {
		m = newMetrics()
	}
	return &ItemReplica{
		topic: topic, dim: dim, cl: cl, log: log, m: m,
		index: map[string]int32{}, done: map[int32]int64{}, caughtUp: make(chan struct{}),
	}, nil
}

// Close closes the replica's client; call it after Run returned.
func (r *ItemReplica) Close() { r.cl.Close() }

// CaughtUp is closed once the replica has applied everything up to the
// last stable offsets it saw when Run started.
func (r *ItemReplica) CaughtUp() <-chan struct{} { return r.caughtUp }

// Len returns the number of live items.
func (r *ItemReplica) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.liveN
}

// read copies item id's vector, bias and update count into row and reports whether the
// replica has it. row.Vec must have length dim.
func (r *ItemReplica) read(id string, row *learner.Row) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	i, ok := r.index[id]
	if !ok || !r.live[i] || r.vers[i] < r.floor {
		return false
	}
	copy(row.Vec, r.vecs[int(i)*r.dim:int(i+1)*r.dim])
	row.Bias, row.Count = r.bias[i], r.counts[i]
	return true
}

// count returns item id's update count and whether the replica has it.
func (r *ItemReplica) count(id string) (uint32, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	i, ok := r.index[id]
	if !ok || !r.live[i] || r.vers[i] < r.floor {
		return 0, false
	}
	return r.counts[i], true
}

// applyMarked applies a record; marked says it carries VersionHeader (a
// promotion's vector), which raises the floor to its version.
func (r *ItemReplica) applyMarked(key, value []byte, v *modelrec.Vector, marked bool) error {
	if value == nil {
		r.mu.Lock()
		if i, ok := r.index[string(key)]; ok && r.live[i] {
			r.live[i] = false
			r.liveN--
		}
		r.mu.Unlock()
		return nil
	}
	if err := modelrec.DecodeVector(value, v); err != nil {
		return err
	}
	if v.Kind != modelrec.KindItem || len(v.Vec) != r.dim || len(key) == 0 {
		return fmt.Errorf("%w: %v record of dim %d on the items topic (want item, dim %d)", modelrec.ErrBadRecord, v.Kind, len(v.Vec), r.dim)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if marked && v.ModelVersion > r.floor {
		r.floor = v.ModelVersion
	}
	if v.ModelVersion < r.floor {
		return nil // a stage's record of the replaced version
	}
	i, ok := r.index[string(key)]
	if !ok {
		i = int32(len(r.live))
		r.vers = append(r.vers, v.ModelVersion)
		r.index[string(key)] = i
		r.vecs = append(r.vecs, v.Vec...)
		r.bias = append(r.bias, v.Bias)
		r.counts = append(r.counts, uint32(min(v.Updates, math.MaxUint32)))
		r.live = append(r.live, true)
		r.liveN++
		return nil
	}
	copy(r.vecs[int(i)*r.dim:], v.Vec)
	if !r.live[i] {
		r.liveN++
	}
	r.bias[i], r.counts[i], r.live[i], r.vers[i] = v.Bias, uint32(min(v.Updates, math.MaxUint32)), true, v.ModelVersion
	return nil
}

// waitPast waits until the replica has applied every partition up to the
// end of ranges (a promotion's items) and holds version v.
func (r *ItemReplica) waitPast(ctx context.Context, v uint64, ranges map[int32][2]int64) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r.pmu.Lock()
		ok := true
		for p, rg := range ranges {
			if r.done[p] < rg[1] {
				ok = false
			}
		}
		r.pmu.Unlock()
		r.mu.RLock()
		ok = ok && r.floor >= v
		r.mu.RUnlock()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stage: the item replica has not read version %d's items after 2m", v)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Run consumes until ctx ends (it returns nil then) or the end offsets
// cannot be read for good.
func (r *ItemReplica) Run(ctx context.Context) error {
	if err := r.loadTargets(ctx); err != nil {
		return err
	}
	var v modelrec.Vector
	for ctx.Err() == nil {
		fs := r.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(_ string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				r.log.Warn("item replica fetch", "partition", p, "err", err)
			}
		})
		now := time.Now()
		applied, rejected := 0, 0
		var newest time.Time
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			for _, rec := range p.Records {
				if rec.Attrs.IsControl() {
					continue
				}
				if err := r.applyMarked(rec.Key, rec.Value, &v, hasVersionHeader(rec)); err != nil {
					if rejected == 0 {
						r.log.Warn("item replica: record rejected", "partition", p.Partition, "offset", rec.Offset, "err", err)
					}
					rejected++
					continue
				}
				applied++
				if rec.Timestamp.After(newest) {
					newest = rec.Timestamp
				}
			}
			r.pmu.Lock()
			r.done[p.Partition] = p.Records[len(p.Records)-1].Offset + 1
			r.pmu.Unlock()
		})
		r.m.replicaApplied.Add(float64(applied))
		r.m.replicaRejected.Add(float64(rejected))
		r.m.replicaItems.Set(float64(r.Len()))
		if !newest.IsZero() {
			r.m.replicaDelay.Set(max(0, now.Sub(newest).Seconds()))
		}
		r.checkCaughtUp()
	}
	return nil
}

func (r *ItemReplica) checkCaughtUp() {
	r.pmu.Lock()
	defer r.pmu.Unlock()
	for p, end := range r.target {
		if r.done[p] < end {
			return
		}
	}
	r.closeOnce.Do(func() {
		r.log.Info("item replica caught up", "topic", r.topic, "items", r.Len())
		close(r.caughtUp)
	})
}

// loadTargets records the last stable offsets at start, retrying until the
// broker answers or ctx ends.
func (r *ItemReplica) loadTargets(ctx context.Context) error {
	adm := kadm.NewClient(r.cl)
	for {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ends, err := adm.ListCommittedOffsets(lctx, r.topic)
		cancel()
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			target := map[int32]int64{}
			ends.Each(func(o kadm.ListedOffset) { target[o.Partition] = o.Offset })
			r.pmu.Lock()
			r.target = target
			r.pmu.Unlock()
			r.checkCaughtUp()
			return nil
		}
		r.log.Warn("item replica: cannot read the end offsets; retrying", "topic", r.topic, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
}

func hasVersionHeader(r *kgo.Record) bool {
	for _, h := range r.Headers {
		if h.Key == VersionHeader {
			return true
		}
	}
	return false
}
