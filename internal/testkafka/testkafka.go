package testkafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/stream"
)

// EnvBrokers names the variable that points tests at a real broker.
const EnvBrokers = "EDDY_TEST_BROKERS"

// Kafka is a broker for one test and the topic layout it should use.
type Kafka struct {
	Brokers []string
	Layout  stream.TopicLayout
	// Real is true when the broker is a real Apache Kafka.
	Real bool
	// Embedded is the in-process broker, nil for a real one.
	Embedded *stream.EmbeddedBroker
}

// Start returns a broker for t, with Eddy's topics created under a prefix of
// its own. The embedded broker is closed when the test ends.
func Start(t testing.TB, partitions int32) *Kafka {
	t.Helper()
	k := &Kafka{Layout: stream.TopicLayout{Prefix: UniquePrefix(), Partitions: partitions, ReplicationFactor: 1}}
	if env := os.Getenv(EnvBrokers); env != "" {
		k.Brokers, k.Real = strings.Split(env, ","), true
	} else {
		b, err := stream.StartEmbedded(stream.EmbeddedConfig{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("start embedded broker: %v", err)
		}
		t.Cleanup(b.Close)
		k.Embedded, k.Brokers = b, []string{b.Addr()}
	}
	k.CreateTopics(t)
	return k
}

// UniquePrefix returns a fresh topic prefix such as "t3f9a1c2.".
func UniquePrefix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:]) + "."
}

// Client returns a client config for the broker.
func (k *Kafka) Client() stream.ClientConfig {
	c := stream.DefaultClientConfig()
	c.Brokers = k.Brokers
	c.TopicPrefix = k.Layout.Prefix
	return c
}

// NewClient returns a franz-go client closed at the end of the test.
func (k *Kafka) NewClient(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cfg := k.Client()
	cl, err := cfg.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// CreateTopics creates the layout's topics.
func (k *Kafka) CreateTopics(t testing.TB) {
	t.Helper()
	cl := k.NewClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := stream.EnsureTopics(ctx, kadm.NewClient(cl), k.Layout.Specs()); err != nil {
		t.Fatalf("create topics: %v", err)
	}
}

// ReadAll returns the committed data records of topic from the start up to
// its last stable offsets as they are when it is called (an open
// transaction does not hold it up), read with read_committed. Transaction
// markers take offsets too, so progress is tracked over control records as
// well (kept by the client, left out of the result): waiting for a data
// record at end-1 would never finish on a transactional topic.
func (k *Kafka) ReadAll(t testing.TB, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(k.NewClient(t))
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list last stable offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return nil
	}
	cl := k.NewClient(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	var out []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: timed out with %d records read and partitions %v unfinished", topic, len(out), want)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch %s: %v", topic, err) })
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

// EnvRequirePeers, when "1", turns every skipped real-peer test (real Kafka,
// kcat, promtool) into a failure. CI sets it, so that a missing tool cannot
// pass unnoticed.
const EnvRequirePeers = "EDDY_REQUIRE_REAL_PEERS"

// RequireTool returns the path of the named program, or skips the test with
// a plain message, or fails it when EDDY_REQUIRE_REAL_PEERS=1.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv(EnvRequirePeers) == "1" {
		t.Fatalf("real peer %s is not installed and %s=1", name, EnvRequirePeers)
	}
	t.Skipf("SKIPPED real-peer test: %s is not installed", name)
	return ""
}
