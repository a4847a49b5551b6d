package stream

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Topic names relative to the configured prefix (DESIGN.md §3).
const (
	TopicEvents        = "events"
	TopicEventsDLQ     = "events.dlq"
	TopicItemGrads     = "item-grads"
	TopicModelUsers    = "model.users"
	TopicModelItems    = "model.items"
	TopicModelRanker   = "model.ranker"
	TopicModelVersions = "model.versions"
	TopicRecs          = "recs"
	TopicDrift         = "drift"
	TopicControl       = "control"
	// TopicItemUpdates is the features repartition topic: one record per
	// event, keyed by item id, from the user stage to the item stage.
	TopicItemUpdates = "features.item-updates"
	// TopicUserSnapshots holds each user's latest serving snapshot (recent
	// items, seen-set digest, ranker features) for the scorer.
	TopicUserSnapshots = "features.users"
	// TopicRankerInput is the online ranker's join input: engagement events
	// and served lists, copied from events and recs, keyed by user id.
	TopicRankerInput = "ranker.input"
	// TopicRankerExamples carries the joiner's labelled examples to the
	// ranker's single trainer task (one partition: one total order).
	TopicRankerExamples = "ranker.examples"
)

// TopicSpec says how one topic is created.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	// Compacted topics keep the latest record per key ("latest state of a
	// key"); the others are append-only logs deleted by retention.
	Compacted bool
	// Configs are extra topic configs (retention.ms, min.insync.replicas...).
	Configs map[string]string
}

// CleanupPolicy is the value of the topic's cleanup.policy config.
func (s TopicSpec) CleanupPolicy() string {
	if s.Compacted {
		return "compact"
	}
	return "delete"
}

func (s TopicSpec) configs() map[string]*string {
	m := map[string]*string{"cleanup.policy": kadm.StringPtr(s.CleanupPolicy())}
	for k, v := range s.Configs {
		m[k] = kadm.StringPtr(v)
	}
	return m
}

// TopicLayout sizes Eddy's topics.
type TopicLayout struct {
	Prefix            string
	Partitions        int32
	ReplicationFactor int16
}

// Name returns the full name of the relative topic name rel.
func (l TopicLayout) Name(rel string) string { return l.Prefix + rel }

// Specs returns every topic Eddy needs, in a stable order. Control,
// model-version and ranker-example topics are single-partition: they are
// low-volume and their consumers want one total order.
func (l TopicLayout) Specs() []TopicSpec {
	p, rf := l.Partitions, l.ReplicationFactor
	spec := func(rel string, parts int32, compacted bool) TopicSpec {
		return TopicSpec{Name: l.Name(rel), Partitions: parts, ReplicationFactor: rf, Compacted: compacted}
	}
	return []TopicSpec{
		spec(TopicEvents, p, false),
		spec(TopicEventsDLQ, p, false),
		spec(TopicItemGrads, p, false),
		spec(TopicModelUsers, p, true),
		spec(TopicModelItems, p, true),
		spec(TopicModelRanker, 1, true),
		spec(TopicModelVersions, 1, true),
		spec(TopicRecs, p, false),
		spec(TopicDrift, 1, false),
		spec(TopicControl, 1, false),
		spec(TopicItemUpdates, p, false),
		spec(TopicUserSnapshots, p, true),
		spec(TopicRankerInput, p, false),
		spec(TopicRankerExamples, 1, false),
	}
}

// Validate checks the layout's numbers.
func (l TopicLayout) Validate() error {
	if l.Partitions < 1 || l.Partitions > 10000 {
		return fmt.Errorf("stream: --partitions %d: want 1..10000", l.Partitions)
	}
	if l.ReplicationFactor < 1 {
		return fmt.Errorf("stream: --replication-factor %d: want ≥ 1", l.ReplicationFactor)
	}
	return nil
}

// TopicStatus is what EnsureTopics did with one topic.
type TopicStatus struct {
	Spec       TopicSpec
	Created    bool
	Partitions int32 // as found on the cluster
	// Mismatch explains a difference between the spec and the existing
	// topic (partition count, cleanup policy); empty when they agree.
	Mismatch string
}

// EnsureTopics creates the topics that are missing and reports on the ones
// that exist. It is idempotent: running it twice creates nothing the second
// time. Existing topics are never altered; a mismatch is reported so that an
// operator decides (changing partition counts moves keys between partitions).
func EnsureTopics(ctx context.Context, adm *kadm.Client, specs []TopicSpec) ([]TopicStatus, error) {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	existing, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("stream: list topics: %w", err)
	}
	out := make([]TopicStatus, 0, len(specs))
	for _, s := range specs {
		st := TopicStatus{Spec: s}
		if td, ok := existing[s.Name]; ok && td.Err == nil {
			st.Partitions = int32(len(td.Partitions))
			if st.Partitions != s.Partitions {
				st.Mismatch = fmt.Sprintf("has %d partitions, layout wants %d", st.Partitions, s.Partitions)
			}
			out = append(out, st)
			continue
		}
		resp, err := adm.CreateTopic(ctx, s.Partitions, s.ReplicationFactor, s.configs(), s.Name)
		switch {
		case err == nil && resp.Err == nil:
			st.Created, st.Partitions = true, s.Partitions
		case errors.Is(err, kerr.TopicAlreadyExists) || errors.Is(resp.Err, kerr.TopicAlreadyExists):
			// Another instance created it between our list and create.
			st.Partitions = s.Partitions
		default:
			if err == nil {
				err = resp.Err
			}
			return out, fmt.Errorf("stream: create topic %q: %w", s.Name, err)
		}
		out = append(out, st)
	}
	if err := waitListed(ctx, adm, out); err != nil {
		return out, err
	}
	if err := checkPolicies(ctx, adm, out); err != nil {
		return out, err
	}
	return out, nil
}

// listWait bounds how long EnsureTopics waits for a created topic to be
// listed with all its partitions led.
const listWait = 30 * time.Second

// waitListed waits until every topic EnsureTopics created is listed with
// all its partitions and a leader for each. A real broker acknowledges a
// CreateTopics before its metadata lists the topic (in KRaft, until the
// broker has applied the controller's record): a runtime started right
// after found its source "missing" and stopped. "Created" means usable
// by the next request.
func waitListed(ctx context.Context, adm *kadm.Client, st []TopicStatus) error {
	var names []string
	want := map[string]int32{}
	for _, s := range st {
		if s.Created {
			names = append(names, s.Spec.Name)
			want[s.Spec.Name] = s.Spec.Partitions
		}
	}
	if len(names) == 0 {
		return nil
	}
	// kadm answers ListTopics from the client's metadata cache for up to
	// MetadataMinAge (5 s), and the list before the create cached the
	// topics as missing; asking for authorized operations bypasses it.
	uncached := kadm.WithAuthorizedOps(ctx)
	deadline := time.Now().Add(listWait)
	for {
		tds, err := adm.ListTopics(uncached, names...)
		missing := ""
		if err != nil {
			missing = err.Error()
		} else {
			missing = unlisted(tds, names, want)
		}
		if missing == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stream: created topics are not listed after %v: %s", listWait, missing)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stream: waiting for created topics to be listed (%s): %w", missing, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// unlisted names the first topic of names that tds does not list whole, or
// returns "".
func unlisted(tds kadm.TopicDetails, names []string, want map[string]int32) string {
	for _, n := range names {
		td, ok := tds[n]
		switch {
		case !ok || td.Err != nil:
			return n
		case int32(len(td.Partitions)) != want[n]:
			return fmt.Sprintf("%s (%d of %d partitions)", n, len(td.Partitions), want[n])
		}
		for _, p := range td.Partitions {
			if p.Err != nil || p.Leader < 0 {
				return fmt.Sprintf("%s partition %d (no leader)", n, p.Partition)
			}
		}
	}
	return ""
}

// checkPolicies notes existing topics whose cleanup.policy differs from the
// spec: a compacted model topic created by hand as "delete" would silently
// lose model state after retention.
func checkPolicies(ctx context.Context, adm *kadm.Client, st []TopicStatus) error {
	var names []string
	for _, s := range st {
		if !s.Created {
			names = append(names, s.Spec.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return fmt.Errorf("stream: describe topic configs: %w", err)
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			continue
		}
		for i := range st {
			if st[i].Spec.Name != rc.Name {
				continue
			}
			for _, c := range rc.Configs {
				if c.Key == "cleanup.policy" && c.Value != nil && *c.Value != st[i].Spec.CleanupPolicy() {
					if st[i].Mismatch != "" {
						st[i].Mismatch += "; "
					}
					st[i].Mismatch += fmt.Sprintf("cleanup.policy is %q, layout wants %q", *c.Value, st[i].Spec.CleanupPolicy())
				}
			}
		}
	}
	return nil
}

// TopicInfo describes one topic on the cluster.
type TopicInfo struct {
	Name              string `json:"name"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
	CleanupPolicy     string `json:"cleanup_policy"`
	Records           int64  `json:"records"` // sum over partitions of end - start offsets
}

// ListTopics describes the topics whose names start with prefix.
func ListTopics(ctx context.Context, adm *kadm.Client, prefix string) ([]TopicInfo, error) {
	all, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream: list topics: %w", err)
	}
	var names []string
	for name := range all {
		if len(name) >= len(prefix) && name[:len(prefix)] == prefix {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, nil
	}
	starts, err := adm.ListStartOffsets(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("stream: list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("stream: list end offsets: %w", err)
	}
	policies := map[string]string{}
	if rcs, err := adm.DescribeTopicConfigs(ctx, names...); err == nil {
		for _, rc := range rcs {
			for _, c := range rc.Configs {
				if c.Key == "cleanup.policy" && c.Value != nil {
					policies[rc.Name] = *c.Value
				}
			}
		}
	}
	out := make([]TopicInfo, 0, len(names))
	for _, name := range names {
		td := all[name]
		info := TopicInfo{Name: name, Partitions: len(td.Partitions), CleanupPolicy: policies[name]}
		for _, p := range td.Partitions {
			info.ReplicationFactor = len(p.Replicas)
			if e, ok := ends.Lookup(name, p.Partition); ok && e.Err == nil {
				s, _ := starts.Lookup(name, p.Partition)
				info.Records += e.Offset - s.Offset
			}
		}
		out = append(out, info)
	}
	return out, nil
}
