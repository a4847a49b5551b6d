package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/features"
	"github.com/eddyrec/eddy/internal/synth"
	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/stream"
)

// featureStream is a seeded event stream, the producer that writes it, and
// the reference: the feature state machines applied in memory to every
// event once, in the order of each user's partition (which is the order
// produced: one producer, records keyed by user id).
type featureStream struct {
	gen    *synth.Generator
	rng    *rand.Rand
	topic  string
	cl     *kgo.Client
	sent   []event.Event
	copies int // duplicates produced (same event_id)
	users  map[string]*features.UserState
	items  map[string]*features.ItemState
}

func newFeatureStream(t *testing.T, cl *kgo.Client, topic string, users, items int, seed uint64) *featureStream {
	t.Helper()
	cfg := synth.DefaultConfig()
	cfg.Users, cfg.Items, cfg.Seed = users, items, seed
	g, err := synth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &featureStream{gen: g, rng: rand.New(rand.NewPCG(seed, 11)), topic: topic, cl: cl,
		users: map[string]*features.UserState{}, items: map[string]*features.ItemState{}}
}

var eventHeaders = []kgo.RecordHeader{{Key: event.SchemaHeader, Value: []byte(event.SchemaHeaderValue)}}

// produce writes n new events and, with probability dupRate each, a copy of
// an event sent earlier.
func (s *featureStream) produce(t *testing.T, n int, dupRate float64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	rs := make([]*kgo.Record, 0, n+n/10)
	for range n {
		var e event.Event
		s.gen.Next(&e)
		s.sent = append(s.sent, e)
		rs = append(rs, &kgo.Record{Topic: s.topic, Key: []byte(e.UserID), Value: e.AppendJSON(nil), Headers: eventHeaders})
		u := s.users[e.UserID]
		if u == nil {
			u = &features.UserState{}
			s.users[e.UserID] = u
		}
		it := s.items[e.ItemID]
		if it == nil {
			it = &features.ItemState{}
			s.items[e.ItemID] = it
		}
		if err := u.Apply(&e); err != nil {
			t.Fatal(err)
		}
		if err := it.Apply(&e); err != nil {
			t.Fatal(err)
		}
		if s.rng.Float64() < dupRate {
			d := s.sent[s.rng.IntN(len(s.sent))]
			rs = append(rs, &kgo.Record{Topic: s.topic, Key: []byte(d.UserID), Value: d.AppendJSON(nil), Headers: eventHeaders})
			s.copies++
		}
	}
	if err := s.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce events: %v", err)
	}
}

// at is the time served views are evaluated at: after every event.
var viewAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// compare reads every user and item of the stream from the process API at
// url and compares it with the reference: users exactly (the whole view),
// items by their totals (their updates arrive from several partitions in an
// order that varies between runs, so decayed sums may differ in the last
// bits). It returns the first difference, "" when everything matches.
func (s *featureStream) compare(url string) string {
	ms := fmt.Sprint(viewAt.UnixMilli())
	get := func(path string, v any) (int, error) {
		resp, err := http.Get(url + path + "?at=" + ms)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, err
		}
		if resp.StatusCode == 200 {
			return 200, json.Unmarshal(b, v)
		}
		return resp.StatusCode, nil
	}
	for id, ref := range s.users {
		var got features.UserView
		code, err := get("/v1/users/"+id+"/features", &got)
		if err != nil || code != 200 {
			return fmt.Sprintf("user %s: HTTP %d %v", id, code, err)
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(ref.View(id, viewAt))
		if string(g) != string(w) {
			return fmt.Sprintf("user %s:\n got %s\nwant %s", id, g, w)
		}
	}
	for id, ref := range s.items {
		var got features.ItemView
		code, err := get("/v1/items/"+id+"/features", &got)
		if err != nil || code != 200 {
			return fmt.Sprintf("item %s: HTTP %d %v", id, code, err)
		}
		want := ref.View(id, viewAt)
		totals := func(v features.ItemView) string {
			var b strings.Builder
			fmt.Fprintf(&b, "events=%d impressions=%d clicks=%d watch=%d users=%d", v.Events, v.Impressions, v.Clicks, v.WatchEvents, v.DistinctUsers)
			for _, typ := range event.Types {
				fmt.Fprintf(&b, " %s=%d", typ, v.Counts[typ.String()].Total)
			}
			return b.String()
		}
		if g, w := totals(got), totals(want); g != w {
			return fmt.Sprintf("item %s:\n got %s\nwant %s", id, g, w)
		}
	}
	return ""
}

// waitMatch polls compare until the process serves the reference.
func (s *featureStream) waitMatch(t *testing.T, p *proc, url string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msg := s.compare(url)
		if msg == "" {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("eddy process exited: %v; last difference: %s", p.err, msg)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("served features differ from the reference after %v: %s", d, msg)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// processArgs are the arguments of `eddy process` against k; groups carry
// the test's topic prefix, so tests sharing a real broker do not share
// groups or changelog topics.
func processArgs(k *testkafka.Kafka, dataDir, httpAddr string, extra ...string) []string {
	return append([]string{"process",
		"--brokers", strings.Join(k.Brokers, ","),
		"--topic-prefix", k.Layout.Prefix,
		"--partitions", fmt.Sprint(k.Layout.Partitions),
		"--data-dir", dataDir,
		"--http-addr", httpAddr,
		"--features-user-group", k.Layout.Prefix + "features-users",
		"--features-item-group", k.Layout.Prefix + "features-items",
		"--log-format", "json",
	}, extra...)
}

// waitLog waits until p's output contains s.
func waitLog(t *testing.T, p *proc, s string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(p.out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("eddy did not log %s within %v", s, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// endOffsets sums the end offsets of topic's partitions.
func endOffsets(t *testing.T, adm *kadm.Client, topic string) (hwm, lso int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	stable, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) { hwm += o.Offset })
	stable.Each(func(o kadm.ListedOffset) { lso += o.Offset })
	return hwm, lso
}

// TestProcessCrash is the crash harness: `eddy process` runs as a child
// process over a seeded stream of 200k events (1% delivered twice), is
// killed with SIGKILL at 22 random moments while events keep arriving —
// during startup, restore, and inside batches and their Kafka transactions
// — and restarted each time on the same data dir. The last run must serve,
// for every user and item, exactly what applying each event once gives:
// nothing lost, nothing applied twice.
func TestProcessCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills eddy process 22 times over 200k events; skipped in -short")
	}
	const (
		total = 200_000
		kills = 22
	)
	k := testkafka.Start(t, 4)
	cl := k.NewClient(t, kgo.ProducerLinger(5*time.Millisecond))
	adm := kadm.NewClient(k.NewClient(t))
	s := newFeatureStream(t, cl, k.Layout.Name(stream.TopicEvents), 3000, 1500, 42)
	updates := k.Layout.Name(stream.TopicItemUpdates)
	changelogs := []string{k.Layout.Prefix + "features-users-state-changelog", k.Layout.Prefix + "features-items-state-changelog"}
	dir := t.TempDir()
	httpAddr := freeAddr(t)
	args := processArgs(k, dir, httpAddr, "--instance-id", "crash-test")
	rng := rand.New(rand.NewPCG(42, 42))
	chunk := total / (kills + 1)
	started := time.Now()
	progressed, inTxn := 0, 0
	lastHWM := int64(0)
	// The planned kills, then (on a loaded machine, where fewer bursts
	// are caught mid-transaction) up to 10 more until at least 3 kills
	// landed inside an open transaction.
	rounds := 0
	for i := 0; i < kills || (inTxn < 3 && i < kills+10); i++ {
		rounds++
		// A sixth of each chunk is a backlog before the start (a
		// catch-up first); a sixth arrives steadily while the child
		// runs; the rest is a burst just before most kills,
		// so that they land inside batches and their transactions. One
		// run in four is killed early instead: during startup, group
		// join or changelog catch-up.
		s.produce(t, chunk/6, 0.01)
		p := startEddy(t, nil, args...)
		early := rng.IntN(4) == 0
		life := time.Duration(300+rng.IntN(2200)) * time.Millisecond
		if early {
			life = time.Duration(50+rng.IntN(600)) * time.Millisecond
		}
		deadline := time.Now().Add(life)
		for sent := 0; sent < chunk/6 && time.Now().Before(deadline); sent += 200 {
			s.produce(t, 200, 0.01)
			time.Sleep(time.Duration(rng.IntN(60)) * time.Millisecond)
		}
		time.Sleep(time.Until(deadline))
		if !early {
			s.produce(t, 2*chunk/3, 0.01)
			time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.done
		if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("run %d ended before it was killed: %v\n%s", i, p.err, p.out.String())
		}
		hwm, lso := endOffsets(t, adm, updates)
		if hwm > lastHWM {
			progressed++
		}
		lastHWM = hwm
		open := hwm > lso
		for _, cl := range changelogs {
			h, l := endOffsets(t, adm, cl)
			open = open || h > l
		}
		if open {
			inTxn++ // killed with a transaction open
		}
	}
	if rest := total - len(s.sent); rest > 0 {
		s.produce(t, rest, 0.01)
	}
	t.Logf("%d kills in %v: %d runs made progress, %d left a transaction open; %d events + %d duplicates",
		rounds, time.Since(started).Round(time.Millisecond), progressed, inTxn, len(s.sent), s.copies)
	if progressed < kills/2 {
		t.Fatalf("only %d of %d killed runs committed anything: the kills prove little", progressed, kills)
	}
	if inTxn < 3 {
		t.Fatalf("only %d kills landed inside an open transaction", inTxn)
	}
	p := startEddy(t, nil, args...)
	url := "http://" + httpAddr
	waitReady(t, p, url+"/readyz", 120*time.Second)
	s.waitMatch(t, p, url, 180*time.Second)
	if err := p.stop(t, syscall.SIGTERM, 60*time.Second); err != nil {
		t.Fatalf("clean stop: %v", err)
	}
	t.Logf("crash test total %v", time.Since(started).Round(time.Millisecond))
}

// TestProcessRebalance runs two `eddy process` instances in one group; one
// stops, and later a new one starts with an empty data dir: partitions move
// and are restored from the changelogs, and the totals are exact. The
// members are dynamic (no --instance-id): a static member that stops keeps
// its partitions until the session timeout, by design.
func TestProcessRebalance(t *testing.T) {
	if testing.Short() {
		t.Skip("three eddy processes; skipped in -short")
	}
	k := testkafka.Start(t, 4)
	cl := k.NewClient(t, kgo.ProducerLinger(5*time.Millisecond))
	s := newFeatureStream(t, cl, k.Layout.Name(stream.TopicEvents), 1000, 500, 7)
	s.produce(t, 20000, 0.01)
	addrA, addrB, addrC := freeAddr(t), freeAddr(t), freeAddr(t)
	a := startEddy(t, nil, processArgs(k, t.TempDir(), addrA)...)
	b := startEddy(t, nil, processArgs(k, t.TempDir(), addrB)...)
	waitReady(t, a, "http://"+addrA+"/readyz", 60*time.Second)
	waitReady(t, b, "http://"+addrB+"/readyz", 60*time.Second)
	s.produce(t, 20000, 0.01)
	// A member is ready as soon as it joined, possibly before the
	// cooperative rebalance handed it partitions: wait for them.
	waitLog(t, b, `"msg":"partition task ready"`, 60*time.Second)
	// Until one instance holds everything, the union is compared by
	// asking the instance that stays after b stops.
	if err := b.stop(t, syscall.SIGTERM, 60*time.Second); err != nil {
		t.Fatalf("stop b: %v", err)
	}
	s.produce(t, 10000, 0.01)
	s.waitMatch(t, a, "http://"+addrA, 120*time.Second)

	c := startEddy(t, nil, processArgs(k, t.TempDir(), addrC)...)
	waitReady(t, c, "http://"+addrC+"/readyz", 60*time.Second)
	waitLog(t, c, `"msg":"partition task ready"`, 60*time.Second)
	s.produce(t, 10000, 0.01)
	// Now a and c share the partitions: stopping a moves its partitions
	// to c, which ends up holding everything, restored from the
	// changelogs.
	if err := a.stop(t, syscall.SIGTERM, 60*time.Second); err != nil {
		t.Fatalf("stop a: %v", err)
	}
	s.waitMatch(t, c, "http://"+addrC, 120*time.Second)
	if !strings.Contains(c.out.String(), "restoring from changelog") {
		t.Fatalf("the new instance restored nothing from the changelog:\n%s", c.out.String())
	}
	if err := c.stop(t, syscall.SIGTERM, 60*time.Second); err != nil {
		t.Fatalf("stop c: %v", err)
	}
}

// TestProcessEmbeddedBroker runs `eddy process` with its own embedded
// broker: a restart resumes where it stopped (the broker keeps its log), a
// wiped broker dir stops it with a clear error and exit code 1 (no restart
// loop), and --reset-on-wiped-broker starts over from the new broker.
func TestProcessEmbeddedBroker(t *testing.T) {
	if os.Getenv(testkafka.EnvBrokers) != "" {
		t.Skip("tests the embedded broker")
	}
	dir := t.TempDir()
	httpAddr, brokerAddr := freeAddr(t), freeAddr(t)
	url := "http://" + httpAddr
	args := []string{"process", "--data-dir", dir, "--http-addr", httpAddr, "--embedded-broker-addr", brokerAddr,
		"--partitions", "2", "--log-format", "json"}
	newStream := func(seed uint64) *featureStream {
		c := stream.DefaultClientConfig()
		c.Brokers = []string{brokerAddr}
		cl, err := c.NewClient(kgo.ProducerLinger(5 * time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return newFeatureStream(t, cl, "eddy.events", 200, 100, seed)
	}

	p := startEddy(t, nil, args...)
	waitReady(t, p, url+"/readyz", 60*time.Second)
	s := newStream(1)
	s.produce(t, 3000, 0.02)
	s.waitMatch(t, p, url, 60*time.Second)
	if err := p.stop(t, syscall.SIGTERM, 60*time.Second); err != nil {
		t.Fatalf("clean stop: %v", err)
	}

	p = startEddy(t, nil, args...)
	waitReady(t, p, url+"/readyz", 60*time.Second)
	s.cl.Close()
	s.cl = newStream(1).cl
	s.produce(t, 3000, 0.02)
	s.waitMatch(t, p, url, 60*time.Second)
	if err := p.stop(t, syscall.SIGTERM, 60*time.Second); err != nil {
		t.Fatalf("clean stop after restart: %v", err)
	}

	if err := os.RemoveAll(filepath.Join(dir, "broker")); err != nil {
		t.Fatal(err)
	}
	p = startEddy(t, nil, args...)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("eddy process kept running on a wiped broker:\n%s", p.out.String())
	}
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit on a wiped broker: %v, want exit code 1\n%s", p.err, p.out.String())
	}
	out := p.out.String()
	if !strings.Contains(out, "the broker's log does not match the local state") || !strings.Contains(out, "--reset-on-wiped-broker") {
		t.Fatalf("no clear log line about the wiped broker:\n%s", out)
	}
	if n := strings.Count(out, "process role starting"); n != 1 {
		t.Fatalf("the role started %d times: it must not restart on a wiped broker", n)
	}

	p = startEddy(t, nil, append(args, "--reset-on-wiped-broker")...)
	waitReady(t, p, url+"/readyz", 60*time.Second)
	if !strings.Contains(p.out.String(), "dropping it (reset policy)") {
		t.Fatalf("no log line about dropping the state:\n%s", p.out.String())
	}
	s = newStream(2)
	s.produce(t, 2000, 0)
	s.waitMatch(t, p, url, 60*time.Second)
	if err := p.stop(t, syscall.SIGTERM, 60*time.Second); err != nil {
		t.Fatalf("clean stop after reset: %v", err)
	}
}

// TestProcessRealBrokerRestart stops and starts the real Kafka broker of
// scripts/integration.sh while `eddy process` works through a stream:
// processing resumes by itself and the totals are exact.
func TestProcessRealBrokerRestart(t *testing.T) {
	if os.Getenv(testkafka.EnvBrokers) == "" {
		t.Skip("runs only against the real broker of scripts/integration.sh (EDDY_TEST_BROKERS unset)")
	}
	k := testkafka.Start(t, 3)
	cl := k.NewClient(t, kgo.ProducerLinger(5*time.Millisecond))
	s := newFeatureStream(t, cl, k.Layout.Name(stream.TopicEvents), 1000, 500, 5)
	s.produce(t, 30000, 0.01)
	httpAddr := freeAddr(t)
	url := "http://" + httpAddr
	p := startEddy(t, nil, processArgs(k, t.TempDir(), httpAddr, "--instance-id", "restart")...)
	waitReady(t, p, url+"/readyz", 120*time.Second)
	s.produce(t, 30000, 0.01)
	restartRealBroker(t, 5*time.Second)
	s.produce(t, 20000, 0.01)
	s.waitMatch(t, p, url, 180*time.Second)
	if err := p.stop(t, syscall.SIGTERM, 60*time.Second); err != nil {
		t.Fatalf("clean stop: %v", err)
	}
}

// TestBenchProcessFreshPrefixesOnOneBroker: eddy bench process on a shared
// broker with a fresh --topic-prefix per run, as its help says. A stage's
// changelog is named after its consumer group, not the prefix: with the
// default groups the second run restored the first run's state and stopped
// on its offsets ("stored source offset … is beyond the end 0"). The bench
// now prefixes its default groups.
func TestBenchProcessFreshPrefixesOnOneBroker(t *testing.T) {
	k := testkafka.Start(t, 2)
	const n = 20_000
	for i, sample := range []string{"0", "0.05"} {
		out, _ := runEddy(t, 3*time.Minute, "bench", "process",
			"--brokers", strings.Join(k.Brokers, ","),
			"--topic-prefix", fmt.Sprintf("%sb%d.", k.Layout.Prefix, i),
			"--partitions", "2", "--events", fmt.Sprint(n), "--users", "500", "--items", "200",
			"--drift-sample", sample, "--json")
		var res struct {
			Events      int     `json:"events"`
			PerSec      float64 `json:"events_per_sec"`
			DriftCopies uint64  `json:"drift_copies"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("run %d: %v in %q", i, err, out)
		}
		if res.Events != n || res.PerSec <= 0 {
			t.Errorf("run %d: %+v", i, res)
		}
		if (sample != "0") != (res.DriftCopies > 0) {
			t.Errorf("run %d: --drift-sample %s made %d copies", i, sample, res.DriftCopies)
		}
	}
}
