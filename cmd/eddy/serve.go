package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrec/eddy/internal/httpserver"
	"github.com/eddyrec/eddy/scorer"
	"github.com/eddyrec/eddy/stream"
)

func newServeCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy serve", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	kf := newKafkaFlags()
	kf.register(fs)
	cfg := scorer.DefaultConfig()
	cfg.RegisterFlags(fs)
	httpAddr := fs.String("http-addr", ":8082", "HTTP listen address")
	driftSample := fs.Float64("drift-sample", 0, "share of users whose served lists are also copied to the drift role's input topic (0: none; must equal eddy drift --sample, with eddy drift --recs-from serve)")
	driftGroup := fs.String("drift-group", "eddy-drift", "base group of the drift role fed by --drift-sample (its input topic is <prefix><group>-input)")
	drain := fs.Duration("shutdown-timeout", 30*time.Second, "how long SIGTERM waits for in-flight requests")
	return &ffcli.Command{
		Name:       "serve",
		ShortUsage: "eddy serve [flags]",
		ShortHelp:  "serve recommendations from a hot replica of the model topics",
		LongHelp: `Replays <prefix>model.users, <prefix>model.items and <prefix>model.ranker
from the beginning into memory (no consumer group: run as many scorers as
you like) and keeps applying updates. /readyz turns ready once the scorer
has applied everything up to the end offsets seen at start.

GET /v1/recommendations?user_id=U&k=10[&exclude_seen=true][&explain=true]
retrieves the top --candidates items by inner product (--index int8, the
default: an int8 scan of every item, then the best candidates re-scored
exactly in float32; --index exact: a float32 scan), re-scores them with the
ranker and returns the best k. Concurrent requests share passes over the
items (--search-workers, --max-batch). Unknown users and an empty model
get the decayed-popularity fallback ("fallback": true). Every served list is
published to <prefix>recs (never blocking the response; drops are counted).
--drift-sample S (0: off) also copies the lists of a share S of users, chosen
by a hash of user_id as the drift role chooses them, to the input topic of
the drift role with base group --drift-group (<prefix><group>-input, created
here if missing): run 'eddy drift --recs-from serve --sample S' with the same
S and group (and every scorer with the flag), and the drift role does not read
the whole recs topic.
If Kafka becomes unreachable the scorer keeps serving its last state and says
so in /readyz and eddy_scorer_kafka_connected.

Experiments: --variants name[:policy]=weight,... splits users by a hash of
user_id (the same user always gets the same variant, in every process)
between policies online (retrieval + ranker), retrieval (ranker off),
popularity (the popularity list, "fallback": false) and frozen (online over
a copy of the model taken once the scorer caught up, re-taken every
--frozen-refresh, e.g. 24h for a nightly-batch baseline; it costs a second
copy of the model in memory). The variant is in the response, the served
list and the request metrics; analyse with 'eddy report ab'.

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
			if *driftSample != 0 {
				setScorerDriftCopy(&cfg, kf, *driftSample, *driftGroup)
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
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
			closeScorer, err := startScorer(ctx, kf, cfg, srv, reg, log)
			if err != nil {
				return err
			}
			defer closeScorer()
			return srv.Serve(ctx, *drain)
		},
	}
}

// startScorer mounts the scorer role on srv: it starts the model-topic
// consumer and the served-list producer. The returned closer stops both;
// call it after the HTTP server has drained.
func startScorer(ctx context.Context, kf *kafkaFlags, cfg scorer.Config, srv *httpserver.Server, reg prometheus.Registerer, log *slog.Logger) (func(), error) {
	return startScorerWith(ctx, kf, cfg, scorer.NewState(cfg), srv, reg, log)
}

// startScorerWith is startScorer replicating into st, which the caller
// may read (eddy bench freshness watches it).
func startScorerWith(ctx context.Context, kf *kafkaFlags, cfg scorer.Config, st *scorer.State, srv *httpserver.Server, reg prometheus.Registerer, log *slog.Logger) (func(), error) {
	log = log.With("role", "scorer")
	if cfg.DriftSample > 0 {
		if err := ensureDriftInput(ctx, kf, cfg.DriftInput, log); err != nil {
			return nil, err
		}
	}
	sc, err := scorer.New(cfg, st, reg)
	if err != nil {
		return nil, err
	}
	opts, err := kf.client.Opts()
	if err != nil {
		return nil, err
	}
	cons, err := scorer.NewConsumer(sc, scorer.Topics{
		Users:    kf.layout.Name(stream.TopicModelUsers),
		Items:    kf.layout.Name(stream.TopicModelItems),
		Ranker:   kf.layout.Name(stream.TopicModelRanker),
		Versions: kf.layout.Name(stream.TopicModelVersions),
	}, log, opts...)
	if err != nil {
		return nil, err
	}
	prod, err := kf.client.NewClient()
	if err != nil {
		cons.Close()
		return nil, fmt.Errorf("scorer: recs producer: %w", err)
	}
	sc.PublishServedLists(prod, kf.layout.Name(stream.TopicRecs))
	sc.Register(srv.Mux)
	srv.AddReadiness("scorer", cons.Ready)
	var variants []string
	for _, v := range sc.Variants() {
		variants = append(variants, fmt.Sprintf("%s:%s=%.4g", v.Name, v.Policy, v.Weight))
	}
	log.Info("scorer starting", "index", cfg.Index, "kernel", cfg.IndexKernel(), "candidates", cfg.Candidates, "variants", strings.Join(variants, ","))

	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := cons.Run(cctx); err != nil {
			log.Error("scorer consumer stopped", "err", err)
		}
	})
	return func() {
		cancel()
		wg.Wait()
		cons.Close()
		sc.StopPublishing()
		fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = prod.Flush(fctx)
		fcancel()
		prod.Close()
		sc.Close()
	}, nil
}
