package drift

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/synth"
	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/stream/task"
)

// roleTestConfig is a small drift configuration for runtime tests:
// 1-minute windows (~3,000 synthetic events), a reference of 3 windows
// and a trigger after 2 drifted windows.
func roleTestConfig(t *testing.T) Config {
	t.Helper()
	cfg, err := ParseConfig([]byte(`
window: {size: 1m, lateness: 5s}
reference_windows: 3
min_samples: 100
trigger: {consecutive: 2}
`))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// roleTestStream generates the test stream: popularity shift at the start
// of judged window 3 (window index 3+3 = 6 after the first).
func roleTestStream(t *testing.T, n int) []event.Event {
	t.Helper()
	sc := synth.DefaultConfig()
	sc.Users, sc.Items, sc.Seed = 2000, 1000, 5
	sc.DriftKind = synth.DriftPopularity
	sc.DriftAtTime = sc.Start.Truncate(time.Minute).Add(6 * time.Minute)
	g, err := synth.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]event.Event, n)
	for i := range out {
		g.Next(&out[i])
	}
	return out
}

func produceEvents(t *testing.T, k *testkafka.Kafka, evs []event.Event) {
	t.Helper()
	cl := k.NewClient(t)
	recs := make([]*kgo.Record, 0, len(evs))
	for i := range evs {
		recs = append(recs, &kgo.Record{Topic: k.Layout.Name("events"), Key: []byte(evs[i].UserID), Value: evs[i].AppendJSON(nil)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func roleConfigFor(t *testing.T, k *testkafka.Kafka, dir string, cfg Config) RoleConfig {
	rc := DefaultRoleConfig(cfg)
	rc.Runtime.Client = k.Client()
	rc.Runtime.DataDir = dir
	rc.Runtime.LagCommitInterval = 100 * time.Millisecond
	// The tests' inputs are small: a fetch would wait the full 5 s at
	// every hop. What the wait buys is measured, not tested.
	rc.FetchWait = 200 * time.Millisecond
	// Group ids (and so changelog topics and transactional ids) are
	// per test: a real broker is shared by every test of the run.
	rc.Group = strings.TrimSuffix(k.Layout.Prefix, ".") + "-drift-test"
	l := k.Layout
	rc.Topics = RoleTopics{Events: l.Name("events"), Recs: l.Name("recs"), Input: l.Name("drift.input"),
		Windows: l.Name("drift.windows"), Reports: l.Name("drift"), Control: l.Name("control")}
	return rc
}

// runRoleUntil runs a Role until the reports topic holds want reports, then
// stops it cleanly.
func runRoleUntil(t *testing.T, k *testkafka.Kafka, rc RoleConfig, want int) {
	t.Helper()
	role, err := NewRole(rc, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- role.Run(ctx) }()
	deadline := time.Now().Add(90 * time.Second)
	for len(k.ReadAll(t, rc.Topics.Reports)) < want {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("role stopped: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("fewer than %d reports after 90s", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("role run: %v", err)
	}
}

func readReports(t *testing.T, k *testkafka.Kafka, topic string) []*Report {
	t.Helper()
	var out []*Report
	for _, r := range k.ReadAll(t, topic) {
		var rep Report
		if err := json.Unmarshal(r.Value, &rep); err != nil {
			t.Fatalf("report %s: %v", r.Key, err)
		}
		out = append(out, &rep)
	}
	return out
}

func readRequests(t *testing.T, k *testkafka.Kafka, topic string) []RetrainRequest {
	t.Helper()
	var out []RetrainRequest
	for _, r := range k.ReadAll(t, topic) {
		var rq RetrainRequest
		if err := json.Unmarshal(r.Value, &rq); err != nil {
			t.Fatalf("request %s: %v", r.Key, err)
		}
		out = append(out, rq)
	}
	return out
}

// offlineReports computes the reports in memory from the same events with
// the same partitioning (murmur2 of the user id, as Kafka's default
// partitioner) — the drifteval path, an independent check of forwarding,
// windowing, the windows topic, merging and judging on the runtime.
func offlineReports(t *testing.T, cfg Config, evs []event.Event, parts int32) []*Report {
	t.Helper()
	s, err := NewSchema(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ps := make([]*Partition, parts)
	ids := make([]int32, parts)
	for i := range ps {
		ps[i], ids[i] = NewPartition(s), int32(i)
	}
	mg := NewMerger(s, ids)
	mon := NewMonitor(s, nil)
	var out []*Report
	for i := range evs {
		p := kgoPartition(evs[i].UserID, parts)
		ps[p].ObserveEvent(&evs[i])
		merged, err := mg.Add(p, ps[p].TakeClosed(nil), ps[p].ClosedThrough())
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range merged {
			st, err := mon.Process(w)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, st.Report)
		}
	}
	return out
}

// kgoPartition is Kafka's default key partitioner: murmur2 of the key,
// positive, modulo the partition count.
func kgoPartition(key string, n int32) int32 {
	p := kgo.StickyKeyPartitioner(nil).ForTopic("x")
	return int32(p.Partition(&kgo.Record{Key: []byte(key)}, int(n)))
}

// TestRoleMatchesOffline: two partitions on the runtime give, window by
// window, the reports of the in-memory pipeline, and the popularity shift
// is detected within 2 windows with exactly one retrain request.
func TestRoleMatchesOffline(t *testing.T) {
	if testing.Short() {
		t.Skip("runtime test: several seconds on kfake")
	}
	cfg := roleTestConfig(t)
	evs := roleTestStream(t, 33_000) // ~11 windows of 1 minute
	k := testkafka.Start(t, 2)
	produceEvents(t, k, evs)
	want := offlineReports(t, cfg, evs, 2)
	if len(want) < 9 {
		t.Fatalf("offline run judged only %d windows", len(want))
	}
	rc := roleConfigFor(t, k, t.TempDir(), cfg)
	rc.AlignSpan = 0 // no served lists to wait for
	runRoleUntil(t, k, rc, len(want))
	got := readReports(t, k, rc.Topics.Reports)
	compareReports(t, got, want)

	first := -1
	for i, r := range got {
		if r.Drifted && first < 0 {
			first = i
		}
	}
	// Windows 0–2 are the reference, 3–5 stationary, the shift starts in 6.
	if first < 6 || first > 7 {
		t.Errorf("first drifted report is window %d, want 6 or 7 (shift in 6)", first)
	}
	rqs := readRequests(t, k, rc.Topics.Control)
	if len(rqs) != 1 {
		t.Fatalf("%d retrain requests, want exactly 1: %+v", len(rqs), rqs)
	}
	if !slices.Contains(rqs[0].Signals, "consumed_item_rank") {
		t.Errorf("retrain request signals %v lack consumed_item_rank", rqs[0].Signals)
	}
}

// TestRoleEventsFromInput: without ForwardEvents the role reads events
// only from its input topic, where the process role's user stage copies
// the sampled users' records with SourceHeader "events": with the whole
// stream in the events topic and only the sampled copies in the input, it
// gives the offline reports of the sampled stream, each event counted
// once.
func TestRoleEventsFromInput(t *testing.T) {
	if testing.Short() {
		t.Skip("runtime test: several seconds on kfake")
	}
	cfg := roleTestConfig(t)
	cfg.Window.Sample = 0.5
	cfg.MinSamples = 50
	evs := roleTestStream(t, 15_000) // 5 windows
	k := testkafka.Start(t, 2)
	rc := roleConfigFor(t, k, t.TempDir(), cfg)
	rc.AlignSpan = 0 // no served lists to wait for
	rc.ForwardEvents = false
	parts, err := EnsureTopics(context.Background(), rc.Runtime.Client, rc.Topics, nil)
	if err != nil || parts != 2 {
		t.Fatalf("EnsureTopics: %d partitions, %v; want 2", parts, err)
	}
	produceEvents(t, k, evs) // not read by the role
	sampled := task.NewForwarder(task.ForwardConfig{Sample: cfg.Window.Sample})
	hdr := []kgo.RecordHeader{{Key: SourceHeader, Value: []byte("events")}}
	var copies []*kgo.Record
	for i := range evs {
		if sampled.Sampled([]byte(evs[i].UserID)) {
			copies = append(copies, &kgo.Record{Topic: rc.Topics.Input, Key: []byte(evs[i].UserID), Value: evs[i].AppendJSON(nil), Headers: hdr})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := k.NewClient(t).ProduceSync(ctx, copies...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	want := offlineReports(t, cfg, evs, 2)
	if len(want) < 3 {
		t.Fatalf("offline run judged only %d windows", len(want))
	}
	runRoleUntil(t, k, rc, len(want))
	compareReports(t, readReports(t, k, rc.Topics.Reports), want)
	if n := len(k.ReadAll(t, rc.Topics.Input)); n != len(copies) {
		t.Fatalf("input topic holds %d records, want the %d copies: the role forwarded events itself", n, len(copies))
	}
}

// TestRoleRestartSameReports: a role stopped midway and restarted from its
// stored state (snapshot, log, merger, reference, policy; in memory, rebuilt
// from its changelogs, or in Badger) publishes exactly
// the reports and the request of an uninterrupted run, none twice.
func TestRoleRestartSameReports(t *testing.T) {
	if testing.Short() {
		t.Skip("runtime test: several seconds on kfake")
	}
	// The stop comes after a batch's snapshot with 64 KiB snapshots (the
	// first half arrives in one or two batches); with 64 MiB there is
	// none, and the restart re-reads the whole first half of the input.
	for _, tc := range []struct {
		onDisk    bool
		snapBytes int
	}{{false, 64 << 10}, {true, 64 << 10}, {false, 64 << 20}, {true, 64 << 20}} {
		t.Run(fmt.Sprintf("state_on_disk=%v/snapshot_bytes=%d", tc.onDisk, tc.snapBytes), func(t *testing.T) {
			testRoleRestartSameReports(t, tc.onDisk, tc.snapBytes)
		})
	}
}

func testRoleRestartSameReports(t *testing.T, onDisk bool, snapBytes int) {
	cfg := roleTestConfig(t)
	evs := roleTestStream(t, 33_000)
	want := offlineReports(t, cfg, evs, 2)
	k := testkafka.Start(t, 2)
	dir := t.TempDir()
	rc := roleConfigFor(t, k, dir, cfg)
	rc.StateOnDisk = onDisk
	rc.SnapshotBytes = snapBytes
	rc.AlignSpan = 0 // no served lists to wait for
	half := 16_000
	produceEvents(t, k, evs[:half])
	wantHalf := offlineReports(t, cfg, evs[:half], 2)
	runRoleUntil(t, k, rc, len(wantHalf))
	produceEvents(t, k, evs[half:])
	runRoleUntil(t, k, rc, len(want))
	got := readReports(t, k, rc.Topics.Reports)
	compareReports(t, got, want)
	if rqs := readRequests(t, k, rc.Topics.Control); len(rqs) != 1 {
		t.Fatalf("%d retrain requests after restart, want 1", len(rqs))
	}
}

func compareReports(t *testing.T, got, want []*Report) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d reports, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Events != w.Events || g.Partitions != w.Partitions || g.Drifted != w.Drifted ||
			!slices.Equal(g.DriftedSignals, w.DriftedSignals) || g.ReferenceID != w.ReferenceID {
			t.Errorf("report %d: got %s events=%d parts=%d drifted=%v %v ref=%s, want %s events=%d parts=%d drifted=%v %v ref=%s",
				i, g.ID, g.Events, g.Partitions, g.Drifted, g.DriftedSignals, g.ReferenceID,
				w.ID, w.Events, w.Partitions, w.Drifted, w.DriftedSignals, w.ReferenceID)
			continue
		}
		for j := range w.Signals {
			gs, ws := g.Signals[j], w.Signals[j]
			// Sketches merged in another order differ within their
			// rank error; everything else is exact.
			if gs.Name != ws.Name || gs.Status != ws.Status || gs.N != ws.N || math.Abs(gs.Score-ws.Score) > 0.02 {
				t.Errorf("report %d signal %s: got %s n=%d score=%.4f, want %s n=%d score=%.4f",
					i, ws.Name, gs.Status, gs.N, gs.Score, ws.Status, ws.N, ws.Score)
			}
		}
	}
}

func TestWindowRecordRoundTrip(t *testing.T) {
	cases := []WindowRecord{
		{Partition: 0, Partitions: 1, ClosedThrough: math.MinInt64},
		{Partition: 3, Partitions: 6, ClosedThrough: 42, Watermark: 1_700_000_000_000, ModelVersion: "v7", Window: []byte("EDWN...")},
	}
	for _, c := range cases {
		b, err := c.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeWindowRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(c) {
			t.Errorf("round trip: got %+v, want %+v", got, c)
		}
	}
	for _, bad := range []WindowRecord{{Partition: 2, Partitions: 2}, {Partition: 0, Partitions: 0}, {Partitions: 1, Watermark: -1}} {
		b, _ := bad.AppendBinary(nil)
		if _, err := DecodeWindowRecord(b); err == nil {
			t.Errorf("%+v decoded without error", bad)
		}
	}
}

func FuzzDecodeWindowRecord(f *testing.F) {
	wr := WindowRecord{Partition: 1, Partitions: 2, ClosedThrough: 5, Watermark: 9, ModelVersion: "m", Window: []byte{1, 2, 3}}
	b, _ := wr.AppendBinary(nil)
	f.Add(b)
	f.Add([]byte("EDWE"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeWindowRecord(data)
		if err != nil {
			return
		}
		again, err := r.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := DecodeWindowRecord(again)
		if err != nil || fmt.Sprint(r2) != fmt.Sprint(r) {
			t.Fatalf("re-encoded record differs: %+v vs %+v (%v)", r2, r, err)
		}
	})
}

// servedLists turns each request's impressions into the ServedList the
// scorer would have published (served at its first impression, scores
// decreasing with position), labelled with model version v1 before switch
// and v2 from it on.
func servedLists(evs []event.Event, switchAt time.Time) []ServedList {
	idx := map[string]int{}
	var out []ServedList
	for i := range evs {
		e := &evs[i]
		if e.Type != event.Impression || e.RequestID == "" {
			continue
		}
		j, ok := idx[e.RequestID]
		if !ok {
			v := "v1"
			if !e.Time.Before(switchAt) {
				v = "v2"
			}
			out = append(out, ServedList{RequestID: e.RequestID, UserID: e.UserID, ModelVersion: v, Time: e.Time})
			j = len(out) - 1
			idx[e.RequestID] = j
		}
		l := &out[j]
		l.Items = append(l.Items, ServedItem{ItemID: e.ItemID, Position: len(l.Items), Score: 1 / float64(1+len(l.Items)),
			Features: Features{{Name: "item_pop", Value: 0.5}, {Name: "mf_score", Value: 1 / float64(1+len(l.Items))}}})
	}
	return out
}

// TestRoleServedListsAndPromotion: served lists reach the partitions with
// the events of their users (prediction and outcome signals are judged),
// and a model version not seen before starts a new reference capture.
func TestRoleServedListsAndPromotion(t *testing.T) {
	if testing.Short() {
		t.Skip("runtime test: several seconds on kfake")
	}
	cfg := roleTestConfig(t)
	cfg.Window.Attribution = Duration(30 * time.Second)
	evs := roleTestStream(t, 33_000)
	switchAt := evs[0].Time.Truncate(time.Minute).Add(5 * time.Minute)
	lists := servedLists(evs, switchAt)
	k := testkafka.Start(t, 2)
	cl := k.NewClient(t)
	recs := make([]*kgo.Record, len(lists))
	for i := range lists {
		v, err := json.Marshal(lists[i])
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = &kgo.Record{Topic: k.Layout.Name("recs"), Key: []byte(lists[i].UserID), Value: v}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	produceEvents(t, k, evs)
	rc := roleConfigFor(t, k, t.TempDir(), cfg)
	runRoleUntil(t, k, rc, 10)
	reps := readReports(t, k, rc.Topics.Reports)
	byName := func(r *Report, name string) SignalResult {
		for _, s := range r.Signals {
			if s.Name == name {
				return s
			}
		}
		t.Fatalf("report %s lacks signal %s", r.ID, name)
		return SignalResult{}
	}
	var refs []string
	for i, r := range reps {
		if r.Lists == 0 {
			t.Errorf("report %d (%s) counted no served lists", i, r.ID)
		}
		for _, name := range []string{"score", "served_item_rank", "ctr", "unrecommended_engagement"} {
			if byName(r, name).N == 0 {
				t.Errorf("report %d: signal %s has no observations", i, name)
			}
		}
		if r.ReferenceID != "" && !slices.Contains(refs, r.ReferenceID) {
			refs = append(refs, r.ReferenceID)
		}
	}
	// Reference 1 from windows 0–2 (v1); v2 is first served in window 5,
	// so windows 5 or 6 to 7 or 8 capture reference 2.
	if len(refs) != 2 {
		t.Fatalf("references %v, want 2 (baseline, then after the v2 promotion)", refs)
	}
	last := reps[len(reps)-1]
	if last.ReferenceID != refs[1] || last.ModelVersion != "v2" {
		t.Errorf("last report judged against %s (model %q), want %s (v2)", last.ReferenceID, last.ModelVersion, refs[1])
	}
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestRoleStartFailureReleasesStores: with its state on disk, a stage that
// cannot start (its store directory is a file) fails Run, and the stores
// the earlier stages opened are closed, so a second attempt can open them
// again.
func TestRoleStartFailureReleasesStores(t *testing.T) {
	k := testkafka.Start(t, 1)
	dir := t.TempDir()
	rc := roleConfigFor(t, k, dir, roleTestConfig(t))
	rc.StateOnDisk = true
	bad := filepath.Join(dir, rc.Group+"-windows-state")
	if err := os.WriteFile(bad, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	role, err := NewRole(rc, nil, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := role.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "windows stage") {
		t.Fatalf("Run = %v, want the windows stage's error", err)
	}
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	// The events and recs stores were released: they open again.
	role2, err := NewRole(rc, nil, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- role2.Run(ctx) }()
	deadline := time.Now().Add(15 * time.Second)
	for !role2.Ready() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !role2.Ready() {
		t.Error("restarted role never became ready")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("second run: %v", err)
	}
}

func TestRoleConfigValidate(t *testing.T) {
	valid := func() RoleConfig {
		rc := DefaultRoleConfig(DefaultConfig())
		rc.Topics = RoleTopics{Events: "e", Recs: "r", Input: "i", Windows: "w", Reports: "d", Control: "c"}
		return rc
	}
	for _, tc := range []struct {
		name string
		edit func(*RoleConfig)
		ok   bool
	}{
		{"defaults", func(*RoleConfig) {}, true},
		{"no group", func(c *RoleConfig) { c.Group = "" }, false},
		{"unnamed topic", func(c *RoleConfig) { c.Topics.Windows = "" }, false},
		{"snapshot bytes below 1 KiB", func(c *RoleConfig) { c.SnapshotBytes = 1000 }, false},
		{"snapshot every second", func(c *RoleConfig) { c.SnapshotEvery = time.Second }, true},
		{"snapshot every zero", func(c *RoleConfig) { c.SnapshotEvery = 0 }, false},
		{"snapshot every day (the input's retention)", func(c *RoleConfig) { c.SnapshotEvery = 24 * time.Hour }, false},
		{"fetch wait 1ms", func(c *RoleConfig) { c.FetchWait = time.Millisecond }, true},
		{"fetch wait 31s", func(c *RoleConfig) { c.FetchWait = 31 * time.Second }, false},
		{"no fetch bytes", func(c *RoleConfig) { c.FetchBytes = 0 }, false},
	} {
		rc := valid()
		tc.edit(&rc)
		if err := rc.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// legacyLogWriter is a PartitionProcessor that keeps its state as earlier
// versions did before their first snapshot: every applied record appended
// to a log in the state (entries of source u8, length u32, bytes; and the
// entries' range), and no replay offset. It emits what the processor emits.
type legacyLogWriter struct {
	inner *PartitionProcessor
	n     uint64 // log entries written
	done  *atomic.Int64
}

func (l *legacyLogWriter) Process(ctx context.Context, recs []*kgo.Record, b *task.Batch) error {
	if err := l.inner.Process(ctx, recs, b); err != nil {
		return err
	}
	if l.inner.lastSnap != 0 {
		return errors.New("legacyLogWriter: the processor snapshotted; raise SnapshotBytes")
	}
	var chunk []byte
	for _, r := range recs {
		chunk = append(chunk, byte(recordSource(r)))
		chunk = binary.LittleEndian.AppendUint32(chunk, uint32(len(r.Value)))
		chunk = append(chunk, r.Value...)
	}
	if err := b.Put(logKey(l.n), chunk); err != nil {
		return err
	}
	l.n++
	var v [16]byte
	binary.LittleEndian.PutUint64(v[8:], l.n)
	if err := b.Put([]byte(keyLogRange), v[:]); err != nil {
		return err
	}
	l.done.Add(int64(len(recs)))
	return b.Delete([]byte(keyReplay))
}

// TestRoleUpgradeFromRecordLog: a partition state in the record-log layout
// of earlier versions is replayed from its log once, then kept as snapshot
// and input offset; the reports are those of the whole stream.
func TestRoleUpgradeFromRecordLog(t *testing.T) {
	if testing.Short() {
		t.Skip("runtime test: several seconds on kfake")
	}
	cfg := roleTestConfig(t)
	evs := roleTestStream(t, 33_000)
	want := offlineReports(t, cfg, evs, 2)
	k := testkafka.Start(t, 2)
	rc := roleConfigFor(t, k, t.TempDir(), cfg)
	rc.ForwardEvents, rc.ForwardRecs, rc.AlignSpan = false, false, 0
	rc.SnapshotBytes = 64 << 20
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := EnsureTopics(ctx, rc.Runtime.Client, rc.Topics, nil); err != nil {
		t.Fatal(err)
	}
	toInput := func(evs []event.Event) {
		t.Helper()
		cl := k.NewClient(t)
		hdr := []kgo.RecordHeader{{Key: SourceHeader, Value: []byte(SourceEvents.String())}}
		recs := make([]*kgo.Record, 0, len(evs))
		for i := range evs {
			recs = append(recs, &kgo.Record{Topic: rc.Topics.Input, Key: []byte(evs[i].UserID), Value: evs[i].AppendJSON(nil), Headers: hdr})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	half := 16_000
	toInput(evs[:half])

	// The earlier version's windows stage over the first half.
	s, err := NewSchema(cfg)
	if err != nil {
		t.Fatal(err)
	}
	counters, err := newRoleCounters(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var done atomic.Int64
	c := rc.Runtime
	c.Group, c.Store, c.Topic, c.InMemory = rc.Group+"-windows", "state", rc.Topics.Input, true
	c.FetchMaxWait = rc.FetchWait
	rt, err := task.New(c, func(p int32) (task.Processor, error) {
		return &legacyLogWriter{inner: newPartitionProcessor(s, p, 2, &rc, counters, slog.New(slog.DiscardHandler)), done: &done}, nil
	}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- rt.Run(rctx) }()
	for done.Load() < int64(half) {
		select {
		case err := <-ran:
			t.Fatalf("legacy windows stage stopped: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	stop()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}

	toInput(evs[half:])
	runRoleUntil(t, k, rc, len(want))
	compareReports(t, readReports(t, k, rc.Topics.Reports), want)
}
