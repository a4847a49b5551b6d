package ranker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/stream/task"
)

// Service runs the online ranker's four stages in one process:
//
//	<prefix>events ─▶ [forward: events with a request_id] ─┐
//	                                                      ├─▶ <prefix>ranker.input (key = user_id)
//	<prefix>recs ───▶ [forward: served lists] ─────────────┘
//	<prefix>ranker.input ─▶ [joiner, per partition] ─▶ <prefix>ranker.examples (1 partition)
//	<prefix>ranker.examples ─▶ [trainer: FTRL] ─▶ <prefix>model.ranker (compacted)
//
// Every stage is a consumer group on the task runtime (groups
// <group>-events, <group>-recs, <group>-join, <group>-train), so more
// processes share the forwarders' and the joiner's partitions; the trainer
// is one task.
type Service struct {
	cfg   Config
	rt    task.Config
	group string
	reg   prometheus.Registerer
	log   *slog.Logger
	m     *metrics

	// unpublished is the trainer's count of examples not yet published
	// (when this process owns the trainer task); the ticker reads it.
	unpublished atomic.Int64

	mu       sync.Mutex
	runtimes []*task.Runtime
	err      error
}

// NewService checks cfg. rt is the template of the stages' runtimes
// (Client, DataDir, timeouts, batching, wipe policy, InstanceID); Group,
// Store and Topic are set per stage. group is the base consumer group
// (e.g. "eddy-ranker"). reg may be nil.
func NewService(cfg Config, rt task.Config, group string, reg prometheus.Registerer, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if group == "" {
		return nil, errors.New("ranker: group is required")
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Service{cfg: cfg, rt: rt, group: group, reg: reg, log: log.With("component", "ranker"), m: newMetrics()}
	if err := s.m.register(reg); err != nil {
		return nil, err
	}
	return s, nil
}

// requestIDField is what an event with a request id contains: the events
// forwarder keeps only those (a byte scan, no decode; a false positive,
// such as the text in a context value, is a harmless extra copy).
var requestIDField = []byte(`"request_id"`)

type stageSpec struct {
	name, topic string
	factory     task.ProcessorFactory
	small       bool
}

func (s *Service) stages() []stageSpec {
	t := s.cfg.Topics
	dec := event.DecodeOptions{Now: func() time.Time { return farFuture }}
	return []stageSpec{
		{"events", t.Events, func(int32) (task.Processor, error) {
			return task.NewForwarder(task.ForwardConfig{
				To: t.Input, Header: kgo.RecordHeader{Key: SourceHeader, Value: []byte(SourceEvents)}, Sample: 1,
				Keep: func(v []byte) bool { return bytes.Contains(v, requestIDField) },
				KeyOf: func(v []byte) ([]byte, bool) {
					e, err := event.Decode(v, dec)
					return []byte(e.UserID), err == nil
				},
			}), nil
		}, true},
		{"recs", t.Recs, func(int32) (task.Processor, error) {
			var d servedListDecoder
			return task.NewForwarder(task.ForwardConfig{
				To: t.Input, Header: kgo.RecordHeader{Key: SourceHeader, Value: []byte(SourceRecs)}, Sample: 1,
				KeyOf: func(v []byte) ([]byte, bool) {
					l, err := decodeServedList(&d, v)
					return []byte(l.UserID), err == nil
				},
			}), nil
		}, true},
		{"join", t.Input, func(int32) (task.Processor, error) {
			return newJoinProc(&s.cfg, s.m, s.log), nil
		}, false},
		{"train", t.Examples, func(int32) (task.Processor, error) {
			return newTrainProc(&s.cfg, s.m, s.log, &s.unpublished), nil
		}, false},
	}
}

// Run runs the stages until ctx ends (nil, once every stage committed its
// batch in flight and left its group) or one fails (its error; the others
// are stopped). A Service runs once.
func (s *Service) Run(ctx context.Context) error {
	specs := s.stages()
	var rts []*task.Runtime
	for _, st := range specs {
		c := s.rt
		c.Group, c.Store, c.Topic = s.group+"-"+st.name, "state", st.topic
		if c.InstanceID != "" {
			c.InstanceID += "-ranker-" + st.name
		}
		if st.small {
			// Stateless copies: the only state is the source offset, so
			// it lives in memory, restored from the changelog's
			// checkpoints at start, and no idle Badger store runs its
			// compactors (see task.Config.InMemory).
			c.InMemory = true
		}
		rt, err := task.New(c, st.factory, s.reg, s.log.With("stage", st.name))
		if err != nil {
			done, cancel := context.WithCancel(ctx)
			cancel()
			for _, o := range rts {
				_ = o.Run(done) // closes the stores opened so far
			}
			err = fmt.Errorf("ranker: %s stage: %w", st.name, err)
			s.setErr(err)
			return err
		}
		rts = append(rts, rt)
	}
	s.mu.Lock()
	s.runtimes = rts
	s.mu.Unlock()
	s.log.Info("ranker starting", "features", s.cfg.Features, "label_window", s.cfg.LabelWindow,
		"publish_every", s.cfg.PublishEvery, "publish_interval", s.cfg.PublishInterval)
	g, gctx := errgroup.WithContext(ctx)
	for i, rt := range rts {
		name := specs[i].name
		g.Go(func() error {
			if err := rt.Run(gctx); err != nil && !(ctx.Err() != nil && errors.Is(err, context.Canceled)) {
				err = fmt.Errorf("ranker: %s stage: %w", name, err)
				s.setErr(err)
				return err
			}
			return nil
		})
	}
	g.Go(func() error { s.tick(gctx); return nil })
	return g.Wait()
}

// tick produces a tick record to the examples topic when the trainer (if
// this process owns it) holds examples it has not published for a
// PublishInterval: the runtime calls a processor only with records, and
// without a prompt the last examples of a quiet period would stay
// unpublished until traffic resumed. Ticks change no state.
func (s *Service) tick(ctx context.Context) {
	var cl *kgo.Client
	defer func() {
		if cl != nil {
			cl.Close()
		}
	}()
	tk := time.NewTicker(s.cfg.PublishInterval)
	defer tk.Stop()
	last := int64(-1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		n := s.unpublished.Load()
		if n == 0 || n != last {
			// Nothing held, or the trainer is still learning (its own
			// batches publish when due).
			last = n
			continue
		}
		if cl == nil {
			c, err := s.rt.Client.NewClient()
			if err != nil {
				s.log.Warn("ranker ticker: no client", "err", err)
				continue
			}
			cl = c
		}
		rec := &kgo.Record{Topic: s.cfg.Topics.Examples, Key: []byte(s.cfg.Name), Value: []byte{},
			Headers: []kgo.RecordHeader{{Key: TickHeader, Value: []byte{1}}}}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := cl.ProduceSync(pctx, rec).FirstErr(); err != nil && ctx.Err() == nil {
			s.log.Warn("ranker ticker: produce", "err", err)
		}
		cancel()
		last = -1
	}
}

func (s *Service) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

// Ready is a readiness check: nil when every stage runs, has joined its
// group and is within MaxReadyLag of its source.
func (s *Service) Ready(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return fmt.Errorf("ranker stopped: %w", s.err)
	}
	if len(s.runtimes) == 0 {
		return errors.New("ranker starting")
	}
	var wait []string
	for i, rt := range s.runtimes {
		if !rt.Ready(s.cfg.MaxReadyLag) {
			wait = append(wait, "ranker "+[]string{"events", "recs", "join", "train"}[i]+" stage catching up")
		}
	}
	if len(wait) > 0 {
		return errors.New(strings.Join(wait, "; "))
	}
	return nil
}
