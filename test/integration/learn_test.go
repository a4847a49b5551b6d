package integration

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/synth"
	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/modelrec"
	"github.com/eddyrec/eddy/stream"
)

// learnArgs are the flags of an `eddy learn` against k.
func learnArgs(k *testkafka.Kafka, dir, instance, httpAddr string) []string {
	return []string{"learn",
		"--brokers", strings.Join(k.Brokers, ","),
		"--topic-prefix", k.Layout.Prefix,
		"--partitions", fmt.Sprint(k.Layout.Partitions),
		"--data-dir", dir,
		"--http-addr", httpAddr,
		"--dim", "32",
		"--users-group", k.Layout.Prefix + "learner-users",
		"--items-group", k.Layout.Prefix + "learner-items",
		"--instance-id", instance,
		"--session-timeout", "10s",
		"--transaction-timeout", "10s",
		"--max-batch-records", "1000",
		"--log-format", "json",
	}
}

func synthStream(t *testing.T, spec string, n int) []event.Event {
	t.Helper()
	cfg, err := synth.ParseSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	g, err := synth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]event.Event, n)
	for i := range evs {
		g.Next(&evs[i])
	}
	return evs
}

// produceTo sends evs, keyed by user, to the events topic of every layout,
// in the same order, so each partition holds the same sequence everywhere.
func produceTo(t *testing.T, cl *kgo.Client, evs []event.Event, ks ...*testkafka.Kafka) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, k := range ks {
		recs := make([]*kgo.Record, len(evs))
		for i := range evs {
			recs[i] = &kgo.Record{Topic: k.Layout.Name(stream.TopicEvents), Key: []byte(evs[i].UserID), Value: evs[i].AppendJSON(nil)}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// modelState reads a compacted model topic: the last committed vector per key.
func modelState(t *testing.T, k *testkafka.Kafka, topic string) map[string]modelrec.Vector {
	t.Helper()
	out := map[string]modelrec.Vector{}
	for _, r := range k.ReadAll(t, k.Layout.Name(topic)) {
		var v modelrec.Vector
		if err := modelrec.DecodeVector(r.Value, &v); err != nil {
			t.Fatalf("%s %d/%d: %v", topic, r.Partition, r.Offset, err)
		}
		out[string(r.Key)] = v
	}
	return out
}

func counterDiff(got, want map[string]modelrec.Vector) string {
	var bad []string
	for k, w := range want {
		if g, ok := got[k]; !ok || g.Updates != w.Updates {
			bad = append(bad, fmt.Sprintf("%s got %d want %d", k, g.Updates, w.Updates))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			bad = append(bad, k+" unexpected")
		}
	}
	if len(bad) == 0 {
		return ""
	}
	sort.Strings(bad)
	return fmt.Sprintf("%d of %d differ: %s", len(bad), len(want), strings.Join(bad[:min(5, len(bad))], "; "))
}

func sumUpdates(m map[string]modelrec.Vector) uint64 {
	var s uint64
	for _, v := range m {
		s += v.Updates
	}
	return s
}

// hitRate10 is HR@10 of a published model on the positives of test whose
// user it knows, seen items excluded.
func hitRate10(users, items map[string]modelrec.Vector, test []event.Event) (float64, int) {
	conf := learner.DefaultConfidence()
	ids := make([]string, 0, len(items))
	for id := range items {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	scores := make([]float32, len(ids))
	hits, n := 0, 0
	for i := range test {
		ev := &test[i]
		u, ok := users[ev.UserID]
		if !ok || !conf.Positive(ev) || slices.Contains(u.Seen, ev.ItemID) {
			continue
		}
		n++
		ur := learner.Row{Vec: u.Vec}
		target := float32(math.Inf(-1))
		for j, id := range ids {
			it := items[id]
			scores[j] = learner.Score(&ur, &learner.Row{Vec: it.Vec, Bias: it.Bias})
			if id == ev.ItemID {
				target = scores[j]
			}
		}
		better := 0
		for j := range ids {
			if scores[j] > target && !slices.Contains(u.Seen, ids[j]) {
				better++
			}
		}
		if better < 10 && !math.IsInf(float64(target), -1) {
			hits++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return float64(hits) / float64(n), n
}

// TestLearnKill9 kills `eddy learn` with SIGKILL at random moments while a
// stream of more than 100,000 events arrives, then lets a last process
// finish. A clean `eddy learn` runs the same events (same partitions, same
// order) under another topic prefix. Every user and item update counter
// must equal the clean run's, and the crash run's model must rank held-out
// positives as well as the clean one's, within noise.
func TestLearnKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes over a 120k-event stream; skipped in -short")
	}
	k := testkafka.Start(t, 3)
	clean := *k
	clean.Layout.Prefix = testkafka.UniquePrefix()
	clean.CreateTopics(t)
	cl := k.NewClient(t, kgo.ProducerLinger(0))

	all := synthStream(t, "users=2000,items=1000,seed=31", 140_000)
	train, test := all[:120_000], all[120_000:]
	conf := learner.DefaultConfidence()
	training := 0
	for i := range train {
		if _, w := conf.Signal(&train[i]); w > 0 && train[i].Type != event.Impression {
			training++
		}
	}

	startEddy(t, nil, learnArgs(&clean, t.TempDir(), "clean", freeAddr(t))...)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(4, 4))
	const kills = 12
	next := 0
	step := len(train) / (kills + 2)
	start := time.Now()
	for i := range kills {
		p := startEddy(t, nil, learnArgs(k, dir, "kill9", freeAddr(t))...)
		life := time.Duration(400+rng.IntN(1600)) * time.Millisecond
		end := min(next+step, len(train))
		for deadline := time.Now().Add(life); time.Now().Before(deadline); {
			if next < end {
				n := min(end-next, 200+rng.IntN(800))
				produceTo(t, cl, train[next:next+n], k, &clean)
				next += n
			}
			time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.done
		if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("child %d ended before it was killed: %v\n%s", i, p.err, p.out.String())
		}
	}
	before := sumUpdates(modelState(t, k, stream.TopicModelUsers))
	t.Logf("%d kills over %v; the children applied %d of %d training events before the last start", kills, time.Since(start).Round(time.Millisecond), before, training)
	if before == 0 {
		t.Fatal("no child committed anything before being killed")
	}
	produceTo(t, cl, train[next:], k, &clean)
	startEddy(t, nil, learnArgs(k, dir, "kill9", freeAddr(t))...)

	deadline := time.Now().Add(3 * time.Minute)
	for {
		cu, ci := modelState(t, &clean, stream.TopicModelUsers), modelState(t, &clean, stream.TopicModelItems)
		ku, ki := modelState(t, k, stream.TopicModelUsers), modelState(t, k, stream.TopicModelItems)
		du, di := counterDiff(ku, cu), counterDiff(ki, ci)
		if sumUpdates(cu) == uint64(training) && du == "" && di == "" {
			hrK, n := hitRate10(ku, ki, test)
			hrC, _ := hitRate10(cu, ci, test)
			se := math.Sqrt(hrC * (1 - hrC) / float64(n))
			t.Logf("exact: %d users (%d updates), %d items (%d updates); HR@10 on %d held-out positives: crash run %.4f, clean run %.4f (±%.4f); %v",
				len(ku), sumUpdates(ku), len(ki), sumUpdates(ki), n, hrK, hrC, se, time.Since(start).Round(time.Millisecond))
			if math.Abs(hrK-hrC) > 4*se+0.01 {
				t.Fatalf("HR@10 of the crash run %.4f differs from the clean run's %.4f by more than noise", hrK, hrC)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("counters not equal to the clean run's: users (%d of %d training events in the clean run): %s; items: %s",
				sumUpdates(cu), training, du, di)
		}
		time.Sleep(time.Second)
	}
}

// TestLearnServeEndToEnd posts events through `eddy ingest`, lets `eddy
// learn` train on them and asks `eddy serve`: a user the model did not know
// gets a personal (non-fallback) list once their events are learnt, with
// their consumed items excluded.
func TestLearnServeEndToEnd(t *testing.T) {
	k := testkafka.Start(t, 2)
	_, ingestURL := startIngest(t, k)
	startEddy(t, nil, learnArgs(k, t.TempDir(), "e2e", freeAddr(t))...)
	serveAddr := freeAddr(t)
	srv := startEddy(t, nil, "serve",
		"--brokers", strings.Join(k.Brokers, ","),
		"--topic-prefix", k.Layout.Prefix,
		"--partitions", fmt.Sprint(k.Layout.Partitions),
		"--http-addr", serveAddr,
		"--log-format", "json")
	waitReady(t, srv, "http://"+serveAddr+"/readyz", 60*time.Second)

	// Background traffic trains the items; then one new user's clicks.
	evs := synthStream(t, "users=300,items=200,seed=5", 20_000)
	now := time.Now().UnixMilli()
	var b strings.Builder
	post := func() {
		code, body, err := post(ingestURL, b.String())
		if err != nil || code != 202 {
			t.Fatalf("post: %d %s %v", code, body, err)
		}
		b.Reset()
	}
	for i := range evs {
		evs[i].Time = time.UnixMilli(now - int64(len(evs)-i))
		b.Write(evs[i].AppendJSON(nil))
		b.WriteByte('\n')
		if (i+1)%2000 == 0 {
			post()
		}
	}
	recs := func() (fallback bool, items []string) { return recommend(t, "http://"+serveAddr, "newcomer") }
	if fb, _ := recs(); !fb {
		t.Fatal("an unknown user was not served the fallback")
	}
	clicked := []string{evs[0].ItemID, evs[1].ItemID, evs[2].ItemID}
	for i, it := range clicked {
		fmt.Fprintf(&b, `{"event_id":"new-%d","user_id":"newcomer","item_id":%q,"type":"click","ts":%d}`+"\n", i, it, now+int64(i))
	}
	sent := time.Now()
	post()
	deadline := time.Now().Add(60 * time.Second)
	for {
		fb, items := recs()
		if !fb && len(items) == 10 {
			for _, c := range clicked {
				if slices.Contains(items, c) {
					t.Fatalf("clicked item %s served despite exclude_seen: %v", c, items)
				}
			}
			t.Logf("personal list %v %v after the clicks were accepted", items, time.Since(sent).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still fallback=%v (%d items) 60 s after the clicks", fb, len(items))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
