package integration

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eddyrec/eddy/drift"
	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/stream"
	"github.com/eddyrec/eddy/stream/task"
)

// TestGenStdoutDeterministic: the same flags give the same NDJSON, every line
// a valid event; another seed gives another stream.
func TestGenStdoutDeterministic(t *testing.T) {
	args := []string{"gen", "--count", "3000", "--seed", "7", "--users", "200", "--items", "100"}
	a, _ := runEddy(t, 60*time.Second, args...)
	b, _ := runEddy(t, 60*time.Second, args...)
	if a != b {
		t.Fatal("eddy gen with the same seed produced different streams")
	}
	ls := lines(a)
	if len(ls) != 3000 {
		t.Fatalf("%d lines, want 3000", len(ls))
	}
	types := map[event.Type]int{}
	for _, l := range ls {
		e, err := event.Decode([]byte(l), event.DecodeOptions{Strict: true})
		if err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		types[e.Type]++
	}
	if types[event.Impression] == 0 || types[event.Click] == 0 || types[event.Watch] == 0 {
		t.Errorf("stream lacks impressions, clicks or watches: %v", types)
	}
	c, _ := runEddy(t, 60*time.Second, "gen", "--count", "3000", "--seed", "8", "--users", "200", "--items", "100")
	if c == a {
		t.Error("another seed produced the same stream")
	}
}

// TestGenToKafkaAndHTTP: eddy gen produces straight to Kafka and posts to an
// ingest server; both land exactly --count events in the events topic.
func TestGenToKafkaAndHTTP(t *testing.T) {
	k := testkafka.Start(t, 3)
	brokers := strings.Join(k.Brokers, ",")
	runEddy(t, 120*time.Second, "gen", "--count", "5000", "--to", "kafka", "--brokers", brokers,
		"--topic-prefix", k.Layout.Prefix, "--seed", "1")
	_, url := startIngest(t, k)
	runEddy(t, 120*time.Second, "gen", "--count", "5000", "--to", url, "--seed", "2", "--batch", "700", "--rate", "20000")
	ids := eventIDs(t, k)
	for _, seed := range []int{1, 2} {
		n := 0
		for id := range ids {
			if strings.HasPrefix(id, fmt.Sprintf("e%d-", seed)) {
				n++
			}
		}
		if n != 5000 {
			t.Errorf("seed %d: %d distinct events in %s, want 5000", seed, n, k.Layout.Name(stream.TopicEvents))
		}
	}
}

// TestGenServedLists: eddy gen --recs logs each request's served list to
// the recs topic as a scorer would (recs/v1 header, decodable by the drift
// role, the items of the request's impressions in order, at its first
// impression's time), and --recs-drift-sample copies exactly the sampled
// users' lists to the drift role's input.
func TestGenServedLists(t *testing.T) {
	k := testkafka.Start(t, 2)
	group := strings.TrimSuffix(k.Layout.Prefix, ".") + "-gen-drift"
	runEddy(t, 120*time.Second, "gen", "--count", "3000", "--to", "kafka", "--brokers", strings.Join(k.Brokers, ","),
		"--topic-prefix", k.Layout.Prefix, "--seed", "4", "--recs", "--recs-drift-sample", "0.3", "--recs-drift-group", group)
	impressions := map[string][]string{}
	first := map[string]time.Time{}
	for _, r := range k.ReadAll(t, k.Layout.Name(stream.TopicEvents)) {
		e, err := event.Decode(r.Value, event.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if e.Type == event.Impression {
			if len(impressions[e.RequestID]) == 0 {
				first[e.RequestID] = e.Time
			}
			impressions[e.RequestID] = append(impressions[e.RequestID], e.ItemID)
		}
	}
	lists := map[string]bool{}
	sampled := 0
	sample := task.NewKeySample(0.3)
	for _, r := range k.ReadAll(t, k.Layout.Name(stream.TopicRecs)) {
		l, err := drift.DecodeServedList(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		imp := impressions[l.RequestID]
		var items []string
		for _, it := range l.Items {
			items = append(items, it.ItemID)
			if len(it.Features) != 5 {
				t.Fatalf("list %s item %s: features %v", l.RequestID, it.ItemID, it.Features)
			}
		}
		if string(r.Key) != l.UserID || len(r.Headers) != 1 || string(r.Headers[0].Value) != drift.ServedListSchemaHeaderValue ||
			len(imp) == 0 || len(imp) > len(items) || !slices.Equal(imp, items[:len(imp)]) || !l.Time.Equal(first[l.RequestID]) {
			t.Fatalf("list %s of %s at %v: items %v, impressions %v at %v", l.RequestID, r.Key, l.Time, items, imp, first[l.RequestID])
		}
		lists[string(r.Key)+"\x00"+string(r.Value)] = true
		if sample.Keeps(r.Key) {
			sampled++
		}
	}
	if len(lists) != len(impressions) {
		t.Fatalf("%d lists for %d requests", len(lists), len(impressions))
	}
	copies := k.ReadAll(t, k.Layout.Name(group+"-input"))
	for _, c := range copies {
		if !sample.Keeps(c.Key) || !lists[string(c.Key)+"\x00"+string(c.Value)] || len(c.Headers) != 1 || string(c.Headers[0].Value) != "recs" {
			t.Fatalf("copy for %s: headers %v", c.Key, c.Headers)
		}
	}
	if len(copies) != sampled || sampled == 0 {
		t.Fatalf("%d copies, %d lists of sampled users", len(copies), sampled)
	}
}
