package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrec/eddy/features"
	"github.com/eddyrec/eddy/internal/httpserver"
	"github.com/eddyrec/eddy/stream"
	"github.com/eddyrec/eddy/stream/task"
)

func newProcessCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy process", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	kf := newKafkaFlags()
	kf.register(fs)
	cfg := features.DefaultConfig()
	cfg.RegisterFlags(fs)
	var pf processFlags
	pf.register(fs, "")
	pf.registerDrift(fs)
	httpAddr := fs.String("http-addr", ":8081", "HTTP listen address")
	drain := fs.Duration("shutdown-timeout", 30*time.Second, "how long SIGTERM waits for in-flight requests")
	return &ffcli.Command{
		Name:       "process",
		ShortUsage: "eddy process [flags]",
		ShortHelp:  "build streaming user and item features from the events topic",
		LongHelp: `Runs the features stages on the partition task runtime (exactly once across
crashes and rebalances; state in Badger under <data-dir>/state, backed by
compacted changelog topics):

  user stage (group --features-user-group, source <prefix>events): drops
    duplicate event_ids, sends invalid records to <prefix>events.dlq, updates
    each user's state, forwards one item update per event to
    <prefix>features.item-updates and publishes user snapshots (at most one
    per user per --snapshot-interval) to <prefix>features.users;
  item stage (group --features-item-group, source
    <prefix>features.item-updates): updates each item's state.

GET /v1/users/{id}/features and GET /v1/items/{id}/features answer with the
committed features of ids held by this instance (404 otherwise);
?at=<RFC 3339 | unix ms> evaluates decayed counts at that time. Run more
instances with the same groups to share the partitions; --instance-id makes
a restart take its partitions back at once.

A runtime failure (e.g. Kafka unreachable for longer than a transaction may
wait) restarts the stages after a pause; a broker whose log was wiped under
the state (new cluster id, or stored offsets beyond the log end) stops the
command with exit code 1 (delete <data-dir>/state to start over), or, with
--reset-on-wiped-broker, drops the state and starts over.

--drift-sample S (0: off) also copies the events of a share S of users,
chosen by a hash of user_id as the drift role chooses them, unchanged, to the
input topic of the drift role with base group --drift-group
(<prefix><group>-input, created here if missing), in the user stage's
transaction: run 'eddy drift --events-from process --sample S' with the same
S and group, and the drift role does not read the whole events topic a
second time.

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
			pf.apply(&cfg)
			if pf.driftSample != 0 {
				setDriftCopy(&cfg, kf, pf.driftSample, pf.driftGroup)
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
			role, err := startProcessRole(ctx, kf, cfg, srv, reg, log)
			if err != nil {
				return err
			}
			defer role.close()
			// A fatal role error (a wiped broker) ends the command with an
			// error instead of serving a role that will not recover.
			sctx, cancel := context.WithCancel(ctx)
			defer cancel()
			go func() {
				select {
				case <-role.fatal:
					cancel()
				case <-sctx.Done():
				}
			}()
			serr := srv.Serve(sctx, *drain)
			if err := role.fatalErr(); err != nil {
				return err
			}
			return serr
		},
	}
}

// processFlags are the process role's runtime flags. In `eddy process`
// they are plain (--instance-id); in `eddy up` they carry a prefix such as
// "process-" (--process-instance-id), as the other stateful roles' do.
type processFlags struct {
	instanceID string
	wipeReset  bool
	// driftSample and driftGroup are `eddy process` only: in `eddy up`
	// the drift role's flags decide them.
	driftSample float64
	driftGroup  string
}

// registerDrift binds the flags of the copy to the drift role's input.
func (f *processFlags) registerDrift(fs *flag.FlagSet) {
	fs.Float64Var(&f.driftSample, "drift-sample", 0, "share of users whose events are copied to the drift role's input topic (0: none; must equal eddy drift --sample, with eddy drift --events-from process)")
	fs.StringVar(&f.driftGroup, "drift-group", "eddy-drift", "base group of the drift role fed by --drift-sample (its input topic is <prefix><group>-input)")
}

func (f *processFlags) register(fs *flag.FlagSet, prefix string) {
	fs.StringVar(&f.instanceID, prefix+"instance-id", "", "static group member id (KIP-345): a restart takes its partitions back at once; unique per process")
	fs.BoolVar(&f.wipeReset, prefix+"reset-on-wiped-broker", false, "drop the local features state when the broker's log was wiped (default: stop with an error)")
}

// apply sets the runtime settings of cfg from the flags.
func (f *processFlags) apply(cfg *features.Config) {
	cfg.Task.InstanceID = f.instanceID
	cfg.Task.OnBrokerWiped = task.WipeFail
	if f.wipeReset {
		cfg.Task.OnBrokerWiped = task.WipeReset
	}
}

// startProcess mounts the process role (features user and item stages) on
// srv and runs it in the background until the returned closer is called
// (after the HTTP server drained). A failure of the stages is logged and
// reported by /readyz; the stages restart after a pause unless the broker
// was wiped under the fail policy (then they stay down, unready).
func startProcess(ctx context.Context, kf *kafkaFlags, cfg features.Config, srv *httpserver.Server, reg prometheus.Registerer, log *slog.Logger) (func(), error) {
	r, err := startProcessRole(ctx, kf, cfg, srv, reg, log)
	if err != nil {
		return nil, err
	}
	return r.close, nil
}

// processRole supervises features.Process instances: one runs at a time;
// when it fails it is replaced by a new one (new runtimes, the same state
// directories) after a growing pause.
type processRole struct {
	log     *slog.Logger
	cur     atomic.Pointer[features.Process]
	lastErr atomic.Pointer[error]
	fatal   chan struct{} // closed when the role gave up (fatalErr says why)
	ferr    error
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func processTopics(kf *kafkaFlags) features.Topics {
	return features.Topics{
		Events:      kf.layout.Name(stream.TopicEvents),
		DLQ:         kf.layout.Name(stream.TopicEventsDLQ),
		ItemUpdates: kf.layout.Name(stream.TopicItemUpdates),
		Users:       kf.layout.Name(stream.TopicUserSnapshots),
	}
}

func startProcessRole(ctx context.Context, kf *kafkaFlags, cfg features.Config, srv *httpserver.Server, reg prometheus.Registerer, log *slog.Logger) (*processRole, error) {
	log = log.With("role", "process")
	dir := filepath.Join(kf.dataDir, "state")
	topics := processTopics(kf)
	if cfg.DriftSample > 0 {
		if err := ensureDriftInput(ctx, kf, cfg.DriftInput, log); err != nil {
			return nil, err
		}
	}
	newProc := func() (*features.Process, error) {
		return features.New(cfg, kf.client, topics, dir, reg, log)
	}
	p, err := newProc()
	if err != nil {
		return nil, err
	}
	r := &processRole{log: log, fatal: make(chan struct{})}
	r.cur.Store(p)
	forward := func(w http.ResponseWriter, req *http.Request) { r.cur.Load().Handler().ServeHTTP(w, req) }
	srv.Mux.HandleFunc("GET /v1/users/{id}/features", forward)
	srv.Mux.HandleFunc("GET /v1/items/{id}/features", forward)
	srv.AddReadiness("process", func(ctx context.Context) error {
		if e := r.lastErr.Load(); e != nil {
			return *e
		}
		return r.cur.Load().Ready(ctx)
	})
	log.Info("process role starting", "state_dir", dir, "user_group", cfg.UserGroup, "item_group", cfg.ItemGroup,
		"events", topics.Events, "snapshot_interval", cfg.SnapshotInterval, "drift_sample", cfg.DriftSample, "drift_input", cfg.DriftInput)

	rctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	r.wg.Go(func() { r.supervise(rctx, p, newProc) })
	return r, nil
}

// supervise runs p, and replaces it after a failure.
func (r *processRole) supervise(ctx context.Context, p *features.Process, newProc func() (*features.Process, error)) {
	pause := time.Second
	for {
		started := time.Now()
		err := p.Run(ctx)
		if ctx.Err() != nil {
			if err != nil {
				r.log.Error("process role stopped with an error", "err", err)
			}
			return
		}
		if err == nil {
			err = errors.New("features stages stopped")
		}
		if errors.Is(err, task.ErrBrokerWiped) {
			r.log.Error("process role stopped: the broker's log does not match the local state (was the broker's data deleted?). "+
				"Not restarting. Delete the state directory, or run with --reset-on-wiped-broker, to start over", "err", err)
			e := fmt.Errorf("process: %w", err)
			r.lastErr.Store(&e)
			r.ferr = e
			close(r.fatal)
			return
		}
		if time.Since(started) > time.Minute {
			pause = time.Second
		}
		e := fmt.Errorf("process: restarting after failure: %w", err)
		r.lastErr.Store(&e)
		r.log.Error("process role failed; restarting the stages", "err", err, "pause", pause)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(pause):
			}
			pause = min(2*pause, 30*time.Second)
			np, nerr := newProc()
			if nerr == nil {
				p = np
				break
			}
			r.log.Error("process role: restart failed", "err", nerr, "pause", pause)
		}
		r.cur.Store(p)
		r.lastErr.Store(nil)
	}
}

// fatalErr is the error that made the role give up, nil while it runs.
func (r *processRole) fatalErr() error {
	select {
	case <-r.fatal:
		return r.ferr
	default:
		return nil
	}
}

// close stops the stages (they commit their last batches) and waits.
func (r *processRole) close() {
	r.cancel()
	r.wg.Wait()
}
