package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/stream"
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
