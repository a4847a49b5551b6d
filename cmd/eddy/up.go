package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"golang.org/x/sync/errgroup"

	"github.com/eddyrec/eddy/features"
	"github.com/eddyrec/eddy/ingest"
	"github.com/eddyrec/eddy/internal/httpserver"
	"github.com/eddyrec/eddy/scorer"
)

func newUpCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy up", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	kf := newKafkaFlags()
	kf.register(fs)
	icfg := ingest.DefaultConfig()
	icfg.RegisterFlags(fs)
	scfg := scorer.DefaultConfig()
	scfg.RegisterFlags(fs)
	var lf learnFlags
	lf.register(fs, "learner-")
	fcfg := features.DefaultConfig()
	fcfg.RegisterFlags(fs)
	var pf processFlags
	pf.register(fs, "process-")
	var df driftFlags
	df.register(fs, "drift-")
	httpAddr := fs.String("http-addr", ":8080", "HTTP listen address shared by all roles")
	drain := fs.Duration("shutdown-timeout", 30*time.Second, "how long SIGTERM waits for in-flight requests")
	demo := fs.Bool("demo", false, "also generate synthetic traffic into the ingest API")
	var g genFlags
	g.register(fs)
	g.rate = 200
	fs.Lookup("rate").DefValue = "200"
	_ = fs.Set("rate", "200")
	return &ffcli.Command{
		Name:       "up",
		ShortUsage: "eddy up [--demo] [flags]",
		ShortHelp:  "run the whole system on one machine (embedded broker and all roles)",
		LongHelp: `The all-in-one mode: starts the embedded broker (unless --brokers are given),
creates the topics, and runs every role in this process behind one HTTP port:
ingest (POST /v1/events), the feature store (GET /v1/users/{id}/features,
GET /v1/items/{id}/features; runtime flags prefixed process-), the learner's
user and item stages and its online ranker (flags prefixed learner-, e.g.
--learner-label-window), the scorer
(GET /v1/recommendations) and the drift monitor (flags prefixed drift-),
plus /healthz, /readyz and /metrics. With --demo it also
feeds synthetic traffic (the generator of 'eddy gen', at --rate events/s)
through the ingest API. State lives under --data-dir, so a restart continues
where it stopped.`,
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
			if err := icfg.Validate(); err != nil {
				return usageError{err}
			}
			if err := scfg.Validate(); err != nil {
				return usageError{err}
			}
			lcfg, err := lf.config()
			if err != nil {
				return err
			}
			// The learner and the scorer must decay popularity alike.
			lcfg.Stage.PopularityHalfLife = scfg.PopularityHalfLife
			pf.apply(&fcfg)
			if err := fcfg.Validate(); err != nil {
				return usageError{err}
			}
			dcfg, err := df.config(fs)
			if err != nil {
				return err
			}
			gcfg, err := g.config(fs)
			if err != nil {
				return err
			}
			// Demo traffic happens now: its event time starts at the wall
			// clock and advances at the paced rate, so that decayed
			// popularity and the 5-minute future limit behave as with real
			// traffic.
			gcfg.Start = time.Now().UTC().Truncate(time.Millisecond)
			if g.rate > 0 {
				gcfg.MeanInterEvent = time.Duration(float64(time.Second) / g.rate)
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
			closeIngest, err := startIngest(kf, icfg, srv, reg, log)
			if err != nil {
				return err
			}
			defer closeIngest()
			closeProcess, err := startProcess(ctx, kf, fcfg, srv, reg, log)
			if err != nil {
				return err
			}
			defer closeProcess()
			closeLearner, err := startLearner(ctx, kf, lcfg, srv, reg, log)
			if err != nil {
				return err
			}
			defer closeLearner()
			closeScorer, err := startScorer(ctx, kf, scfg, srv, reg, log)
			if err != nil {
				return err
			}
			defer closeScorer()
			closeDrift, err := startDrift(ctx, kf, dcfg, srv, reg, log)
			if err != nil {
				return err
			}
			defer closeDrift()
			if err := srv.Listen(); err != nil {
				return err
			}

			grp, gctx := errgroup.WithContext(ctx)
			// The demo stops before the server drains, so that its last
			// requests are answered.
			demoCtx, stopDemo := context.WithCancel(gctx)
			defer stopDemo()
			grp.Go(func() error {
				defer stopDemo()
				return srv.Serve(gctx, *drain)
			})
			if *demo {
				url := "http://" + loopbackURLHost(srv.Addr())
				log.Info("demo traffic", "to", url, "rate", g.rate, "users", gcfg.Users, "items", gcfg.Items)
				grp.Go(func() error {
					token := icfg.AuthToken
					sink := httpSink{c: &ingest.Client{URL: url, Token: token, MaxRetries: 1 << 30}, log: log.With("role", "demo")}
					n, err := runGen(demoCtx, gcfg, sink, g.count, g.rate, g.batch, log)
					log.Info("demo traffic stopped", "events", n)
					if err != nil {
						return fmt.Errorf("demo: %w", err)
					}
					return nil
				})
			}
			log.Info("eddy up", "http", srv.Addr(), "brokers", kf.client.Brokers)
			return grp.Wait()
		},
	}
}

// loopbackURLHost turns a listen address such as "[::]:8080" into one this
// process can dial.
func loopbackURLHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
