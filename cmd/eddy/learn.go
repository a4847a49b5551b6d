package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrec/eddy/internal/httpserver"
	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/stage"
	"github.com/eddyrec/eddy/stream"
	"github.com/eddyrec/eddy/stream/task"
)

// learnFlags are the learner role's flags. In `eddy learn` they are plain
// (--dim); in `eddy up` they carry a prefix such as "learner-"
// (--learner-dim), because the scorer and the demo generator own --seed,
// --users, --items and --popularity-half-life there.
type learnFlags struct {
	stages           string
	usersGroup       string
	itemsGroup       string
	instanceID       string
	dim              int
	learnRate        float64
	negatives        int
	reg              float64
	seed             uint64
	modelVersion     uint64
	seenItems        int
	halfLife         time.Duration
	maxBatchRecords  int
	sessionTimeout   time.Duration
	maxReadyLag      int64
	wipeReset        bool
	transactionAbort time.Duration
}

func (f *learnFlags) register(fs *flag.FlagSet, prefix string) {
	mf := stage.DefaultConfig()
	fs.StringVar(&f.stages, prefix+"stages", "users,items", "stages to run in this process: users, items or both (to scale them apart)")
	fs.StringVar(&f.usersGroup, prefix+"users-group", "eddy-learner-users", "consumer group of the user stage (source: events)")
	fs.StringVar(&f.itemsGroup, prefix+"items-group", "eddy-learner-items", "consumer group of the item stage (source: item-grads)")
	fs.StringVar(&f.instanceID, prefix+"instance-id", "", "static group member id (KIP-345): a restarted process takes its partitions back at once; unique per process")
	fs.IntVar(&f.dim, prefix+"dim", mf.MF.Dim, fmt.Sprintf("latent factors of the MF model (%d–%d)", learner.MinDim, learner.MaxDim))
	fs.Float64Var(&f.learnRate, prefix+"learn-rate", float64(mf.MF.LearnRate), "base SGD step size")
	fs.IntVar(&f.negatives, prefix+"negatives", mf.MF.Negatives, "popularity-sampled negatives per positive event")
	fs.Float64Var(&f.reg, prefix+"reg", float64(mf.MF.Reg), "L2 penalty on factor vectors")
	fs.Uint64Var(&f.seed, prefix+"seed", mf.MF.Seed, "seed of initial vectors and negative sampling (every instance must use the same)")
	fs.Uint64Var(&f.modelVersion, prefix+"model-version", mf.ModelVersion, "model version written into every model record")
	fs.IntVar(&f.seenItems, prefix+"seen-items", mf.SeenItems, "recently consumed items a user record carries for the scorer's exclude_seen")
	fs.DurationVar(&f.halfLife, prefix+"popularity-half-life", mf.PopularityHalfLife, "event-time half-life of item popularity and impressions (keep equal to the scorer's)")
	fs.IntVar(&f.maxBatchRecords, prefix+"max-batch-records", 5000, "most source records per batch (one Kafka transaction)")
	fs.DurationVar(&f.sessionTimeout, prefix+"session-timeout", 45*time.Second, "consumer group session timeout: how long a dead member keeps its partitions")
	fs.DurationVar(&f.transactionAbort, prefix+"transaction-timeout", 30*time.Second, "Kafka transaction timeout: how long a crashed member's open batch can hold up readers")
	fs.Int64Var(&f.maxReadyLag, prefix+"max-ready-lag", mf.MaxReadyLag, "source records a partition may lag while /readyz reports ready")
	fs.BoolVar(&f.wipeReset, prefix+"reset-on-wiped-broker", false, "drop local learner state when the broker's log was wiped (default: stop with an error)")
}

// learnSettings is the resolved configuration of the learner role.
type learnSettings struct {
	Stage        stage.Config
	Users, Items bool
	Runtime      task.Config // group, store and data dir are set per stage
	UsersGroup   string
	ItemsGroup   string
}

// config resolves the flags into settings (topics come from kf's layout in
// startLearner).
func (f *learnFlags) config() (learnSettings, error) {
	s := learnSettings{Stage: stage.DefaultConfig(), Runtime: task.DefaultConfig(), UsersGroup: f.usersGroup, ItemsGroup: f.itemsGroup}
	for _, st := range strings.Split(f.stages, ",") {
		switch strings.TrimSpace(st) {
		case "users", "user":
			s.Users = true
		case "items", "item":
			s.Items = true
		default:
			return s, usageError{fmt.Errorf("--stages %q: want users, items or users,items", f.stages)}
		}
	}
	c := &s.Stage
	c.MF.Dim, c.MF.LearnRate, c.MF.Negatives, c.MF.Reg, c.MF.Seed = f.dim, float32(f.learnRate), f.negatives, float32(f.reg), f.seed
	c.ModelVersion, c.SeenItems, c.PopularityHalfLife, c.MaxReadyLag = f.modelVersion, f.seenItems, f.halfLife, f.maxReadyLag
	// Topics are filled in startLearner; placeholders let Validate check
	// the rest now.
	c.Topics = stage.Topics{Events: "-", ItemGrads: "-", ModelUsers: "-", ModelItems: "-"}
	if err := c.Validate(); err != nil {
		return s, usageError{err}
	}
	c.Topics = stage.Topics{}
	rt := &s.Runtime
	rt.InstanceID = f.instanceID
	rt.MaxBatchRecords = f.maxBatchRecords
	rt.SessionTimeout = f.sessionTimeout
	rt.TransactionTimeout = f.transactionAbort
	if f.wipeReset {
		rt.OnBrokerWiped = task.WipeReset
	}
	if f.maxBatchRecords < 1 || f.sessionTimeout <= 0 || f.transactionAbort <= 0 {
		return s, usageError{errors.New("--max-batch-records, --session-timeout and --transaction-timeout must be positive")}
	}
	return s, nil
}

func newLearnCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy learn", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	kf := newKafkaFlags()
	kf.register(fs)
	var lf learnFlags
	lf.register(fs, "")
	httpAddr := fs.String("http-addr", ":8083", "HTTP listen address (/healthz, /readyz, /metrics)")
	drain := fs.Duration("shutdown-timeout", 30*time.Second, "how long SIGTERM waits for the stages to commit their batches")
	return &ffcli.Command{
		Name:       "learn",
		ShortUsage: "eddy learn [flags]",
		ShortHelp:  "run the online learner's user and item stages",
		LongHelp: `Runs the streaming matrix factorisation (DESIGN.md §1, §4):

  user stage  (group --users-group, source <prefix>events, keyed by user):
              one SGD step per event on the user's vector, kept in the
              partition's state; item gradients to <prefix>item-grads and
              the user's vector (with recently seen items) to the compacted
              <prefix>model.users
  item stage  (group --items-group, source <prefix>item-grads, keyed by
              item): applies the gradients and publishes vector, bias,
              decayed popularity and impressions to <prefix>model.items

State lives in Badger under <data-dir>/state behind compacted changelog
topics; every batch commits in a Kafka transaction, so kill -9 and
rebalances neither lose nor repeat an event or a gradient. Run more
processes with the same groups to share the partitions (--stages runs one
stage only). /readyz is ready once both stages have joined their groups and
caught up; /metrics has eddy_learner_* (updates, loss, vector norms,
staleness) and eddy_stream_*.

Without --brokers it uses the broker on --embedded-broker-addr, or starts the
embedded broker in this process.`,
		FlagSet:   fs,
		Options:   ffOptions(),
		UsageFunc: usage,
		Exec: func(ctx context.Context, _ []string) error {
			log, err := common.logger()
			if err != nil {
				return err
			}
			if err := kf.validate(); err != nil {
				return err
			}
			cfg, err := lf.config()
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
			closeLearner, err := startLearner(ctx, kf, cfg, srv, reg, log)
			if err != nil {
				return err
			}
			defer closeLearner()
			return srv.Serve(ctx, *drain)
		},
	}
}

// startLearner starts the learner role in the background and adds its
// readiness check to srv. A fatal error of a stage (a broker whose log was
// wiped, a fenced transaction) is logged and reported by /readyz; the
// process keeps serving /healthz and /metrics rather than restarting in a
// loop. The returned closer stops the stages (they commit their batches in
// flight and leave their groups) and waits for them.
func startLearner(ctx context.Context, kf *kafkaFlags, cfg learnSettings, srv *httpserver.Server, reg prometheus.Registerer, log *slog.Logger) (func(), error) {
	log = log.With("role", "learner")
	cfg.Stage.Topics = stage.Topics{
		Events:     kf.layout.Name(stream.TopicEvents),
		ItemGrads:  kf.layout.Name(stream.TopicItemGrads),
		ModelUsers: kf.layout.Name(stream.TopicModelUsers),
		ModelItems: kf.layout.Name(stream.TopicModelItems),
	}
	stateDir := filepath.Join(kf.dataDir, "state")
	var users, items *task.Config
	if cfg.Users {
		c := cfg.Runtime
		c.Client, c.Group, c.Store, c.DataDir = kf.client, cfg.UsersGroup, "vectors", stateDir
		if c.InstanceID != "" {
			c.InstanceID += "-users"
		}
		users = &c
	}
	if cfg.Items {
		c := cfg.Runtime
		c.Client, c.Group, c.Store, c.DataDir = kf.client, cfg.ItemsGroup, "vectors", stateDir
		if c.InstanceID != "" {
			c.InstanceID += "-items"
		}
		items = &c
	}
	svc, err := stage.NewService(cfg.Stage, users, items, reg, log)
	if err != nil {
		return nil, err
	}
	srv.AddReadiness("learner", svc.Ready)
	log.Info("learner starting", "users", cfg.Users, "items", cfg.Items, "dim", cfg.Stage.MF.Dim,
		"model_version", cfg.Stage.ModelVersion, "users_group", cfg.UsersGroup, "items_group", cfg.ItemsGroup)
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := svc.Run(cctx); err != nil {
			log.Error("learner stopped; /readyz reports it", "err", err)
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}, nil
}
