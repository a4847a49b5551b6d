package retrain

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/learner/modelrec"
	"github.com/eddyrec/eddy/learner/trainset"
)

// liveModel is the champion: the rows of the live version on the model
// topics as of the cut-off.
type liveModel struct {
	users, items map[string]*modelrec.Vector
	dim          int
}

// readLive reads the model topics from the start to their last stable
// offsets (the learner's open transactions are not waited for) and keeps,
// per key, the newest record of version whose row was last updated before
// cutoffMillis: the live model as the scorer saw it at the cut-off, before
// it learned from the held-out events. A key compacted down to records
// after the cut-off is missing (the champion cannot rank for it, which
// the version record counts).
func readLive(ctx context.Context, opts []kgo.Opt, users, items string, version uint64, cutoffMillis int64) (*liveModel, error) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords())...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, users, items)
	if err != nil {
		return nil, fmt.Errorf("retrain: end offsets of the model topics: %w", err)
	}
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("retrain: end offsets of the model topics: %w", err)
	}
	want := map[string]map[int32]kgo.Offset{}
	left := 0
	target := map[string]map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset <= 0 {
			return
		}
		if want[o.Topic] == nil {
			want[o.Topic], target[o.Topic] = map[int32]kgo.Offset{}, map[int32]int64{}
		}
		want[o.Topic][o.Partition] = kgo.NewOffset().AtStart()
		target[o.Topic][o.Partition] = o.Offset
		left++
	})
	lm := &liveModel{users: map[string]*modelrec.Vector{}, items: map[string]*modelrec.Vector{}}
	if left == 0 {
		return lm, nil
	}
	cl.AddConsumePartitions(want)
	for left > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = errors.Join(ferr, err) })
		if ferr != nil {
			return nil, fmt.Errorf("retrain: read the model topics: %w", ferr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := target[r.Topic][r.Partition]
			if !ok {
				return
			}
			if r.Offset+1 >= end {
				delete(target[r.Topic], r.Partition)
				left--
			}
			if r.Attrs.IsControl() || r.Offset >= end {
				return
			}
			m := lm.users
			if r.Topic == items {
				m = lm.items
			}
			if r.Value == nil {
				delete(m, string(r.Key))
				return
			}
			v := new(modelrec.Vector)
			if modelrec.DecodeVector(r.Value, v) != nil || v.ModelVersion != version || v.TsMillis >= cutoffMillis {
				return
			}
			if lm.dim == 0 {
				lm.dim = len(v.Vec)
			}
			if len(v.Vec) == lm.dim {
				m[string(r.Key)] = v
			}
		})
	}
	return lm, nil
}

// championScorer scores the set's items for its users with the live
// model's rows, as the scorer does: user · item + the item's bias. Users
// and items the champion does not hold score -Inf (it cannot rank them).
type championScorer struct {
	dim   int
	users [][]float32
	items []float32 // items × dim
	bias  []float32
	known []bool
}

func newChampionScorer(lm *liveModel, s *trainset.Set) (*championScorer, int, int) {
	c := &championScorer{dim: lm.dim, users: make([][]float32, s.Users.Len()),
		items: make([]float32, s.Items.Len()*lm.dim), bias: make([]float32, s.Items.Len()), known: make([]bool, s.Items.Len())}
	var nu, ni int
	for u := range s.Users.Len() {
		if v := lm.users[s.Users.ID(int32(u))]; v != nil {
			c.users[u] = v.Vec
			nu++
		}
	}
	for i := range s.Items.Len() {
		if v := lm.items[s.Items.ID(int32(i))]; v != nil {
			copy(c.items[i*lm.dim:], v.Vec)
			c.bias[i], c.known[i] = v.Bias, true
			ni++
		}
	}
	return c, nu, ni
}

func (c *championScorer) Scores(u int32, dst []float32) []float32 {
	n := len(c.known)
	dst = append(dst[:0], make([]float32, n)...)
	uv := c.users[u]
	ninf := float32(math.Inf(-1))
	for i := range n {
		if uv == nil || !c.known[i] {
			dst[i] = ninf
			continue
		}
		row := c.items[i*c.dim : (i+1)*c.dim]
		var s float32
		for k, x := range uv {
			s += x * row[k]
		}
		dst[i] = s + c.bias[i]
	}
	return dst
}
