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
	"sync/atomic"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrec/eddy/internal/httpserver"
	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/ranker"
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

	rankerGroup           string
	labelWindow           time.Duration
	rankerPublishEvery    int
	rankerPublishInterval time.Duration
	rankerAlpha           float64
	rankerBeta            float64
	rankerL1              float64
	rankerL2              float64
	rankerMaxPending      int
	rankerMaxListsPerUser int
	rankerMaxOrphansUser  int
}

func (f *learnFlags) register(fs *flag.FlagSet, prefix string) {
	mf := stage.DefaultConfig()
	fs.StringVar(&f.stages, prefix+"stages", "users,items,ranker", "stages to run in this process, any of users, items and ranker (to scale them apart)")
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
	rc := ranker.DefaultConfig()
	fs.StringVar(&f.rankerGroup, prefix+"ranker-group", "eddy-ranker", "base consumer group of the ranker stages (<group>-events, -recs, -join, -train)")
	fs.DurationVar(&f.labelWindow, prefix+"label-window", rc.LabelWindow, "event time after a served list within which an engagement counts; unanswered items become negatives after it")
	fs.IntVar(&f.rankerPublishEvery, prefix+"ranker-publish-every", rc.PublishEvery, "examples learnt after which the ranker publishes its weights")
	fs.DurationVar(&f.rankerPublishInterval, prefix+"ranker-publish-interval", rc.PublishInterval, "least time between two ranker publishes (unless --ranker-publish-every examples came)")
	fs.Float64Var(&f.rankerAlpha, prefix+"ranker-alpha", rc.FTRL.Alpha, "FTRL-Proximal alpha (per-coordinate learning rate alpha/(beta+√n))")
	fs.Float64Var(&f.rankerBeta, prefix+"ranker-beta", rc.FTRL.Beta, "FTRL-Proximal beta")
	fs.Float64Var(&f.rankerL1, prefix+"ranker-l1", rc.FTRL.L1, "FTRL-Proximal L1 strength")
	fs.Float64Var(&f.rankerL2, prefix+"ranker-l2", rc.FTRL.L2, "FTRL-Proximal L2 strength")
	fs.IntVar(&f.rankerMaxPending, prefix+"ranker-max-pending-lists", rc.MaxPendingLists, "served lists a joiner partition holds at most (and as many orphan engagements); the oldest are dropped beyond")
	fs.IntVar(&f.rankerMaxListsPerUser, prefix+"ranker-max-lists-per-user", rc.MaxListsPerUser, "pending served lists per user at most; the oldest are dropped beyond")
	fs.IntVar(&f.rankerMaxOrphansUser, prefix+"ranker-max-orphans-per-user", rc.MaxOrphansPerUser, "engagements per user held while their served list has not arrived yet, at most; the oldest are dropped beyond")
}

// learnSettings is the resolved configuration of the learner role.
type learnSettings struct {
	Stage        stage.Config
	Users, Items bool
	Runtime      task.Config // group, store and data dir are set per stage
	UsersGroup   string
	ItemsGroup   string
	// Ranker runs the online ranker's stages (learner/ranker).
	Ranker       bool
	RankerConfig ranker.Config
	RankerGroup  string
}

// config resolves the flags into settings (topics come from kf's layout in
// startLearner).
func (f *learnFlags) config() (learnSettings, error) {
	s := learnSettings{Stage: stage.DefaultConfig(), Runtime: task.DefaultConfig(), UsersGroup: f.usersGroup, ItemsGroup: f.itemsGroup,
		RankerConfig: ranker.DefaultConfig(), RankerGroup: f.rankerGroup}
	for _, st := range strings.Split(f.stages, ",") {
		switch strings.TrimSpace(st) {
		case "users", "user":
			s.Users = true
		case "items", "item":
			s.Items = true
		case "ranker":
			s.Ranker = true
		default:
			return s, usageError{fmt.Errorf("--stages %q: want a list of users, items and ranker", f.stages)}
		}
	}
	rc := &s.RankerConfig
	rc.LabelWindow, rc.PublishEvery, rc.PublishInterval = f.labelWindow, f.rankerPublishEvery, f.rankerPublishInterval
	rc.FTRL.Alpha, rc.FTRL.Beta, rc.FTRL.L1, rc.FTRL.L2 = f.rankerAlpha, f.rankerBeta, f.rankerL1, f.rankerL2
	rc.MaxPendingLists, rc.MaxOrphans = f.rankerMaxPending, f.rankerMaxPending
	rc.MaxListsPerUser, rc.MaxOrphansPerUser = f.rankerMaxListsPerUser, f.rankerMaxOrphansUser
	rc.ModelVersion, rc.MaxReadyLag = f.modelVersion, f.maxReadyLag
	rc.Topics = ranker.Topics{Events: "-", Recs: "-", Input: "-", Examples: "-", Ranker: "-"}
	if err := rc.Validate(); err != nil {
		return s, usageError{err}
	}
	rc.Topics = ranker.Topics{}
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
	// Ranker labels follow the MF's reading of events.
	s.RankerConfig.Confidence = c.MF.Confidence
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
		ShortHelp:  "run the online learner: MF user and item stages, and the ranker",
		LongHelp: `Runs the streaming matrix factorisation (DESIGN.md §1, §4):

  user stage  (group --users-group, source <prefix>events, keyed by user):
              one SGD step per event on the user's vector, kept in the
              partition's state; item gradients to <prefix>item-grads and
              the user's vector (with recently seen items) to the compacted
              <prefix>model.users
  item stage  (group --items-group, source <prefix>item-grads, keyed by
              item): applies the gradients and publishes vector, bias,
              decayed popularity and impressions to <prefix>model.items
  ranker      (groups <--ranker-group>-events, -recs, -join, -train):
              forwards events with a request_id and the scorer's served
              lists (<prefix>recs) into <prefix>ranker.input (by user);
              the joiner labels each served item (engaged within
              --label-window: positive; skip/dislike/abandoned watch or
              no answer: negative) into <prefix>ranker.examples (one
              partition); the trainer (FTRL-Proximal) publishes the
              weights to the compacted <prefix>model.ranker, at most once
              per --ranker-publish-every examples or
              --ranker-publish-interval

State lives in Badger under <data-dir>/state behind compacted changelog
topics; every batch commits in a Kafka transaction, so kill -9 and
rebalances neither lose nor repeat an event or a gradient. Run more
processes with the same groups to share the partitions (--stages runs one
stage only). /readyz is ready once both stages have joined their groups and
caught up; /metrics has eddy_learner_* (updates, loss, vector norms,
staleness), eddy_ranker_* (examples, pending lists, log-loss, publishes,
staleness, weights) and eddy_stream_*.

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
// readiness check to srv. A stage that fails (a Kafka transaction that
// could not commit while the broker was away, a fenced producer) is
// replaced by a new one after a growing pause, resuming from its stored
// state, as the process role's stages are; /readyz reports the failure
// meanwhile. A broker whose log was wiped stops the stages for good (they
// would reprocess or drop data): that is logged and reported by /readyz,
// and the process keeps serving /healthz and /metrics rather than
// restarting in a loop. The returned closer stops the stages (they commit
// their batches in flight and leave their groups) and waits for them.
func startLearner(ctx context.Context, kf *kafkaFlags, cfg learnSettings, srv *httpserver.Server, reg prometheus.Registerer, log *slog.Logger) (func(), error) {
	log = log.With("role", "learner")
	cfg.Stage.Topics = stage.Topics{
		Events:     kf.layout.Name(stream.TopicEvents),
		ItemGrads:  kf.layout.Name(stream.TopicItemGrads),
		ModelUsers: kf.layout.Name(stream.TopicModelUsers),
		ModelItems: kf.layout.Name(stream.TopicModelItems),
		Versions:   kf.layout.Name(stream.TopicModelVersions),
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
	var run []func(context.Context) error
	if users != nil || items != nil {
		sup, err := newSupervisedService("learner", log, func() (service, error) {
			return stage.NewService(cfg.Stage, users, items, reg, log)
		})
		if err != nil {
			return nil, err
		}
		srv.AddReadiness("learner", sup.ready)
		run = append(run, sup.run)
		log.Info("learner starting", "users", cfg.Users, "items", cfg.Items, "dim", cfg.Stage.MF.Dim,
			"model_version", cfg.Stage.ModelVersion, "users_group", cfg.UsersGroup, "items_group", cfg.ItemsGroup)
	}
	if cfg.Ranker {
		rc := cfg.RankerConfig
		rc.Topics = ranker.Topics{
			Events:   kf.layout.Name(stream.TopicEvents),
			Recs:     kf.layout.Name(stream.TopicRecs),
			Input:    kf.layout.Name(stream.TopicRankerInput),
			Examples: kf.layout.Name(stream.TopicRankerExamples),
			Ranker:   kf.layout.Name(stream.TopicModelRanker),
		}
		rt := cfg.Runtime
		rt.Client, rt.DataDir = kf.client, stateDir
		sup, err := newSupervisedService("ranker", log, func() (service, error) {
			return ranker.NewService(rc, rt, cfg.RankerGroup, reg, log)
		})
		if err != nil {
			return nil, err
		}
		srv.AddReadiness("ranker", sup.ready)
		run = append(run, sup.run)
	}
	if len(run) == 0 {
		return nil, usageError{errors.New("--stages: no stage to run")}
	}
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, r := range run {
		wg.Go(func() {
			if err := r(cctx); err != nil {
				log.Error("learner stopped; /readyz reports it", "err", err)
			}
		})
	}
	return func() {
		cancel()
		wg.Wait()
	}, nil
}

// service is a learner service (stage.Service, ranker.Service): it runs
// once, until ctx ends or it fails.
type service interface {
	Run(ctx context.Context) error
	Ready(ctx context.Context) error
}

// supervisedService runs a service and, when it fails, replaces it with a
// new one (new runtimes over the same state directories) after a growing
// pause: 1 s, doubling up to 30 s, back to 1 s after a minute of running.
// It gives up on task.ErrBrokerWiped.
type supervisedService struct {
	name    string
	log     *slog.Logger
	newSvc  func() (service, error)
	cur     atomic.Pointer[service]
	lastErr atomic.Pointer[error]
}

func newSupervisedService(name string, log *slog.Logger, newSvc func() (service, error)) (*supervisedService, error) {
	svc, err := newSvc()
	if err != nil {
		return nil, err
	}
	s := &supervisedService{name: name, log: log, newSvc: newSvc}
	s.cur.Store(&svc)
	return s, nil
}

// ready reports the failure being recovered from, or the current
// service's readiness.
func (s *supervisedService) ready(ctx context.Context) error {
	if e := s.lastErr.Load(); e != nil {
		return *e
	}
	return (*s.cur.Load()).Ready(ctx)
}

// run runs the service until ctx ends (nil) or it fails for good.
func (s *supervisedService) run(ctx context.Context) error {
	pause := time.Second
	for {
		started := time.Now()
		err := (*s.cur.Load()).Run(ctx)
		if ctx.Err() != nil {
			return err
		}
		if err == nil {
			err = errors.New("stages stopped")
		}
		if errors.Is(err, task.ErrBrokerWiped) {
			e := fmt.Errorf("%s: %w", s.name, err)
			s.lastErr.Store(&e)
			return e
		}
		if time.Since(started) > time.Minute {
			pause = time.Second
		}
		e := fmt.Errorf("%s: restarting after failure: %w", s.name, err)
		s.lastErr.Store(&e)
		s.log.Error(s.name+" failed; restarting its stages", "err", err, "pause", pause)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(pause):
			}
			pause = min(2*pause, 30*time.Second)
			svc, nerr := s.newSvc()
			if nerr == nil {
				s.cur.Store(&svc)
				break
			}
			s.log.Error(s.name+": restart failed", "err", nerr, "pause", pause)
		}
		s.lastErr.Store(nil)
	}
}
