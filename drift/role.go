package drift

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"golang.org/x/sync/errgroup"

	"github.com/eddyrec/eddy/stream"
	"github.com/eddyrec/eddy/stream/task"
)

// RoleTopics names the topics of the drift role.
type RoleTopics struct {
	Events string // source: eddy.events
	Recs   string // source: eddy.recs (ServedList records)
	// Input is internal: sampled events and served lists, keyed by user
	// id (created by the role with the events topic's partition count).
	Input string
	// Windows is internal: the partitions' closed windows (created by the
	// role, one partition).
	Windows string
	Reports string // eddy.drift: one Report per merged window
	Control string // eddy.control: RetrainRequests
}

// RoleConfig configures the drift role (Role).
type RoleConfig struct {
	// Drift is the validated signal, window and trigger configuration.
	Drift Config
	// Runtime is the template of the four stream runtimes: Client,
	// DataDir, timeouts and wipe policy are used; Group, Store and Topic
	// are set per stage.
	Runtime task.Config
	// Group is the base consumer group id (default "eddy-drift"); the
	// stages use <group>-events, <group>-recs, <group>-windows and
	// <group>-monitor.
	Group  string
	Topics RoleTopics
	// SnapshotBytes is how much input a partition task reads before it
	// snapshots its windows (default 4 MiB), and SnapshotEvery the longest
	// time between snapshots while input arrives (default 1h): a restart
	// re-reads the input after the last snapshot, whose records the role
	// keeps for a day (EnsureTopics). See PartitionProcessor.
	SnapshotBytes int
	SnapshotEvery time.Duration
	// AlignSpan and AlignMaxRecords bound how long (event time) and how
	// many records one source waits for the other in a partition before
	// it is released out of order (default 15m, 50,000): a stopped
	// scorer delays event signals by AlignSpan; a backlog of served lists
	// more than AlignSpan ahead of the events makes the events beyond it
	// late (see aligner).
	AlignSpan       time.Duration
	AlignMaxRecords int
	// IdleWindows is how many windows a partition may lag the most advanced
	// one before it is treated as idle (event-time windows; default 3).
	IdleWindows int
	// IdleTimeout is how long a lagging partition must have sent nothing
	// before it is treated as idle (default 5m).
	IdleTimeout time.Duration
	// Alert, if set, receives the JSON of every drifted Report and every
	// RetrainRequest (the webhook sink). It is called while the batch is
	// processed, before it commits: a crash can repeat an alert (report and
	// request ids make repeats recognisable).
	Alert func(body []byte)
	// MaxLag is the source lag (records) up to which the role is ready
	// (default 10,000).
	MaxLag int64
	// FetchBytes and FetchWait: each stage's fetch waits for FetchBytes of
	// input or FetchWait, whichever comes first (defaults 1 MiB, 5 s).
	// Windows of minutes need no fetch latency, and the inputs are thin (a
	// 1 % sample, a few window records), while every batch is a Kafka
	// transaction whose fixed cost (~a few round trips and a changelog
	// write) outweighed its records at 1 s: from 1 s and 256 KiB to 5 s
	// and 1 MiB the role's CPU fell by 28–36 % at 20k–50k events/s
	// (BENCHMARKS.md "Drift role"). Reports leave up to two waits later.
	FetchBytes int32
	FetchWait  time.Duration
	// ForwardEvents runs the role's own events forwarder (default true):
	// a consumer of the whole events topic that copies the sampled users'
	// events to Input. False leaves that copy to the process role's user
	// stage (features.Config.DriftSample), which already reads every event
	// and copies the same users' records, with SourceHeader "events", in
	// its own batch transaction: the drift role then reads only Input and
	// the served lists, and costs the pipeline a hash per event instead of
	// a second read of the events topic. The process stage's sample must
	// then equal Drift.Window.Sample (a larger one is cut down to it by the
	// partitions; a smaller one leaves the role observing fewer users than
	// it was told). Events still names the events topic: Input gets its
	// partition count.
	ForwardEvents bool
	// ForwardRecs runs the role's own served-list forwarder (default
	// true): a consumer of the whole recs topic that copies the sampled
	// users' lists to Input. False leaves that copy to the scorer
	// (scorer.Config.DriftSample, eddy serve --drift-sample), which writes
	// every list anyway and copies the sampled users' with SourceHeader
	// "recs": the role then never reads the recs topic, which is the
	// largest input it has (a list carries every item's ranker features:
	// ~2 KB with 10 items × 5 features, against ~0.3 KB per event, at
	// about one list per ten events). The same sample rule applies as for
	// ForwardEvents.
	ForwardRecs bool
	// StateOnDisk keeps the stages' state in Badger stores under
	// Runtime.DataDir. By default (false) it lives in memory and is rebuilt
	// from the stages' changelog topics at every start (task.Config
	// InMemory): the role's state is small (a snapshot and log of at most
	// a few MB per input partition, the monitor's reference windows), and
	// the idle compactors of three Badger stores were ~85 % of an idle
	// role's CPU, more than its records cost at a 1 % sample.
	StateOnDisk bool
}

// DefaultRoleConfig returns the defaults around cfg.
func DefaultRoleConfig(cfg Config) RoleConfig {
	return RoleConfig{
		Drift: cfg, Runtime: task.DefaultConfig(), Group: "eddy-drift",
		SnapshotBytes: 4 << 20, SnapshotEvery: time.Hour, IdleWindows: 3, IdleTimeout: 5 * time.Minute,
		AlignSpan: 15 * time.Minute, AlignMaxRecords: 50_000, MaxLag: 10_000,
		FetchBytes: 1 << 20, FetchWait: 5 * time.Second,
		ForwardEvents: true, ForwardRecs: true,
	}
}

// Validate checks the settings (Drift must be validated separately).
func (c *RoleConfig) Validate() error {
	t := c.Topics
	switch {
	case c.Group == "":
		return errors.New("drift: role: group id is required")
	case t.Events == "" || t.Recs == "" || t.Input == "" || t.Windows == "" || t.Reports == "" || t.Control == "":
		return errors.New("drift: role: every topic must be named")
	case c.SnapshotBytes < 1<<10:
		return fmt.Errorf("drift: role: snapshot bytes %d: want ≥ 1 KiB", c.SnapshotBytes)
	case c.SnapshotEvery < time.Second || c.SnapshotEvery > 12*time.Hour:
		return fmt.Errorf("drift: role: snapshot every %v: want 1s–12h (the input keeps records for a day)", c.SnapshotEvery)
	case c.IdleWindows < 0 || c.IdleTimeout < 0:
		return fmt.Errorf("drift: role: idle windows %d / timeout %v: want ≥ 0", c.IdleWindows, c.IdleTimeout)
	case c.FetchBytes < 1 || c.FetchWait < time.Millisecond || c.FetchWait > 30*time.Second:
		return fmt.Errorf("drift: role: fetch bytes %d / wait %v: want ≥ 1 / 1ms–30s", c.FetchBytes, c.FetchWait)
	case c.AlignSpan < 0 || c.AlignMaxRecords < 1:
		return fmt.Errorf("drift: role: align span %v / max records %d: want ≥ 0 / ≥ 1", c.AlignSpan, c.AlignMaxRecords)
	case c.MaxLag < 0:
		return fmt.Errorf("drift: role: max lag %d: want ≥ 0", c.MaxLag)
	}
	return nil
}

// Role is the streaming drift role: four task runtimes in one process.
//
//	eddy.events ─▶ [task.Forwarder: sample by user] ─┐  (or the process role's user stage, ForwardEvents false)
//	                                                 ├─▶ drift.input (keyed by user)
//	eddy.recs ───▶ [task.Forwarder: sample by user] ─┘  (or the scorer's copy, ForwardRecs false)
//	drift.input ─▶ [PartitionProcessor: aligner + Partition, per partition] ─▶ drift.windows (1 partition)
//	drift.windows ─▶ [MonitorProcessor: Merger, Monitor, Policy] ─▶ eddy.drift (reports), eddy.control (requests)
//
// Why this shape. The task runtime reads one source topic per runtime,
// but the outcome join needs a user's events and served lists in one
// Partition; the forward stages copy the records of sampled users from
// both sources into one internal topic keyed by user id (sampling on the
// key, before any decoding, keeps the copy at ~1% of the traffic). The
// partition stage scales with the input's partitions across instances;
// merging needs every partition's windows, so closed windows (a few per
// window length per partition) are shuffled to a single-partition topic
// where one monitor task merges, judges, reports and triggers. Every stage
// is a consumer group with state and outputs committed in the batch's
// Kafka transaction, so a kill -9 anywhere neither loses nor repeats a
// window, a report or a request.
//
// Limits: the monitor is one task (its load is a few records per window
// per partition); the input topic's partition count is read at start; the
// webhook (Alert) is at-least-once; events and lists are aligned in event
// time only within AlignSpan (see aligner); idle partitions are detected
// with a wall-clock grace (see MonitorProcessor).
type Role struct {
	cfg      RoleConfig
	schema   *Schema
	metrics  *Metrics
	counters *roleCounters
	reg      prometheus.Registerer
	log      *slog.Logger

	mu       sync.Mutex
	runtimes []*task.Runtime
}

// NewRole validates cfg and registers the role's metrics on reg (nil: none).
func NewRole(cfg RoleConfig, reg prometheus.Registerer, log *slog.Logger) (*Role, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	s, err := NewSchema(cfg.Drift)
	if err != nil {
		return nil, err
	}
	m, err := NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	c, err := newRoleCounters(reg)
	if err != nil {
		return nil, err
	}
	return &Role{cfg: cfg, schema: s, metrics: m, counters: c, reg: reg, log: log.With("role", "drift")}, nil
}

// Run creates the internal topics, starts the runtimes (four; one fewer
// without ForwardEvents, one fewer without ForwardRecs) and runs until ctx ends (nil) or one of them
// fails (its error; the others are stopped).
func (r *Role) Run(ctx context.Context) error {
	parts, err := EnsureTopics(ctx, r.cfg.Runtime.Client, r.cfg.Topics, r.log)
	if err != nil {
		return err
	}
	t := r.cfg.Topics
	type stage struct {
		name, topic string
		factory     task.ProcessorFactory
		small       bool
	}
	var stages []stage
	if r.cfg.ForwardEvents {
		stages = append(stages, stage{"events", t.Events, func(int32) (task.Processor, error) {
			return newForwardProcessor(SourceEvents, r.schema.cfg.Window.Sample, t.Input, r.counters), nil
		}, true})
	}
	if r.cfg.ForwardRecs {
		stages = append(stages, stage{"recs", t.Recs, func(int32) (task.Processor, error) {
			return newForwardProcessor(SourceRecs, r.schema.cfg.Window.Sample, t.Input, r.counters), nil
		}, true})
	}
	stages = append(stages, []stage{
		{"windows", t.Input, func(p int32) (task.Processor, error) {
			return newPartitionProcessor(r.schema, p, parts, &r.cfg, r.counters, r.log), nil
		}, false},
		{"monitor", t.Windows, func(int32) (task.Processor, error) {
			return newMonitorProcessor(r.schema, parts, &r.cfg, r.metrics, r.counters, r.log), nil
		}, false},
	}...)
	var rts []*task.Runtime
	for _, st := range stages {
		c := r.cfg.Runtime
		c.Group, c.Store, c.Topic = r.cfg.Group+"-"+st.name, "state", st.topic
		if c.InstanceID != "" {
			c.InstanceID += "-" + st.name
		}
		c.InMemory = !r.cfg.StateOnDisk
		if st.small {
			// Stateless copies: the smallest store the runtime accepts.
			c.MemTableSize = 8 << 20
		}
		c.FetchMinBytes, c.FetchMaxWait = r.cfg.FetchBytes, r.cfg.FetchWait
		rt, err := task.New(c, st.factory, r.reg, r.log)
		if err != nil {
			// Run with a canceled context returns at once and closes
			// the stores the earlier stages opened.
			done, cancel := context.WithCancel(ctx)
			cancel()
			for _, o := range rts {
				_ = o.Run(done)
			}
			return fmt.Errorf("drift: %s stage: %w", st.name, err)
		}
		rts = append(rts, rt)
	}
	r.mu.Lock()
	r.runtimes = rts
	r.mu.Unlock()
	r.log.Info("drift role starting", "input_partitions", parts, "signals", len(r.schema.signals), "forward_events", r.cfg.ForwardEvents, "forward_recs", r.cfg.ForwardRecs,
		"sample", r.schema.cfg.Window.Sample, "window", time.Duration(r.schema.cfg.Window.Size),
		"window_events", r.schema.cfg.Window.Events, "reference_windows", r.schema.cfg.ReferenceWindows)
	g, gctx := errgroup.WithContext(ctx)
	for i, rt := range rts {
		name := stages[i].name
		g.Go(func() error {
			if err := rt.Run(gctx); err != nil {
				return fmt.Errorf("drift: %s stage: %w", name, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// Ready reports whether every stage has joined its group and caught up to
// within MaxLag records.
func (r *Role) Ready() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.runtimes) == 0 {
		return false
	}
	for _, rt := range r.runtimes {
		if !rt.Ready(r.cfg.MaxLag) {
			return false
		}
	}
	return true
}

// Metrics returns the role's drift metrics.
func (r *Role) Metrics() *Metrics { return r.metrics }

// EnsureTopics creates the role's internal topics unless they exist: Input
// with the events topic's partition count (and replication), and Windows,
// when named, with one partition. It returns the input topic's partition
// count (an existing input topic decides). Role.Run calls it; a process
// role that copies events into Input (ForwardEvents false) calls it before
// it starts, so that the topic exists with the right partitions before
// anything writes to it — whichever role starts first creates it.
func EnsureTopics(ctx context.Context, client stream.ClientConfig, t RoleTopics, log *slog.Logger) (int32, error) {
	if log == nil {
		log = slog.Default()
	}
	cl, err := client.NewClient()
	if err != nil {
		return 0, fmt.Errorf("drift: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	td, err := adm.ListTopics(ctx, t.Events)
	if err != nil {
		return 0, fmt.Errorf("drift: describe %s: %w", t.Events, err)
	}
	ev, ok := td[t.Events]
	if !ok || ev.Err != nil || len(ev.Partitions) == 0 {
		return 0, fmt.Errorf("drift: source topic %s not found (create Eddy's topics first)", t.Events)
	}
	parts := int32(len(ev.Partitions))
	rf := int16(ev.Partitions.NumReplicas())
	week := strconv.FormatInt((7 * 24 * time.Hour).Milliseconds(), 10)
	day := strconv.FormatInt((24 * time.Hour).Milliseconds(), 10)
	specs := []stream.TopicSpec{
		{Name: t.Input, Partitions: parts, ReplicationFactor: rf, Configs: map[string]string{"retention.ms": day}},
	}
	if t.Windows != "" {
		specs = append(specs, stream.TopicSpec{Name: t.Windows, Partitions: 1, ReplicationFactor: rf, Configs: map[string]string{"retention.ms": week}})
	}
	st, err := stream.EnsureTopics(ctx, adm, specs)
	if err != nil {
		return 0, fmt.Errorf("drift: create internal topics: %w", err)
	}
	for _, s := range st {
		if s.Created {
			log.Info("topic created", "topic", s.Spec.Name, "partitions", s.Spec.Partitions)
		}
		if s.Spec.Name == t.Input && s.Partitions > 0 {
			parts = s.Partitions // an existing input topic decides
		}
		if s.Mismatch != "" {
			log.Warn("topic differs from layout", "topic", s.Spec.Name, "detail", s.Mismatch)
		}
	}
	return parts, nil
}

// roleCounters are the role's own metrics beside Metrics.
type roleCounters struct {
	read             *prometheus.CounterVec
	sampled          *prometheus.CounterVec
	invalid          *prometheus.CounterVec
	partitionWindows prometheus.Counter
	lateWindows      prometheus.Counter
	idleAdvances     prometheus.Counter
	alignForced      prometheus.Counter
	snapshots        prometheus.Counter
	snapshotBytes    prometheus.Histogram
}

func newRoleCounters(reg prometheus.Registerer) (*roleCounters, error) {
	c := &roleCounters{
		read: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_drift_records_read_total", Help: "Source records read by the drift role, by source.",
		}, []string{"source"}),
		sampled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_drift_records_sampled_total", Help: "Source records of sampled users forwarded to the drift input topic, by source.",
		}, []string{"source"}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_drift_records_invalid_total", Help: "Records the drift role skipped as undecodable, by source (events, recs, windows, replay).",
		}, []string{"source"}),
		partitionWindows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_drift_partition_windows_total", Help: "Windows closed by partition tasks and sent to the monitor.",
		}),
		lateWindows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_drift_late_windows_total", Help: "Partition windows that arrived after their merged window was judged (dropped).",
		}),
		idleAdvances: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_drift_idle_partition_advances_total", Help: "Times a lagging partition was treated as idle so merged windows could close.",
		}),
		alignForced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_drift_align_forced_total", Help: "Input records released out of event-time order because the other source stayed silent too long.",
		}),
		snapshots: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_drift_snapshots_total", Help: "Partition window-state snapshots written.",
		}),
		snapshotBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "eddy_drift_snapshot_bytes", Help: "Size of partition window-state snapshots.",
			Buckets: prometheus.ExponentialBuckets(1<<10, 4, 9),
		}),
	}
	for _, s := range []string{"events", "recs", "windows", "replay"} {
		c.invalid.WithLabelValues(s)
	}
	if reg != nil {
		for _, col := range []prometheus.Collector{c.read, c.sampled, c.invalid, c.partitionWindows, c.lateWindows, c.idleAdvances, c.alignForced, c.snapshots, c.snapshotBytes} {
			if err := reg.Register(col); err != nil {
				return nil, fmt.Errorf("drift: register metrics: %w", err)
			}
		}
	}
	return c, nil
}
