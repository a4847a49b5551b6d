package stage

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/modelrec"
	"github.com/eddyrec/eddy/stream"
	"github.com/eddyrec/eddy/stream/task"
)

// kenv is one test's broker, topics and the events produced so far.
type kenv struct {
	k   *testkafka.Kafka
	cfg Config
	cl  *kgo.Client
	evs []event.Event
}

func newKenv(t *testing.T, partitions int32) *kenv {
	t.Helper()
	k := testkafka.Start(t, partitions)
	cfg := testConfig()
	cfg.Topics = Topics{
		Events:     k.Layout.Name(stream.TopicEvents),
		ItemGrads:  k.Layout.Name(stream.TopicItemGrads),
		ModelUsers: k.Layout.Name(stream.TopicModelUsers),
		ModelItems: k.Layout.Name(stream.TopicModelItems),
	}
	return &kenv{k: k, cfg: cfg, cl: k.NewClient(t)}
}

// produce sends evs to the events topic, keyed by user.
func (e *kenv) produce(t *testing.T, evs []event.Event) {
	t.Helper()
	recs := make([]*kgo.Record, len(evs))
	for i := range evs {
		recs[i] = &kgo.Record{Topic: e.cfg.Topics.Events, Key: []byte(evs[i].UserID), Value: evs[i].AppendJSON(nil)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	e.evs = append(e.evs, evs...)
}

func (e *kenv) taskConfig(group, dir string) *task.Config {
	c := task.DefaultConfig()
	c.Client = e.k.Client()
	c.Group, c.Store, c.DataDir = e.k.Layout.Prefix+group, "vectors", dir
	c.SessionTimeout, c.RebalanceTimeout, c.TransactionTimeout = 10*time.Second, 20*time.Second, 20*time.Second
	c.LagCommitInterval = 100 * time.Millisecond
	c.MaxBatchRecords = 1000
	return &c
}

// running is a Service in a goroutine.
type running struct {
	s      *Service
	cancel context.CancelFunc
	done   chan error
}

func (e *kenv) start(t *testing.T, name, dir string, users, items bool) *running {
	t.Helper()
	var uc, ic *task.Config
	if users {
		uc = e.taskConfig("learner-users", dir)
		uc.InstanceID = name + "-users"
	}
	if items {
		ic = e.taskConfig("learner-items", dir)
		ic.InstanceID = name + "-items"
	}
	s, err := NewService(e.cfg, uc, ic, nil, quietLog().With("instance", name))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{s: s, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("service stopped with %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("service did not stop within 60 s")
	}
}

// expected computes the exact update counters of a clean run: user
// counters are training events per user; item counters follow from each
// partition's sampler, so each partition's events (in offset order) are
// run through an in-memory pipeline. It also returns the number of
// gradient records (impressions excluded).
func (e *kenv) expected(t *testing.T) (users, items map[string]uint64, grads int) {
	t.Helper()
	byPart := map[int32][]event.Event{}
	for _, r := range e.k.ReadAll(t, e.cfg.Topics.Events) {
		ev, err := event.Decode(r.Value, event.DecodeOptions{Now: func() time.Time { return farFuture }})
		if err != nil {
			t.Fatal(err)
		}
		byPart[r.Partition] = append(byPart[r.Partition], ev)
	}
	users, items = map[string]uint64{}, map[string]uint64{}
	for _, evs := range byPart {
		p := newPipeline(t, e.cfg)
		p.run(evs, 500)
		for id, v := range p.users {
			users[id] += v.Updates
		}
		for id, v := range p.pub {
			items[id] += v.Updates
		}
		for _, r := range p.grads {
			if k, _, _ := decodeGradHeader(gradHeader(r)); k != KindImpressions {
				grads++
			}
		}
	}
	return users, items, grads
}

// latest reads a compacted model topic: the last committed record per key.
func (e *kenv) latest(t *testing.T, topic string) map[string]modelrec.Vector {
	t.Helper()
	out := map[string]modelrec.Vector{}
	for _, r := range e.k.ReadAll(t, topic) {
		var v modelrec.Vector
		if err := modelrec.DecodeVector(r.Value, &v); err != nil {
			t.Fatalf("%s record %d/%d: %v", topic, r.Partition, r.Offset, err)
		}
		out[string(r.Key)] = v
	}
	return out
}

func counters(m map[string]modelrec.Vector) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v.Updates
	}
	return out
}

// diff describes the first differences between two counter maps.
func diff(got, want map[string]uint64) string {
	var keys []string
	for k := range want {
		if got[k] != want[k] {
			keys = append(keys, k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return ""
	}
	sort.Strings(keys)
	s := fmt.Sprintf("%d of %d keys differ:", len(keys), len(want))
	for _, k := range keys[:min(5, len(keys))] {
		s += fmt.Sprintf(" %s got %d want %d;", k, got[k], want[k])
	}
	return s
}

// waitCounters waits until the model topics hold exactly the expected
// counters, and fails with the difference after timeout.
func (e *kenv) waitCounters(t *testing.T, wantUsers, wantItems map[string]uint64, timeout time.Duration) (map[string]modelrec.Vector, map[string]modelrec.Vector) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		u, it := e.latest(t, e.cfg.Topics.ModelUsers), e.latest(t, e.cfg.Topics.ModelItems)
		du, di := diff(counters(u), wantUsers), diff(counters(it), wantItems)
		if du == "" && di == "" {
			return u, it
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: users: %s items: %s", timeout, du, di)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// hitRate is HR@k of the published model on test positives: the share of
// them whose item is among the user's top k by bias + u·v, items in the
// user's seen list excluded. Users the model does not know are skipped.
func hitRate(users, items map[string]modelrec.Vector, test []event.Event, conf learner.Confidence, k int) (hr float64, n int) {
	ids := make([]string, 0, len(items))
	for id := range items {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	rows := make([]learner.Row, len(ids))
	for i, id := range ids {
		rows[i] = learner.Row{Vec: items[id].Vec, Bias: items[id].Bias}
	}
	hits := 0
	scores := make([]float32, len(ids))
	for i := range test {
		ev := &test[i]
		u, ok := users[ev.UserID]
		if !ok || !conf.Positive(ev) {
			continue
		}
		if slices.Contains(u.Seen, ev.ItemID) {
			continue
		}
		ur := learner.Row{Vec: u.Vec}
		target := float32(math.Inf(-1))
		for j := range rows {
			scores[j] = learner.Score(&ur, &rows[j])
			if ids[j] == ev.ItemID {
				target = scores[j]
			}
		}
		if math.IsInf(float64(target), -1) {
			n++
			continue
		}
		better := 0
		for j := range rows {
			if scores[j] > target && !slices.Contains(u.Seen, ids[j]) {
				better++
			}
		}
		if better < k {
			hits++
		}
		n++
	}
	if n == 0 {
		return 0, 0
	}
	return float64(hits) / float64(n), n
}

// TestServiceEndToEnd runs both stages on a broker over a synthetic stream:
// the model topics end with exactly the counters of the in-memory
// composition, every gradient is on item-grads once, and the streamed model
// ranks held-out positives about as well as learner.Model trained in memory.
func TestServiceEndToEnd(t *testing.T) {
	n := 60_000
	if testing.Short() {
		n = 15_000
	}
	e := newKenv(t, 3)
	all := synthEvents(t, "users=500,items=400,seed=21", n+20_000)
	train, test := all[:n], all[n:]
	start := time.Now()
	// Live traffic rather than a backlog: events arrive in small bursts,
	// at most about 50,000 a second, and no faster than the stages keep
	// up (lag ≤ 1,000 records), so that how stale the item replicas are
	// does not depend on how busy the machine is (-race, CI).
	e.cfg.MaxReadyLag = 1000
	r := e.start(t, "a", t.TempDir(), true, true)
	for i := 0; i < len(train); i += 500 {
		e.produce(t, train[i:min(i+500, len(train))])
		time.Sleep(10 * time.Millisecond)
		for wait := time.Now().Add(5 * time.Second); r.s.Ready(context.Background()) != nil && time.Now().Before(wait); {
			time.Sleep(5 * time.Millisecond)
		}
	}
	wantUsers, wantItems, wantGrads := e.expected(t)
	users, items := e.waitCounters(t, wantUsers, wantItems, 90*time.Second)
	took := time.Since(start)
	deadline := time.Now().Add(10 * time.Second)
	for r.s.Ready(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", r.s.Ready(context.Background()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	grads := 0
	for _, rec := range e.k.ReadAll(t, e.cfg.Topics.ItemGrads) {
		if k, _, err := decodeGradHeader(gradHeader(rec)); err != nil {
			t.Fatal(err)
		} else if k != KindImpressions {
			grads++
		}
	}
	if grads != wantGrads {
		t.Fatalf("item-grads holds %d gradients, want %d", grads, wantGrads)
	}
	t.Logf("%d events → %d users, %d items, %d gradients in %v (%.0f events/s incl. start-up)", n, len(users), len(items), grads, took.Round(time.Millisecond), float64(n)/took.Seconds())

	// Quality: the streamed model against the in-memory one.
	ucat, icat := learner.NewCatalog(), learner.NewCatalog()
	m, err := learner.NewModel(e.cfg.MF, ucat, icat)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string][]string{}
	for i := range train {
		ev := &train[i]
		if ev.Type == event.Impression {
			continue // as the stages: impressions neither train nor make users known
		}
		m.LearnEvent(ucat.Intern(ev.UserID), icat.Intern(ev.ItemID), ev)
		seen[ev.UserID] = append(seen[ev.UserID], ev.ItemID)
	}
	mu, mi := modelVectors(m, ucat, icat, seen, e.cfg.SeenItems)
	hrStream, nt := hitRate(users, items, test, e.cfg.MF.Confidence, 10)
	hrModel, _ := hitRate(mu, mi, test, e.cfg.MF.Confidence, 10)
	se := math.Sqrt(hrModel * (1 - hrModel) / float64(nt))
	t.Logf("HR@10 on %d held-out positives: stages %.4f, in-memory model %.4f (±%.4f)", nt, hrStream, hrModel, se)
	// How far the streamed model trails the in-memory one depends on how
	// stale each partition's item replica is, which depends on the
	// machine's load (measured: 0.85–0.95 of it when paced, 0.62 under a
	// load average of 7). The bound catches a stage that learns nothing
	// useful without failing on a busy machine; exactness is asserted on
	// the update counters above. Under -race (which CI runs with -short,
	// a quarter of the events, beside other packages' tests) the ratio
	// fell to 0.46 on a loaded machine: the quality bound is asserted in
	// the run without the race detector (make unit), the race run checks
	// exactness and races.
	if hrStream < 0.5*hrModel && !raceEnabled {
		t.Fatalf("streamed model HR@10 %.4f is under half the in-memory model's %.4f (±%.4f)", hrStream, hrModel, se)
	}
}

// modelVectors exports learner.Model's rows through its scores: users'
// vectors are not exposed, so the comparison ranks by Model.Score.
func modelVectors(m *learner.Model, ucat, icat *learner.Catalog, seen map[string][]string, keep int) (map[string]modelrec.Vector, map[string]modelrec.Vector) {
	// An item vector e_i with bias b_i reproduces Score(u, i) for a user
	// vector made of the user's scores: u' = (Score(u, 0..n)), item' = e_i,
	// bias 0. Ranking by u'·e_i = Score(u, i) is the model's ranking.
	n := icat.Len()
	users := map[string]modelrec.Vector{}
	items := map[string]modelrec.Vector{}
	for i := range n {
		v := make([]float32, n)
		v[i] = 1
		items[icat.ID(int32(i))] = modelrec.Vector{Vec: v}
	}
	for u := range int32(ucat.Len()) {
		id := ucat.ID(u)
		s := seen[id]
		if len(s) > keep {
			s = s[len(s)-keep:]
		}
		users[id] = modelrec.Vector{Vec: m.Scores(u, n, nil), Seen: s}
	}
	return users, items
}

// TestServiceRebalance moves partitions between instances while events
// flow: A runs alone, B joins, A leaves, C joins with an empty data
// directory (restoring from the changelogs). The counters must still be
// exactly a clean run's.
func TestServiceRebalance(t *testing.T) {
	if testing.Short() {
		t.Skip("rebalances take seconds; skipped in -short")
	}
	e := newKenv(t, 4)
	evs := synthEvents(t, "users=400,items=300,seed=8", 40_000)
	chunk := len(evs) / 5
	a := e.start(t, "a", t.TempDir(), true, true)
	e.produce(t, evs[:chunk])
	time.Sleep(time.Second)
	b := e.start(t, "b", t.TempDir(), true, true)
	e.produce(t, evs[chunk:2*chunk])
	time.Sleep(2 * time.Second)
	e.produce(t, evs[2*chunk:3*chunk])
	a.stop(t)
	e.produce(t, evs[3*chunk:4*chunk])
	c := e.start(t, "c", t.TempDir(), true, true)
	time.Sleep(time.Second)
	e.produce(t, evs[4*chunk:])
	wantUsers, wantItems, _ := e.expected(t)
	e.waitCounters(t, wantUsers, wantItems, 120*time.Second)
	// C started with an empty directory: whatever it owns it restored from
	// the changelogs.
	c.s.mu.Lock()
	urt, irt := c.s.userRT, c.s.itemRT
	c.s.mu.Unlock()
	if urt == nil || irt == nil || len(urt.Status()) == 0 || len(irt.Status()) == 0 {
		t.Fatal("instance C owns no user or item partition: nothing moved to it")
	}
	t.Logf("C owns user partitions %v and item partitions %v", urt.Status(), irt.Status())
	b.stop(t)
	c.stop(t)
}

func TestNewServiceErrors(t *testing.T) {
	cfg := testConfig()
	tc := task.DefaultConfig()
	tc.Group, tc.Store, tc.DataDir = "g", "s", t.TempDir()
	if _, err := NewService(cfg, nil, nil, nil, nil); err == nil {
		t.Fatal("no stages accepted")
	}
	bad := cfg
	bad.Topics.ItemGrads = ""
	if _, err := NewService(bad, &tc, nil, nil, nil); err == nil {
		t.Fatal("missing topic accepted")
	}
	bad = cfg
	bad.MF.Dim = 7
	if _, err := NewService(bad, &tc, nil, nil, nil); err == nil {
		t.Fatal("dim 7 accepted")
	}
	noGroup := tc
	noGroup.Group = ""
	if _, err := NewService(cfg, nil, &noGroup, nil, nil); err == nil {
		t.Fatal("task config without group accepted")
	}
}
