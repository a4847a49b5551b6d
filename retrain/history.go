package retrain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadHistory reads every version record on topic (read_committed: a
// promotion interrupted before its commit is not there).
func ReadHistory(ctx context.Context, opts []kgo.Opt, topic string, log *slog.Logger) (*History, error) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	h := &History{}
	err = readTopic(ctx, cl, topic, func(r *kgo.Record) {
		if r.Value == nil {
			return
		}
		v, err := DecodeVersion(r.Value)
		if err != nil {
			log.Warn("retrain: skipping a version record this build cannot read", "offset", r.Offset, "err", err)
			return
		}
		h.Add(v)
	})
	return h, err
}

// readTopic hands fn every record of topic from the start to the last
// stable offsets it has when called (control records excluded).
func readTopic(ctx context.Context, cl *kgo.Client, topic string, fn func(*kgo.Record)) error {
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("retrain: end offsets of %s: %w", topic, err)
	}
	target := map[int32]int64{}
	want := map[string]map[int32]kgo.Offset{topic: {}}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			target[o.Partition] = o.Offset
			want[topic][o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(target) == 0 {
		return nil
	}
	cl.AddConsumePartitions(want)
	defer cl.RemoveConsumePartitions(map[string][]int32{topic: keys(target)})
	for len(target) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = errors.Join(ferr, err) })
		if ferr != nil {
			return fmt.Errorf("retrain: read %s: %w", topic, ferr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := target[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if r.Offset+1 >= end {
				delete(target, r.Partition)
			}
			if !r.Attrs.IsControl() {
				fn(r)
			}
		})
	}
	return nil
}

func keys(m map[int32]int64) []int32 {
	out := make([]int32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Ask sends req to the retrain role through the control topic and waits
// for the version record that answers it. progress, when set, is called
// every few seconds while waiting.
func Ask(ctx context.Context, opts []kgo.Opt, topics Topics, req Request, progress func(waited time.Duration)) (*Version, error) {
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.RequiredAcks(kgo.AllISRAcks()))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics.Versions)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("retrain: end offsets of %s: %w", topics.Versions, err)
	}
	from := map[string]map[int32]kgo.Offset{topics.Versions: {}}
	ends.Each(func(o kadm.ListedOffset) { from[topics.Versions][o.Partition] = kgo.NewOffset().At(o.Offset) })
	b, err := req.Encode()
	if err != nil {
		return nil, err
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topics.Control, Key: []byte(req.ID), Value: b}).FirstErr(); err != nil {
		return nil, fmt.Errorf("retrain: send the request to %s: %w", topics.Control, err)
	}
	cl.AddConsumePartitions(from)
	start := time.Now()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var found *Version
		fs.EachRecord(func(r *kgo.Record) {
			if r.Value == nil || found != nil {
				return
			}
			if v, err := DecodeVersion(r.Value); err == nil && containsID(v.RequestIDs, req.ID) {
				found = v
			}
		})
		if found != nil {
			return found, nil
		}
		select {
		case <-tick.C:
			if progress != nil {
				progress(time.Since(start))
			}
		default:
		}
	}
}

func containsID(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
