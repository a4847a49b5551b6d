package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/eddyrec/eddy/features"
	"github.com/eddyrec/eddy/ingest"
	"github.com/eddyrec/eddy/internal/httpserver"
	"github.com/eddyrec/eddy/scorer"
)

// upFlags are the flags of every role `eddy up` runs, with the Kafka and
// logging flags. `eddy bench freshness` registers them too, so that it
// measures the system `eddy up` runs, tunable with the same flags.
type upFlags struct {
	common commonFlags
	kf     *kafkaFlags
	ingest ingest.Config
	scorer scorer.Config
	learn  learnFlags
	fcfg   features.Config
	proc   processFlags
	drift  driftFlags
	arch   archiveRoleFlags
	retr   retrainFlags
	// noArchive leaves the archive role out (and the retrain role, which
	// trains on the archive); noRetrain only the retrain role.
	noArchive, noRetrain bool
}

func (f *upFlags) register(fs *flag.FlagSet) {
	f.common.register(fs)
	f.kf = newKafkaFlags()
	f.kf.register(fs)
	f.ingest = ingest.DefaultConfig()
	f.ingest.RegisterFlags(fs)
	f.scorer = scorer.DefaultConfig()
	f.scorer.RegisterFlags(fs)
	f.learn.register(fs, "learner-")
	f.fcfg = features.DefaultConfig()
	f.fcfg.RegisterFlags(fs)
	f.proc.register(fs, "process-")
	f.drift.register(fs, "drift-")
	f.arch.register(fs, "")
	fs.BoolVar(&f.noArchive, "no-archive", false, "do not run the archive role (nor the retrain role, which trains on the archive)")
	f.retr.register(fs, "retrain-", false)
	fs.BoolVar(&f.noRetrain, "no-retrain", false, "do not run the retrain role")
	// All in one process: the process role's user stage copies the drift
	// sample's events and the scorer its served lists, so the drift role
	// reads neither source topic again.
	f.drift.eventsFrom = driftEventsProcess
	fs.Lookup("drift-events-from").DefValue = driftEventsProcess
	f.drift.recsFrom = driftRecsServe
	fs.Lookup("drift-recs-from").DefValue = driftRecsServe
}

// upRoles is the resolved configuration of the roles of `eddy up`.
type upRoles struct {
	ingest   ingest.Config
	scorer   scorer.Config
	learner  learnSettings
	features features.Config
	drift    driftSettings
	// archive is nil when the archive role is left out.
	archive *archiveRoleFlags
	// retrain is nil when the retrain role is left out.
	retrain *retrainFlags
}

// roles validates the Kafka flags and resolves the roles' settings; fs is
// the parsed flag set (some settings depend on which flags were set).
func (f *upFlags) roles(fs *flag.FlagSet) (upRoles, error) {
	r := upRoles{ingest: f.ingest, scorer: f.scorer, features: f.fcfg}
	if err := f.kf.validate(); err != nil {
		return r, err
	}
	if err := r.ingest.Validate(); err != nil {
		return r, usageError{err}
	}
	if err := r.scorer.Validate(); err != nil {
		return r, usageError{err}
	}
	var err error
	if r.learner, err = f.learn.config(); err != nil {
		return r, err
	}
	// The learner and the scorer must decay popularity alike.
	r.learner.Stage.PopularityHalfLife = r.scorer.PopularityHalfLife
	f.proc.apply(&r.features)
	if err := r.features.Validate(); err != nil {
		return r, usageError{err}
	}
	if r.drift, err = f.drift.config(fs); err != nil {
		return r, err
	}
	// With --drift-events-from process (the default) the user stage copies
	// the events of the drift role's users: the same sample (the drift
	// role's window sample, --drift-sample or the drift config's) into the
	// drift role's input topic.
	if rc := r.drift.Role; !rc.ForwardEvents {
		setDriftCopy(&r.features, f.kf, rc.Drift.Window.Sample, rc.Group)
	}
	// With --drift-recs-from serve (the default) the scorer copies the
	// same users' served lists.
	if rc := r.drift.Role; !rc.ForwardRecs {
		setScorerDriftCopy(&r.scorer, f.kf, rc.Drift.Window.Sample, rc.Group)
	}
	if err := checkDriftCopy(r.features, r.scorer, r.drift.Role, driftTopics(f.kf, r.drift.Role.Group)); err != nil {
		return r, err
	}
	if !f.noArchive {
		if _, err := f.arch.config(f.kf); err != nil {
			return r, err
		}
		r.archive = &f.arch
		if !f.noRetrain {
			if _, err := f.retr.config(f.kf, r.learner.Stage.MF.Dim); err != nil {
				return r, err
			}
			r.retrain = &f.retr
		}
	}
	return r, nil
}

// upSystem is a started `eddy up`: a broker (the embedded one unless kf
// names brokers), Eddy's topics, and every role mounted on one HTTP server
// that listens but does not serve yet.
type upSystem struct {
	srv *httpserver.Server
	// reg holds every role's metrics.
	reg *prometheus.Registry
	// scorer is the scorer role's hot state.
	scorer *scorer.State
	// stops stop what was started, in order of starting.
	stops []func()
}

// startUp starts the broker if needed, creates the topics and starts the
// roles on one HTTP server listening on httpAddr. On error it stops what it
// started.
func startUp(ctx context.Context, kf *kafkaFlags, r upRoles, httpAddr string, log *slog.Logger) (_ *upSystem, err error) {
	u := &upSystem{scorer: scorer.NewState(r.scorer)}
	defer func() {
		if err != nil {
			u.close()
		}
	}()
	closeBroker, err := kf.connect(log, true)
	if err != nil {
		return nil, err
	}
	u.stops = append(u.stops, closeBroker)
	if _, err := kf.ensureTopics(ctx, log); err != nil {
		return nil, err
	}
	reg := newRegistry()
	u.reg = reg
	u.srv = httpserver.New(httpAddr, reg, log)
	starts := []func() (func(), error){
		func() (func(), error) { return startIngest(kf, r.ingest, u.srv, reg, log) },
		func() (func(), error) { return startProcess(ctx, kf, r.features, u.srv, reg, log) },
		func() (func(), error) { return startLearner(ctx, kf, r.learner, u.srv, reg, log) },
		func() (func(), error) { return startScorerWith(ctx, kf, r.scorer, u.scorer, u.srv, reg, log) },
		func() (func(), error) { return startDrift(ctx, kf, r.drift, u.srv, reg, log) },
	}
	if r.archive != nil {
		starts = append(starts, func() (func(), error) { return startArchive(ctx, kf, r.archive, u.srv, reg, log, nil) })
	}
	if r.retrain != nil {
		starts = append(starts, func() (func(), error) {
			return startRetrain(ctx, kf, r.retrain, &r.archive.where, r.learner.Stage.MF.Dim, nil, u.srv, reg, log, nil)
		})
	}
	for _, start := range starts {
		stop, err := start()
		if err != nil {
			return nil, err
		}
		u.stops = append(u.stops, stop)
	}
	if err := u.srv.Listen(); err != nil {
		return nil, err
	}
	return u, nil
}

// close stops the roles in reverse order of starting, then the broker if
// startUp started it. Call it after the HTTP server has drained.
func (u *upSystem) close() {
	for i := len(u.stops) - 1; i >= 0; i-- {
		u.stops[i]()
	}
	u.stops = nil
}

func newUpCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy up", flag.ContinueOnError)
	var uf upFlags
	uf.register(fs)
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
(GET /v1/recommendations), the archive (events and served lists to Parquet
under --archive-dir, default <data-dir>/archive; --no-archive leaves it out)
the retrain role (flags prefixed retrain-: on drift, eddy retrain --now or
--retrain-schedule it trains iALS on the archive and promotes it through the
champion/challenger gate; --no-retrain leaves it out)
and the drift monitor (flags prefixed drift-; the
process role's user stage copies the events of the drift sample's users to
it unless --drift-events-from forward, the scorer their served lists unless
--drift-recs-from forward),
plus /healthz, /readyz and /metrics. With --demo it also
feeds synthetic traffic (the generator of 'eddy gen', at --rate events/s)
through the ingest API. State lives under --data-dir, so a restart continues
where it stopped.`,
		FlagSet:   fs,
		Options:   ffOptions(),
		UsageFunc: usage,
		Exec: func(ctx context.Context, _ []string) error {
			log, err := uf.common.logger()
			if err != nil {
				return err
			}
			roles, err := uf.roles(fs)
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
			up, err := startUp(ctx, uf.kf, roles, *httpAddr, log)
			if err != nil {
				return err
			}
			defer up.close()
			srv := up.srv

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
					token := roles.ingest.AuthToken
					sink := httpSink{c: &ingest.Client{URL: url, Token: token, MaxRetries: 1 << 30}, log: log.With("role", "demo")}
					n, err := runGen(demoCtx, gcfg, sink, g.count, g.rate, g.batch, log)
					log.Info("demo traffic stopped", "events", n)
					if err != nil {
						return fmt.Errorf("demo: %w", err)
					}
					return nil
				})
			}
			log.Info("eddy up", "http", srv.Addr(), "brokers", uf.kf.client.Brokers)
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
