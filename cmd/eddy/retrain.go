package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrec/eddy/connectors/webhook"
	"github.com/eddyrec/eddy/internal/httpserver"
	"github.com/eddyrec/eddy/retrain"
	"github.com/eddyrec/eddy/stream"
)

// retrainFlags are the retrain role's flags. In `eddy retrain` the iALS
// flags are plain (--dim); in `eddy up` they carry a "retrain-" prefix
// (--retrain-dim), and so do the others.
type retrainFlags struct {
	where         archiveFlags
	ownArchive    bool // registered here (eddy retrain), not shared with the archive role
	ials          ialsFlags
	window        string
	holdout       string
	archiveWait   time.Duration
	schedule      time.Duration
	gate          retrain.GateConfig
	seen          int
	maxHoldout    int
	transactional string
	webhookURL    string
}

func (f *retrainFlags) register(fs *flag.FlagSet, prefix string, ownArchive bool) {
	if ownArchive {
		f.where.register(fs, "")
	}
	f.ownArchive = ownArchive
	f.ials.registerPrefixed(fs, prefix)
	d := retrain.DefaultConfig()
	f.gate = d.Gate
	fs.StringVar(&f.window, prefix+"window", "30d", "how far back from the newest archived event a run reads (e.g. 30d, 36h)")
	fs.StringVar(&f.holdout, prefix+"holdout", "1d", "newest part of the archive the challenger does not learn from; both models are judged on it")
	fs.DurationVar(&f.archiveWait, prefix+"archive-wait", d.ArchiveWait, "how long a run waits for the archive to hold every event acknowledged when it began")
	fs.DurationVar(&f.schedule, prefix+"schedule", 0, "also retrain on this timer (e.g. 24h; 0: only on drift and by hand)")
	fs.StringVar(&f.gate.Metric, prefix+"gate-metric", f.gate.Metric, "the gate's primary metric: hr_at_10 or ndcg_at_10")
	fs.Float64Var(&f.gate.MinGain, prefix+"gate-min-gain", f.gate.MinGain, "relative gain on the primary metric the challenger must exceed")
	fs.IntVar(&f.gate.MinHoldoutUsers, prefix+"min-holdout-users", f.gate.MinHoldoutUsers, "fewest held-out users the gate judges on")
	fs.Float64Var(&f.gate.MaxCoverageDrop, prefix+"gate-max-coverage-drop", f.gate.MaxCoverageDrop, "largest relative fall of catalogue coverage the gate accepts")
	fs.Float64Var(&f.gate.MaxPopularityRise, prefix+"gate-max-popularity-rise", f.gate.MaxPopularityRise, "largest relative rise of popularity bias the gate accepts")
	fs.IntVar(&f.seen, prefix+"seen-items", d.SeenItems, "recent item ids stored with each promoted user row, as the online user stage keeps")
	fs.IntVar(&f.maxHoldout, prefix+"max-holdout-users", d.MaxHoldoutUsers, "judge at most this many held-out users (a seeded sample; 0: all)")
	fs.StringVar(&f.transactional, prefix+"transactional-id", d.TransactionalID, "transactional id of the role's producer: a second instance fences the first")
	fs.StringVar(&f.webhookURL, prefix+"webhook-url", "", "POST every version record (promoted, rejected, failed) as JSON to this URL (optional)")
}

// config resolves the role's configuration (without the archive store).
func (f *retrainFlags) config(kf *kafkaFlags, learnerDim int) (retrain.Config, error) {
	c := retrain.DefaultConfig()
	var err error
	if c.IALS, err = f.ials.config(); err != nil {
		return c, err
	}
	if learnerDim > 0 && c.IALS.Dim != learnerDim {
		return c, usageError{fmt.Errorf("--retrain-dim %d differs from the online learner's --learner-dim %d: a promoted model continues online, so they must match", c.IALS.Dim, learnerDim)}
	}
	if c.Window, err = parseWindow(f.window); err != nil {
		return c, usageError{fmt.Errorf("window: %w", err)}
	}
	if c.Holdout, err = parseWindow(f.holdout); err != nil {
		return c, usageError{fmt.Errorf("holdout: %w", err)}
	}
	c.ArchiveWait, c.Schedule, c.Gate, c.SeenItems, c.MaxHoldoutUsers, c.TransactionalID =
		f.archiveWait, f.schedule, f.gate, f.seen, f.maxHoldout, kf.layout.Prefix+f.transactional
	c.Topics = retrainTopics(kf)
	if f.webhookURL != "" {
		if err := webhook.DefaultConfig(f.webhookURL).Validate(); err != nil {
			return c, usageError{fmt.Errorf("webhook-url: %w", err)}
		}
	}
	if err := c.Validate(); err != nil {
		return c, usageError{err}
	}
	return c, nil
}

func retrainTopics(kf *kafkaFlags) retrain.Topics {
	return retrain.Topics{
		Events:   kf.layout.Name(stream.TopicEvents),
		Control:  kf.layout.Name(stream.TopicControl),
		Versions: kf.layout.Name(stream.TopicModelVersions),
		Users:    kf.layout.Name(stream.TopicModelUsers),
		Items:    kf.layout.Name(stream.TopicModelItems),
	}
}

// startRetrain starts the retrain role on the archive where; onVersion,
// if set, hears of every committed version.
func startRetrain(ctx context.Context, kf *kafkaFlags, rf *retrainFlags, where *archiveFlags, learnerDim int, onVersion func(*retrain.Version),
	srv *httpserver.Server, reg prometheus.Registerer, log *slog.Logger, onFail func(error)) (func(), error) {
	log = log.With("role", "retrain")
	cfg, err := rf.config(kf, learnerDim)
	if err != nil {
		return nil, err
	}
	if cfg.Archive, err = where.open(ctx, kf.dataDir); err != nil {
		return nil, err
	}
	cfg.ArchiveName = where.location(kf.dataDir)
	if cfg.ClientOpts, err = kf.client.Opts(); err != nil {
		return nil, err
	}
	role, err := retrain.New(cfg, log, reg)
	if err != nil {
		return nil, err
	}
	hook, err := startWebhook(rf.webhookURL, "retrain", reg, log)
	if err != nil {
		role.Close()
		return nil, err
	}
	role.OnVersion(func(v *retrain.Version) {
		if hook != nil {
			announce(hook, v)
		}
		if onVersion != nil {
			onVersion(v)
		}
	})
	log.Info("retrain role", "archive", cfg.ArchiveName, "holdout", cfg.Holdout, "window", cfg.Window, "schedule", cfg.Schedule,
		"gate_metric", cfg.Gate.Metric, "gate_min_gain", cfg.Gate.MinGain)
	bg := startBackground(ctx, "retrain", role.Run, log, onFail)
	srv.AddReadiness("retrain", func(ctx context.Context) error {
		if err := bg.failed(); err != nil {
			return err
		}
		return role.Ready(ctx)
	})
	return func() { bg.stop(); role.Close(); hook.close() }, nil
}

// announce queues a version record for the webhook: the body is the record
// as eddy model show --json prints it, so a receiver can tell a promotion
// (decision "promoted", published) from a rejection (its reason) or a
// failure.
func announce(hook *roleWebhook, v *retrain.Version) {
	attrs := []any{"version", v.Version, "decision", v.Decision}
	b, err := json.Marshal(v)
	if err != nil {
		hook.log.Warn("version not queued for the webhook", append(attrs, "err", err)...)
		return
	}
	hook.send("version", b, attrs...)
}

func newRetrainCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy retrain", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	kf := newKafkaFlags()
	kf.register(fs)
	var rf retrainFlags
	rf.register(fs, "", true)
	now := fs.Bool("now", false, "ask the running retrain role for a run now, wait for its decision and print it")
	timeout := fs.Duration("timeout", time.Hour, "with --now: how long to wait for the decision")
	asJSON := fs.Bool("json", false, "with --now: print the version record as JSON")
	httpAddr := fs.String("http-addr", ":8086", "HTTP listen address (/metrics, /healthz, /readyz)")
	drain := fs.Duration("shutdown-timeout", 30*time.Second, "how long SIGTERM waits for the HTTP server to drain")
	return &ffcli.Command{
		Name:       "retrain",
		ShortUsage: "eddy retrain [flags] | eddy retrain --now [--brokers ...]",
		ShortHelp:  "retrain the model from the archive on drift, by hand or on a timer, and promote it through a gate",
		LongHelp: `Runs the retrain role: it reads <prefix>control (the drift role's retrain
requests, eddy retrain --now, --schedule, eddy model rollback) and answers each
request with a version on <prefix>model.versions. A run trains a challenger
with the batch trainer (iALS) on the archive up to a cut-off — the newest
--holdout of it is held out — and judges it and the live model (the champion,
read from the model topics as of the cut-off) on the held-out events: each
held-out positive ranked against the user's unseen items. The challenger is
promoted only if its --gate-metric beats the champion's by more than
--gate-min-gain with at least --min-holdout-users, and coverage and popularity
bias are within their tolerances. A promoted version's vectors go to the model
topics in one transaction with its version record, and are kept under
<archive>/models/<version>/. One run at a time; requests that arrive during a
run are answered together by the next. 'eddy up' runs this role too.

eddy retrain --now asks the running role for a run, waits until the archive
holds every event acknowledged so far, and prints the decision: exit 0 when
the run finished (promoted or rejected), 1 when it failed.`,
		FlagSet:   fs,
		Options:   ffOptions(),
		UsageFunc: usage,
		Exec: func(ctx context.Context, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if *now {
				return askRetrain(ctx, &common, kf, retrain.Request{Kind: retrain.KindRetrain, Trigger: retrain.TriggerManual,
					Reason: "eddy retrain --now"}, *timeout, *asJSON, os.Stdout)
			}
			validate := func() error { _, err := rf.config(kf, 0); return err }
			return serveRoles(ctx, &common, kf, *httpAddr, *drain, validate,
				func(ctx context.Context, srv *httpserver.Server, reg prometheus.Registerer, log *slog.Logger) (func(), error) {
					return startRetrain(ctx, kf, &rf, &rf.where, 0, nil, srv, reg, log, nil)
				})
		},
	}
}

// errRunFailed makes eddy retrain --now exit non-zero after printing a
// failed version.
var errRunFailed = errors.New("the run failed")

// askRetrain sends req to the retrain role and prints its answer.
func askRetrain(ctx context.Context, common *commonFlags, kf *kafkaFlags, req retrain.Request, timeout time.Duration, asJSON bool, stdout io.Writer) error {
	log, err := startKafkaCommand(common, kf)
	if err != nil {
		return err
	}
	closeBroker, err := kf.connect(log, false)
	if err != nil {
		return err
	}
	defer closeBroker()
	opts, err := kf.client.Opts()
	if err != nil {
		return err
	}
	req.ID, req.Time = retrain.NewRequestID(), time.Now().UTC()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	log.Info("asking the retrain role", "kind", req.Kind, "control", kf.layout.Name(stream.TopicControl))
	v, err := retrain.Ask(ctx, opts, retrainTopics(kf), req, func(waited time.Duration) {
		log.Info("waiting for the retrain role's decision", "waited", waited.Round(time.Second))
	})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no decision within --timeout %v: is the retrain role running (eddy up, eddy retrain)? its logs say how far it got", timeout)
		}
		return err
	}
	if asJSON {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		printVersion(stdout, v)
	}
	if v.Decision == retrain.Failed {
		return errRunFailed
	}
	return nil
}

// printVersion writes one version as eddy model show does.
func printVersion(w io.Writer, v *retrain.Version) {
	fmt.Fprintf(w, "version %d: %s (%s, parent %d)\n", v.Version, v.Decision, v.Trigger, v.Parent)
	fmt.Fprintf(w, "  reason: %s\n", v.Reason)
	if d := v.Data; d != nil {
		fmt.Fprintf(w, "  data: %d events %s – %s, cut-off %s: %d to train, %d held out (%d users judged)\n",
			d.Events, d.From.Format(time.RFC3339), d.To.Format(time.RFC3339), d.Cutoff.Format(time.RFC3339), d.TrainEvents, d.HoldoutEvents, d.HoldoutUsers)
	}
	if v.Challenger != nil {
		fmt.Fprintf(w, "  challenger: HR@10 %.4f  NDCG@10 %.4f  coverage %.4f  popularity bias %.4f\n",
			v.Challenger.HR, v.Challenger.NDCG, v.Challenger.Coverage, v.Challenger.PopularityBias)
	}
	if v.Champion != nil {
		fmt.Fprintf(w, "  champion:   HR@10 %.4f  NDCG@10 %.4f  coverage %.4f  popularity bias %.4f  (%d users, %d items as of the cut-off)\n",
			v.Champion.HR, v.Champion.NDCG, v.Champion.Coverage, v.Champion.PopularityBias, v.ChampionUsers, v.ChampionItems)
	}
	if v.Published != nil {
		fmt.Fprintf(w, "  published: %d users, %d items, dim %d; snapshot %s\n", v.Published.Users, v.Published.Items, v.Published.Dim, v.Snapshot)
	}
	fmt.Fprintf(w, "  requests: %d (%v)  reports: %v\n", len(v.RequestIDs), v.RequestIDs, v.ReportIDs)
	fmt.Fprintf(w, "  started %s, took %s, code %s\n", v.Started.Format(time.RFC3339), v.Finished.Sub(v.Started).Round(time.Millisecond), v.Code)
}
