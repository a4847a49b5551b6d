package stage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Promotion: the retrain role writes a promoted version's vectors to
// model.users and model.items in one transaction with its record on
// model.versions, which says where they are (per partition, offsets
// [first, end)) and where the batch model's data ended (per partition of
// events, the first offset it did not learn from: the replay offset). Both
// stages adopt the version inside one of their own transactional batches,
// so a kill leaves a partition on the old version or the new, never half:
//
//   - the user stage's partition p writes the version's users of p into
//     its state, then re-applies its events from the replay offset to the
//     batch's first one (Kafka still holds them), so nothing learned
//     online since is lost, and goes on online from there;
//   - the item stage's partition p writes the version's items of p into
//     its state (keeping its own decayed popularity and impressions) and
//     drops the gradients computed against the replaced version.
//
// Users and items the version does not hold (new since its data ended) start
// over from the initial vector when next touched: their old vectors live
// in the replaced model's space. Item gradients carry the version they
// were computed against in VersionHeader.

// VersionHeader carries, on item-grads records, the model version the
// gradient was computed against (decimal; absent: Config.ModelVersion).
// The retrain role marks its published vectors with the same header.
const VersionHeader = "eddy-model-version"

// promotion is what the stages need of a promoted version record.
type promotion struct {
	Version   uint64 `json:"version"`
	Decision  string `json:"decision"`
	Published *struct {
		UserRanges map[int32][2]int64 `json:"user_ranges"`
		ItemRanges map[int32][2]int64 `json:"item_ranges"`
		Dim        int                `json:"dim"`
	} `json:"published"`
	Data *struct {
		ReplayOffsets map[int32]int64 `json:"replay_offsets"`
	} `json:"data"`
}

// promotions follows model.versions and keeps every promoted version.
type promotions struct {
	topic string
	cl    *kgo.Client
	log   *slog.Logger

	mu       sync.Mutex
	byV      map[uint64]*promotion
	latest   *promotion
	caughtUp bool
	changed  chan struct{} // closed and replaced on every change
	target   map[int32]int64
}

func newPromotions(topic string, log *slog.Logger, opts ...kgo.Opt) (*promotions, error) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(100*time.Millisecond))...)
	if err != nil {
		return nil, fmt.Errorf("stage: versions client: %w", err)
	}
	return &promotions{topic: topic, cl: cl, log: log, byV: map[uint64]*promotion{}, changed: make(chan struct{})}, nil
}

func (w *promotions) Close() { w.cl.Close() }

// Run follows the topic until ctx ends.
func (w *promotions) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		if w.target == nil {
			ends, err := listEnds(ctx, w.cl, w.topic)
			if err != nil {
				w.log.Warn("stage: end offsets of the versions topic; retrying", "err", err)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(time.Second):
				}
				continue
			}
			w.target = ends
			w.checkCaughtUp(nil)
		}
		fs := w.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		done := map[int32]int64{}
		fs.EachRecord(func(r *kgo.Record) {
			done[r.Partition] = r.Offset + 1
			if r.Attrs.IsControl() || r.Value == nil {
				return
			}
			var p promotion
			if json.Unmarshal(r.Value, &p) != nil || p.Decision != "promoted" || p.Published == nil || p.Data == nil {
				return
			}
			w.mu.Lock()
			w.byV[p.Version] = &p
			if w.latest == nil || p.Version > w.latest.Version {
				w.latest = &p
			}
			close(w.changed)
			w.changed = make(chan struct{})
			w.mu.Unlock()
		})
		w.checkCaughtUp(done)
	}
	return nil
}

func (w *promotions) checkCaughtUp(done map[int32]int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p, off := range done {
		if off >= w.target[p] {
			delete(w.target, p)
		}
	}
	for p, end := range w.target {
		if end > 0 {
			return
		}
		delete(w.target, p)
	}
	if !w.caughtUp {
		w.caughtUp = true
		close(w.changed)
		w.changed = make(chan struct{})
	}
}

// Latest returns the newest promoted version, nil if none.
func (w *promotions) Latest() *promotion {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.latest
}

// waitCaughtUp waits until the versions topic has been read to its end
// as of the start.
func (w *promotions) waitCaughtUp(ctx context.Context) error {
	for {
		w.mu.Lock()
		ok, ch := w.caughtUp, w.changed
		w.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// wait returns version v's promotion once it has been read, waiting at
// most timeout: a gradient of version v can reach the item stage before
// its watcher reads v's record.
func (w *promotions) wait(ctx context.Context, v uint64, timeout time.Duration) (*promotion, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		p, ch := w.byV[v], w.changed
		w.mu.Unlock()
		if p != nil {
			return p, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, fmt.Errorf("stage: version %d is not on %s after %v", v, w.topic, timeout)
		case <-ch:
		}
	}
}

// listEnds returns the partitions' last stable offsets of topic: where a
// read_committed reader of it has caught up.
func listEnds(ctx context.Context, cl *kgo.Client, topic string) (map[int32]int64, error) {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(lctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// readRange returns the records of topic's partition in [from, to),
// read_committed, with a client of opts.
func readRange(ctx context.Context, opts []kgo.Opt, topic string, partition int32, from, to int64) ([]*kgo.Record, error) {
	if from >= to {
		return nil, nil
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(100*time.Millisecond))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var out []*kgo.Record
	for {
		fs := cl.PollFetches(rctx)
		if err := rctx.Err(); err != nil {
			return nil, fmt.Errorf("stage: read %s[%d] %d–%d: %w", topic, partition, from, to, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = errors.Join(ferr, err) })
		if ferr != nil {
			return nil, fmt.Errorf("stage: read %s[%d]: %w", topic, partition, ferr)
		}
		end := false
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= to {
				end = true
				return
			}
			if r.Offset+1 >= to {
				end = true
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
		})
		if end {
			return out, nil
		}
	}
}

// recordVersion returns the version a record's VersionHeader names, or
// def without one.
func recordVersion(r *kgo.Record, def uint64) uint64 {
	for _, h := range r.Headers {
		if h.Key == VersionHeader {
			if v, err := strconv.ParseUint(string(h.Value), 10, 64); err == nil {
				return v
			}
		}
	}
	return def
}

// loadAdopted reads the partition's adopted version (def when none) and
// the offset below which its input is in that version's batch model.
func loadAdopted(b batch, def uint64) (uint64, int64, error) {
	v, ok, err := b.Get(adoptedKey)
	if err != nil {
		return 0, 0, fmt.Errorf("stage: read the adopted version: %w", err)
	}
	if !ok {
		return def, 0, nil
	}
	if len(v) != 16 {
		return 0, 0, fmt.Errorf("stage: adopted version of %d bytes", len(v))
	}
	return binary.LittleEndian.Uint64(v), int64(binary.LittleEndian.Uint64(v[8:])), nil
}

func saveAdopted(b batch, v uint64, skipBelow int64) error {
	buf := binary.LittleEndian.AppendUint64(nil, v)
	return b.Put(adoptedKey, binary.LittleEndian.AppendUint64(buf, uint64(skipBelow)))
}
