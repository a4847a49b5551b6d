package scorer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/learner/modelrec"
)

// A promotion (the retrain role, DESIGN.md §1) writes a version's every
// vector to the model topics in one transaction with its record on
// model.versions, which says, per partition, the offsets its vectors
// occupy. The consumer routes every vector record by the version in its
// header:
//
//   - before the first promotion has been swapped in, and for records of
//     an unannounced version, into the live state, as always;
//   - records of a promoted version newer than the live one into a state
//     of their own, built beside the live one (requests do not see it);
//   - once swapped, records of older versions (the stages' updates before
//     they adopted the promotion) are dropped: they belong to the
//     replaced model's space.
//
// When the consumer has read past every partition's end of the
// publication it swaps the built state in with one atomic store, so each
// request reads one version, and model_version in responses changes once.

// publication is the part of a version record the scorer needs.
type publication struct {
	version    uint64
	userRanges map[int32][2]int64
	itemRanges map[int32][2]int64
}

type versionRecord struct {
	Version   uint64 `json:"version"`
	Decision  string `json:"decision"`
	Published *struct {
		UserRanges map[int32][2]int64 `json:"user_ranges"`
		ItemRanges map[int32][2]int64 `json:"item_ranges"`
	} `json:"published"`
}

// noteVersion reads a model.versions record; only promoted ones matter.
func (c *Consumer) noteVersion(value []byte) {
	var v versionRecord
	if value == nil || json.Unmarshal(value, &v) != nil || v.Decision != "promoted" || v.Published == nil {
		return
	}
	if _, ok := c.promoted[v.Version]; ok {
		return
	}
	c.promoted[v.Version] = &publication{version: v.Version, userRanges: v.Published.UserRanges, itemRanges: v.Published.ItemRanges}
}

// route says where a model record goes: the live state, the state being
// built, both (a tombstone) or neither (a stale version).
func (c *Consumer) route(r *kgo.Record) (live, next bool) {
	if c.topics.Versions == "" {
		return true, false
	}
	if r.Value == nil {
		return true, c.next != nil
	}
	h, err := modelrec.DecodeHeader(r.Value)
	if err != nil {
		return true, false // the live state rejects and counts it
	}
	v := h.ModelVersion
	switch {
	case c.live != 0 && v == c.live:
		return true, false
	case c.live != 0 && v < c.live:
		c.s.metrics.stale.Inc() // the replaced model's space
		return false, false
	case c.next != nil && v == c.nextVersion:
		return false, true
	}
	// A version neither served nor being built: a promotion's if its
	// vectors say so or its record was read; otherwise (before the first
	// promotion, or a stage configured with another version and no
	// retrain role) an ordinary record of the live state.
	_, known := c.promoted[v]
	if !known && !hasHeader(r, headerVersion) {
		return true, false
	}
	if c.next != nil && v < c.nextVersion {
		c.s.metrics.stale.Inc() // superseded before it was complete
		return false, false
	}
	if c.next != nil {
		c.log.Info("scorer: a newer promotion supersedes the one being built", "building", c.nextVersion, "new", v)
	}
	c.next, c.nextVersion = NewState(c.s.cfg), v
	c.s.metrics.building.Set(float64(v))
	return false, true
}

func hasHeader(r *kgo.Record, key string) bool {
	for _, h := range r.Headers {
		if h.Key == key {
			return true
		}
	}
	return false
}

// swapIfComplete swaps the built state in once the consumer has read
// past its publication on every partition. It reports whether it did.
func (c *Consumer) swapIfComplete() bool {
	if c.next == nil {
		return false
	}
	pub := c.promoted[c.nextVersion]
	if pub == nil {
		return false
	}
	c.mu.Lock()
	complete := c.passedLocked(c.topics.Users, pub.userRanges) && c.passedLocked(c.topics.Items, pub.itemRanges)
	c.mu.Unlock()
	if !complete {
		return false
	}
	items, users, _ := c.next.Sizes()
	start := time.Now()
	old := c.s.swap(c.next)
	prev := c.live
	if prev == 0 {
		prev = old.ModelVersion()
	}
	c.live, c.next = c.nextVersion, nil
	c.s.metrics.building.Set(0)
	c.s.metrics.promotions.Inc()
	c.log.Info("scorer: promoted version swapped in", "model_version", c.live, "previous", prev, "users", users, "items", items,
		"took", time.Since(start).Round(time.Microsecond))
	return true
}

func (c *Consumer) passedLocked(topic string, ranges map[int32][2]int64) bool {
	for p, rg := range ranges {
		if c.done[topic][p] < rg[1] {
			return false
		}
	}
	return true
}

// loadVersions reads model.versions to its last stable offset (a
// promotion still being written is not waited for: it is read live)
// before the model topics are replayed, so that vectors of a promoted
// version are recognised even where compaction has removed its marked
// records.
func (c *Consumer) loadVersions(ctx context.Context) error {
	if c.topics.Versions == "" {
		return nil
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), c.opts...), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return err
	}
	defer cl.Close()
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(lctx, c.topics.Versions)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("scorer: end offsets of %s: %w", c.topics.Versions, err)
	}
	target := map[int32]int64{}
	want := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			target[o.Partition], want[o.Partition] = o.Offset, kgo.NewOffset().AtStart()
		}
	})
	if len(target) == 0 {
		return nil
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{c.topics.Versions: want})
	for len(target) > 0 {
		fs := cl.PollFetches(lctx)
		if err := lctx.Err(); err != nil {
			return fmt.Errorf("scorer: read %s: %w", c.topics.Versions, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = errors.Join(ferr, err) })
		if ferr != nil {
			return fmt.Errorf("scorer: read %s: %w", c.topics.Versions, ferr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := target[r.Partition]; ok && r.Offset+1 >= end {
				delete(target, r.Partition)
			}
			if !r.Attrs.IsControl() {
				c.noteVersion(r.Value)
			}
		})
	}
	return nil
}
