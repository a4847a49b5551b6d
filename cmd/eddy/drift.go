package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrec/eddy/connectors/webhook"
	"github.com/eddyrec/eddy/drift"
	"github.com/eddyrec/eddy/features"
	"github.com/eddyrec/eddy/internal/httpserver"
	"github.com/eddyrec/eddy/scorer"
	"github.com/eddyrec/eddy/stream"
	"github.com/eddyrec/eddy/stream/task"
)

// defaultDriftSample is the share of users the drift role observes unless
// --sample or the drift config's window.sample says otherwise (and, in
// `eddy up`, the share whose events the process role copies to it).
// Measured on 2 cores (shared, 2026-12-06; BENCHMARKS.md "Drift role"), 1M
// synthetic events: with the copy done by the process role's user stage
// (--events-from process, eddy up's default) the drift role used 0.19–0.21 s
// of CPU catching up at 1% (0.09–0.11 s of it start-up and idle), 5.5 s at
// 100%; the copy adds about 0.025–0.05 µs per event to processing (~7 µs);
// in all about 1.5–3.7% of processing CPU at 1%, against ~28% when the role
// read the events topic itself (1.2–1.4 s at 1%). 1% still gives ~600k
// events per 5-minute window at 200k events/s; at low traffic raise it (1
// observes all), under the CPU target lower it.
const defaultDriftSample = 0.01

// driftFlags are the drift role's flags. In `eddy drift` they are plain
// (--window); in `eddy up` they carry a "drift-" prefix (--drift-window).
type driftFlags struct {
	prefix       string
	configPath   string
	window       time.Duration
	windowEvents int64
	sample       float64
	group        string
	instanceID   string
	webhookURL   string
	idleWindows  int
	alignSpan    time.Duration
	wipeReset    bool
	stateOnDisk  bool
	eventsFrom   string
	recsFrom     string
	fetchWait    time.Duration
}

// Values of --events-from and --recs-from: where the drift role gets the
// sampled users' events and served lists.
const (
	// driftForward (both): its own forwarder reads the whole source topic.
	driftForward = "forward"
	// driftEventsProcess: the process role's user stage copies them into
	// the drift input topic (features.Config.DriftSample).
	driftEventsProcess = "process"
	// driftRecsServe (--recs-from): the scorer copies the sampled users'
	// served lists into the drift input topic (scorer.Config.DriftSample).
	driftRecsServe = "serve"
)

func (f *driftFlags) register(fs *flag.FlagSet, prefix string) {
	f.prefix = prefix
	fs.StringVar(&f.configPath, "drift-config", "", "YAML drift configuration (signals, thresholds, windows, trigger); default: the built-in defaults")
	fs.DurationVar(&f.window, prefix+"window", 5*time.Minute, "event-time tumbling window length (overrides the drift config's window.size when set)")
	fs.Int64Var(&f.windowEvents, prefix+"window-events", 0, "count-based windows of this many events per input partition instead of event time (tests and offline runs)")
	fs.Float64Var(&f.sample, prefix+"sample", defaultDriftSample, "share of users observed, chosen by a hash of user_id (1: all; overrides the drift config's window.sample when set or when the config has none)")
	fs.StringVar(&f.group, prefix+"group", "eddy-drift", "base consumer group id (stages use <group>-events, -recs, -windows, -monitor)")
	fs.StringVar(&f.instanceID, prefix+"instance-id", "", "static group member id (KIP-345): a restart takes its partitions back at once")
	fs.StringVar(&f.webhookURL, prefix+"webhook-url", "", "POST every drifted report and retrain request as JSON to this URL (optional)")
	fs.IntVar(&f.idleWindows, prefix+"idle-windows", 3, "windows a partition may lag the most advanced one before it is treated as idle (event-time windows)")
	fs.DurationVar(&f.alignSpan, prefix+"align-span", 15*time.Minute, "event time one source (events, served lists) waits for the other in a partition: a stopped scorer delays event signals this long; 0 disables alignment")
	fs.BoolVar(&f.wipeReset, prefix+"reset-on-wiped-broker", false, "drop local drift state when the broker's log was wiped (default: stop with an error)")
	fs.BoolVar(&f.stateOnDisk, prefix+"state-on-disk", false, "keep the role's state in Badger under <data-dir>/state instead of in memory (rebuilt from its changelog topics at start; drift state is a few MB, and Badger's idle compactors would cost more CPU than the role's records)")
	f.eventsFrom = driftForward
	fs.StringVar(&f.eventsFrom, prefix+"events-from", f.eventsFrom, "where the sampled users' events come from: forward (the role reads the whole events topic) or process (eddy process --drift-sample copies them into the input topic; same sample and group required)")
	fs.DurationVar(&f.fetchWait, prefix+"fetch-wait", 5*time.Second, "how long each stage's fetch gathers input (up to 1 MiB) before it is processed as one Kafka transaction: longer is cheaper per record, reports come up to two waits later (1ms–30s)")
	f.recsFrom = driftForward
	fs.StringVar(&f.recsFrom, prefix+"recs-from", f.recsFrom, "where the sampled users' served lists come from: forward (the role reads the whole recs topic) or serve (every eddy serve runs with --drift-sample and copies them into the input topic; same sample and group required)")
}

// driftSettings is the resolved configuration of the drift role.
type driftSettings struct {
	Role       drift.RoleConfig
	WebhookURL string
}

// config resolves the flags: the YAML file (or defaults), then the flags
// given explicitly. set holds the names of the flags set on the command
// line, environment or config file (fs.Visit after parsing).
func (f *driftFlags) config(fs *flag.FlagSet) (driftSettings, error) {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	dcfg := drift.DefaultConfig()
	dcfg.Window.Sample = f.sample
	if f.configPath != "" {
		c, err := drift.LoadConfig(f.configPath)
		if err != nil {
			return driftSettings{}, usageError{err}
		}
		dcfg = c
		if set[f.prefix+"sample"] {
			dcfg.Window.Sample = f.sample
		}
	}
	if f.configPath == "" || set[f.prefix+"window"] {
		dcfg.Window.Size = drift.Duration(f.window)
	}
	if set[f.prefix+"window-events"] || f.windowEvents != 0 {
		dcfg.Window.Events = f.windowEvents
	}
	if err := dcfg.Validate(); err != nil {
		return driftSettings{}, usageError{err}
	}
	rc := drift.DefaultRoleConfig(dcfg)
	rc.Group, rc.IdleWindows, rc.AlignSpan = f.group, f.idleWindows, f.alignSpan
	switch f.eventsFrom {
	case driftForward:
	case driftEventsProcess:
		rc.ForwardEvents = false
	default:
		return driftSettings{}, usageError{fmt.Errorf("--%sevents-from %q: want forward or process", f.prefix, f.eventsFrom)}
	}
	switch f.recsFrom {
	case driftForward:
	case driftRecsServe:
		rc.ForwardRecs = false
	default:
		return driftSettings{}, usageError{fmt.Errorf("--%srecs-from %q: want forward or serve", f.prefix, f.recsFrom)}
	}
	if f.fetchWait < time.Millisecond || f.fetchWait > 30*time.Second {
		return driftSettings{}, usageError{fmt.Errorf("--%sfetch-wait %v: want 1ms–30s", f.prefix, f.fetchWait)}
	}
	rc.FetchWait = f.fetchWait
	rc.Runtime.InstanceID = f.instanceID
	rc.StateOnDisk = f.stateOnDisk
	if f.wipeReset {
		rc.Runtime.OnBrokerWiped = task.WipeReset
	}
	if f.webhookURL != "" {
		if err := webhook.DefaultConfig(f.webhookURL).Validate(); err != nil {
			return driftSettings{}, usageError{err}
		}
	}
	return driftSettings{Role: rc, WebhookURL: f.webhookURL}, nil
}

func newDriftCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy drift", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	kf := newKafkaFlags()
	kf.register(fs)
	var df driftFlags
	df.register(fs, "")
	httpAddr := fs.String("http-addr", ":8084", "HTTP listen address (/metrics, /healthz, /readyz)")
	drain := fs.Duration("shutdown-timeout", 30*time.Second, "how long SIGTERM waits for the HTTP server to drain")
	return &ffcli.Command{
		Name:       "drift",
		ShortUsage: "eddy drift [flags]",
		ShortHelp:  "watch feature and prediction drift and trigger retraining",
		LongHelp: `Consumes <prefix>events and <prefix>recs (served lists), keeps the events and
lists of a sample of users (--sample, by a hash of user_id), and cuts them
into tumbling event-time windows (--window) per partition, merged across
partitions. The first reference_windows merged windows (and again after a new
model version is served) form the reference; every later window is compared
with it signal by signal. One DriftReport per window goes to <prefix>drift;
the gauges eddy_drift_score{signal,method} and eddy_drift_alert{signal} are on
/metrics; a signal drifted in K consecutive windows sends a RetrainRequest to
<prefix>control under the trigger policy (cooldown, daily maximum, once per
drift episode). --webhook-url also posts drifted reports and requests.

Internally the role runs four consumer groups (<group>-events, -recs,
-windows, -monitor) and two topics of its own (<prefix><group>-input,
<prefix><group>-windows). Its state (a few MB) lives in memory and is
rebuilt from its changelog topics at start (--state-on-disk: in Badger
under <data-dir>/state); either way it survives kill -9, and reports and
requests are produced exactly once.

--events-from process drops the <group>-events stage, which reads the whole
events topic a second time (most of the role's cost): 'eddy process
--drift-sample S --drift-group G' then copies the sampled users' events into
<prefix><G>-input in its own transactions. S must equal --sample (or the
config's window.sample) and G --group. Likewise --recs-from serve drops the
<group>-recs stage, which reads every served list with all its items'
features: every 'eddy serve --drift-sample S --drift-group G' copies the
sampled users' lists instead. 'eddy up' does both by default.

Without --brokers it uses the broker on --embedded-broker-addr, or starts the
embedded broker in this process.`,
		FlagSet:   fs,
		Options:   ffOptions(),
		UsageFunc: usage,
		Exec: func(ctx context.Context, _ []string) error {
			log, err := startKafkaCommand(&common, kf)
			if err != nil {
				return err
			}
			cfg, err := df.config(fs)
			if err != nil {
				return err
			}
			closeBroker, err := kf.connect(log, true)
			if err != nil {
				return err
			}
			defer closeBroker()
			if _, err := kf.ensureTopics(ctx, log); err != nil {
				return err
			}
			reg := newRegistry()
			srv := httpserver.New(*httpAddr, reg, log)
			// A failed role stops the command (exit 1) instead of
			// serving an unready endpoint forever.
			rctx, cancel := context.WithCancelCause(ctx)
			defer cancel(nil)
			closeDrift, err := startDriftWith(rctx, kf, cfg, srv, reg, log, func(err error) { cancel(err) })
			if err != nil {
				return err
			}
			serr := srv.Serve(rctx, *drain)
			closeDrift()
			if c := context.Cause(rctx); c != nil && !errors.Is(c, context.Canceled) {
				return c
			}
			return serr
		},
	}
}

// driftTopics names the drift role's topics for its base group.
func driftTopics(kf *kafkaFlags, group string) drift.RoleTopics {
	return drift.RoleTopics{
		Events: kf.layout.Name(stream.TopicEvents),
		Recs:   kf.layout.Name(stream.TopicRecs),
		// Named after the group: two drift deployments on one cluster
		// must not feed each other's input.
		Input:   kf.layout.Name(group + "-input"),
		Windows: kf.layout.Name(group + "-windows"),
		Reports: kf.layout.Name(stream.TopicDrift),
		Control: kf.layout.Name(stream.TopicControl),
	}
}

// setDriftCopy makes the process role's user stage copy the events of the
// drift role's sampled users (share sample, the drift role's window
// sample) into the input topic of the drift role with base group group,
// marked as the drift role's own events forwarder marks them.
func setDriftCopy(cfg *features.Config, kf *kafkaFlags, sample float64, group string) {
	cfg.DriftSample = sample
	cfg.DriftInput = driftTopics(kf, group).Input
	cfg.DriftHeaderKey, cfg.DriftHeaderValue = drift.SourceHeader, drift.SourceEvents.String()
}

// ensureDriftInput creates the drift input topic a copying role (process,
// serve, gen, bench) writes to, with the events topic's partition count,
// unless it exists. It must exist before anything is written to it (an
// auto-created topic would get the broker's default partition count and be
// lost on a kfake SIGKILL), whichever role starts first.
func ensureDriftInput(ctx context.Context, kf *kafkaFlags, input string, log *slog.Logger) error {
	_, err := drift.EnsureTopics(ctx, kf.client, drift.RoleTopics{Events: kf.layout.Name(stream.TopicEvents), Input: input}, log)
	return err
}

// setScorerDriftCopy makes the scorer copy the served lists of the drift
// role's sampled users into the input topic of the drift role with base
// group group, marked as the drift role's own recs forwarder marks them.
func setScorerDriftCopy(cfg *scorer.Config, kf *kafkaFlags, sample float64, group string) {
	cfg.DriftSample = sample
	cfg.DriftInput = driftTopics(kf, group).Input
	cfg.DriftHeaderKey, cfg.DriftHeaderValue = drift.SourceHeader, drift.SourceRecs.String()
}

// checkDriftCopy reports whether the process role and the scorer copy
// exactly what the drift role expects: events (ForwardEvents false) and
// served lists (ForwardRecs false) of the same sample of users into its
// input topic, and nothing for a role that forwards its own. In `eddy up`
// all of them come from the drift flags, so a mismatch is a wiring bug.
func checkDriftCopy(fc features.Config, sc scorer.Config, rc drift.RoleConfig, topics drift.RoleTopics) error {
	if err := checkCopy("process role", "events", fc.DriftSample, fc.DriftInput, !rc.ForwardEvents, rc, topics); err != nil {
		return err
	}
	return checkCopy("scorer", "served lists", sc.DriftSample, sc.DriftInput, !rc.ForwardRecs, rc, topics)
}

func checkCopy(who, what string, sample float64, input string, copied bool, rc drift.RoleConfig, topics drift.RoleTopics) error {
	if !copied {
		if sample > 0 {
			return fmt.Errorf("drift: the %s copies %s for a drift role that forwards its own (each sampled record would be counted twice)", who, what)
		}
		return nil
	}
	switch {
	case sample != rc.Drift.Window.Sample:
		return fmt.Errorf("drift: the %s samples %v of users for drift, the drift role %v: they must be equal", who, sample, rc.Drift.Window.Sample)
	case input != topics.Input:
		return fmt.Errorf("drift: the %s copies %s to %s, the drift role reads %s", who, what, input, topics.Input)
	}
	return nil
}

// startDrift starts the drift role in the background (`eddy up`). A role
// that fails is logged and reported through readiness; it is not
// restarted (a broken state or a fenced producer needs an operator). The
// returned closer stops the role and waits for it.
func startDrift(ctx context.Context, kf *kafkaFlags, cfg driftSettings, srv *httpserver.Server, reg prometheus.Registerer, log *slog.Logger) (func(), error) {
	return startDriftWith(ctx, kf, cfg, srv, reg, log, nil)
}

func startDriftWith(ctx context.Context, kf *kafkaFlags, cfg driftSettings, srv *httpserver.Server, reg prometheus.Registerer, log *slog.Logger, onFail func(error)) (func(), error) {
	log = log.With("role", "drift")
	rc := cfg.Role
	rc.Runtime.Client = kf.client
	rc.Runtime.DataDir = filepath.Join(kf.dataDir, "state")
	rc.Topics = driftTopics(kf, rc.Group)
	hook, err := startWebhook(cfg.WebhookURL, "drift", reg, log)
	if err != nil {
		return nil, err
	}
	if hook != nil {
		rc.Alert = func(body []byte) { hook.send("drift alert", body) }
	}
	role, err := drift.NewRole(rc, reg, log)
	if err != nil {
		hook.close()
		return nil, err
	}
	bg := startBackground(ctx, "drift", role.Run, log, onFail)
	srv.AddReadiness("drift", func(context.Context) error {
		if err := bg.failed(); err != nil {
			return err
		}
		if !role.Ready() {
			return errors.New("drift role not caught up")
		}
		return nil
	})
	return func() { bg.stop(); hook.close() }, nil
}
