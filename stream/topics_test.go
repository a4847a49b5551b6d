package stream_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddyrec/eddy/stream"
)

var quiet = slog.New(slog.DiscardHandler)

func TestEnsureTopicsIdempotent(t *testing.T) {
	b, err := stream.StartEmbedded(stream.EmbeddedConfig{Addr: "127.0.0.1:0", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	layout := stream.TopicLayout{Prefix: "x.", Partitions: 4, ReplicationFactor: 1}
	first, err := stream.EnsureTopics(ctx, adm, layout.Specs())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range first {
		if !s.Created || s.Mismatch != "" {
			t.Errorf("first run: %s created=%v mismatch=%q", s.Spec.Name, s.Created, s.Mismatch)
		}
	}
	second, err := stream.EnsureTopics(ctx, adm, layout.Specs())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range second {
		if s.Created || s.Mismatch != "" {
			t.Errorf("second run: %s created=%v mismatch=%q", s.Spec.Name, s.Created, s.Mismatch)
		}
	}
	infos, err := stream.ListTopics(ctx, adm, "x.")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		parts  int
		policy string
	}{
		"x.events": {4, "delete"}, "x.model.users": {4, "compact"}, "x.model.ranker": {1, "compact"}, "x.control": {1, "delete"},
	}
	if len(infos) != len(layout.Specs()) {
		t.Fatalf("ListTopics found %d topics, want %d", len(infos), len(layout.Specs()))
	}
	for _, info := range infos {
		if w, ok := want[info.Name]; ok && (info.Partitions != w.parts || info.CleanupPolicy != w.policy) {
			t.Errorf("%s: %d partitions policy %q, want %d %q", info.Name, info.Partitions, info.CleanupPolicy, w.parts, w.policy)
		}
	}
	// A layout asking for more partitions reports the difference and
	// changes nothing.
	bigger := stream.TopicLayout{Prefix: "x.", Partitions: 8, ReplicationFactor: 1}
	third, err := stream.EnsureTopics(ctx, adm, bigger.Specs())
	if err != nil {
		t.Fatal(err)
	}
	if third[0].Mismatch == "" || third[0].Partitions != 4 {
		t.Errorf("partition mismatch not reported: %+v", third[0])
	}
}

func TestTopicLayoutValidate(t *testing.T) {
	for _, tt := range []struct {
		l    stream.TopicLayout
		okay bool
	}{
		{stream.TopicLayout{Partitions: 6, ReplicationFactor: 1}, true},
		{stream.TopicLayout{Partitions: 0, ReplicationFactor: 1}, false},
		{stream.TopicLayout{Partitions: 6, ReplicationFactor: 0}, false},
	} {
		if err := tt.l.Validate(); (err == nil) != tt.okay {
			t.Errorf("%+v: Validate() = %v", tt.l, err)
		}
	}
}

// TestEmbeddedPersistsAndLocks: records survive a restart on the same data
// dir, a second broker on a locked dir is refused, and a wiped dir gets a
// new cluster id.
func TestEmbeddedPersistsAndLocks(t *testing.T) {
	dir := t.TempDir()
	b, err := stream.StartEmbedded(stream.EmbeddedConfig{Addr: "127.0.0.1:0", DataDir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if !b.NewLog() {
		t.Error("first start did not report a new log")
	}
	if _, err := stream.StartEmbedded(stream.EmbeddedConfig{Addr: "127.0.0.1:0", DataDir: dir, Logger: quiet}); !errors.Is(err, stream.ErrDataDirLocked) {
		t.Fatalf("second broker on the same dir: %v, want ErrDataDirLocked", err)
	}
	addr := b.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, _ := kgo.NewClient(kgo.SeedBrokers(addr))
	adm := kadm.NewClient(cl)
	if _, err := stream.EnsureTopics(ctx, adm, []stream.TopicSpec{{Name: "t", Partitions: 2, ReplicationFactor: 1}}); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Key: []byte{byte(i)}, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	idBefore := clusterID(ctx, t, adm)
	cl.Close()
	b.Close()

	b2, err := stream.StartEmbedded(stream.EmbeddedConfig{Addr: addr, DataDir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if b2.NewLog() {
		t.Error("restart on a persisted dir reported a new log")
	}
	cl2, _ := kgo.NewClient(kgo.SeedBrokers(b2.Addr()))
	adm2 := kadm.NewClient(cl2)
	ends, err := adm2.ListEndOffsets(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	if n != 100 {
		t.Fatalf("after restart topic t has %d records, want 100", n)
	}
	if got := clusterID(ctx, t, adm2); got != idBefore {
		t.Errorf("cluster id changed across a restart: %s → %s", idBefore, got)
	}
	cl2.Close()
	b2.Close()

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	b3, err := stream.StartEmbedded(stream.EmbeddedConfig{Addr: "127.0.0.1:0", DataDir: filepath.Clean(dir), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer b3.Close()
	cl3, _ := kgo.NewClient(kgo.SeedBrokers(b3.Addr()))
	defer cl3.Close()
	if !b3.NewLog() || clusterID(ctx, t, kadm.NewClient(cl3)) == idBefore {
		t.Error("a wiped data dir kept the old cluster id")
	}
}

func clusterID(ctx context.Context, t *testing.T, adm *kadm.Client) string {
	t.Helper()
	m, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m.Cluster
}

func TestStartEmbeddedBadAddr(t *testing.T) {
	for _, addr := range []string{"nonsense", "127.0.0.1:99999", "127.0.0.1:http"} {
		if _, err := stream.StartEmbedded(stream.EmbeddedConfig{Addr: addr, Logger: quiet}); err == nil {
			t.Errorf("StartEmbedded(%q) succeeded", addr)
		}
	}
}

// TestEnsureTopicsWaitsUntilListed: a real broker acknowledges a created
// topic before its metadata lists it. EnsureTopics returns only once the
// topic is listed, so that a runtime started next finds its source. The
// fake broker here answers the first three metadata requests after the
// create as if the topic did not exist yet.
func TestEnsureTopicsWaitsUntilListed(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	host, portStr, err := net.SplitHostPort(c.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(portStr)
	const topic, lag = "late", 3
	var created atomic.Bool
	var lagged atomic.Int32
	c.ControlKey(int16(kmsg.CreateTopics), func(kmsg.Request) (kmsg.Response, error, bool) {
		created.Store(true)
		return nil, nil, false
	})
	c.ControlKey(int16(kmsg.Metadata), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := r.(*kmsg.MetadataRequest)
		if !created.Load() || lagged.Load() >= lag || len(req.Topics) == 0 || req.Topics[0].Topic == nil || *req.Topics[0].Topic != topic {
			return nil, nil, false
		}
		lagged.Add(1)
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 0, Host: host, Port: int32(port)}}
		rt := kmsg.NewMetadataResponseTopic()
		rt.Topic = kmsg.StringPtr(topic)
		rt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		resp.Topics = append(resp.Topics, rt)
		return resp, nil, true
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := stream.EnsureTopics(ctx, kadm.NewClient(cl), []stream.TopicSpec{{Name: topic, Partitions: 2, ReplicationFactor: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if !st[0].Created {
		t.Fatalf("topic not created: %+v", st[0])
	}
	if n := lagged.Load(); n != lag {
		t.Fatalf("EnsureTopics returned after %d of the %d metadata answers that did not list the topic", n, lag)
	}
}
