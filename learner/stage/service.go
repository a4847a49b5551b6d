package stage

import (
	"context"
	"errors"
	"fmt"
	"github.com/twmb/franz-go/pkg/kgo"
	"log/slog"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/stream/task"
)

// Service runs the learner's stages in one process: the user stage with
// its item replica, and the item stage. Either stage may be left out, so
// that they can also be deployed and scaled apart.
type Service struct {
	cfg          Config
	mf           *learner.MF
	users, items *task.Config
	reg          prometheus.Registerer
	log          *slog.Logger
	m            *metrics

	mu      sync.Mutex
	userRT  *task.Runtime
	itemRT  *task.Runtime
	replica *ItemReplica
	err     error // first fatal error
}

// NewService checks the configuration. users and items are the task
// runtime settings of the two stages (group, store, data dir, client,
// batching); nil leaves that stage out. Their Topic is set from
// cfg.Topics. reg may be nil.
func NewService(cfg Config, users, items *task.Config, reg prometheus.Registerer, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if users == nil && items == nil {
		return nil, errors.New("stage: no stage to run")
	}
	mf, err := learner.NewMF(cfg.MF)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Service{cfg: cfg, mf: mf, reg: reg, log: log.With("component", "learner"), m: newMetrics()}
	if err := s.m.register(reg); err != nil {
		return nil, err
	}
	if users != nil {
		c := *users
		c.Topic = cfg.Topics.Events
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("stage: user stage: %w", err)
		}
		s.users = &c
	}
	if items != nil {
		c := *items
		c.Topic = cfg.Topics.ItemGrads
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("stage: item stage: %w", err)
		}
		s.items = &c
	}
	return s, nil
}

func (s *Service) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

// Run runs the stages until ctx ends (then it returns nil once both have
// committed their batches in flight and left their groups) or one fails
// (then it stops the other and returns the error). The user stage starts
// once the item replica has caught up. A Service runs once.
func (s *Service) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	// The promotions watcher: both stages adopt what the retrain role
	// promotes. Processing starts once it has read the versions topic, so
	// a restarted stage knows the version it must be on.
	var proms *promotions
	var promOpts []kgo.Opt
	if s.cfg.Topics.Versions != "" {
		rc := s.users
		if rc == nil {
			rc = s.items
		}
		opts, err := rc.Client.Opts()
		if err != nil {
			return fmt.Errorf("stage: %w", err)
		}
		if proms, err = newPromotions(s.cfg.Topics.Versions, s.log, opts...); err != nil {
			return err
		}
		defer proms.Close()
		promOpts = opts
		pctx, stopProms := context.WithCancel(gctx)
		var pwg sync.WaitGroup
		pwg.Go(func() { _ = proms.Run(pctx) })
		defer func() { stopProms(); pwg.Wait() }()
		if err := proms.waitCaughtUp(gctx); err != nil {
			return nil
		}
	}
	if s.items != nil {
		rt, err := task.New(*s.items, func(int32) (task.Processor, error) {
			p := newItemProc(&s.cfg, s.mf, s.m, s.log)
			p.proms, p.opts = proms, promOpts
			return p, nil
		}, s.reg, s.log.With("stage", "item"))
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.itemRT = rt
		s.mu.Unlock()
		g.Go(func() error { return s.wrap(ctx, "item stage", rt.Run(gctx)) })
	}
	if s.users != nil {
		opts, err := s.users.Client.Opts()
		if err != nil {
			return fmt.Errorf("stage: %w", err)
		}
		rep, err := NewItemReplica(s.cfg.Topics.ModelItems, s.cfg.MF.Dim, s.log, s.m, opts...)
		if err != nil {
			return err
		}
		defer rep.Close()
		s.mu.Lock()
		s.replica = rep
		s.mu.Unlock()
		rctx, stopReplica := context.WithCancel(gctx)
		var rwg sync.WaitGroup
		rwg.Go(func() {
			if err := rep.Run(rctx); err != nil {
				s.setErr(fmt.Errorf("item replica: %w", err))
			}
		})
		g.Go(func() error {
			defer func() { stopReplica(); rwg.Wait() }()
			select {
			case <-rep.CaughtUp():
			case <-gctx.Done():
				return nil
			}
			rt, err := task.New(*s.users, func(int32) (task.Processor, error) {
				p := newUserProc(&s.cfg, s.mf, rep, s.m, s.log)
				p.proms, p.opts = proms, promOpts
				return p, nil
			}, s.reg, s.log.With("stage", "user"))
			if err != nil {
				return s.wrap(ctx, "user stage", err)
			}
			s.mu.Lock()
			s.userRT = rt
			s.mu.Unlock()
			return s.wrap(ctx, "user stage", rt.Run(gctx))
		})
	}
	return g.Wait()
}

// wrap records a stage's fatal error. A stage interrupted while setting up
// because Run was asked to stop is not one.
func (s *Service) wrap(ctx context.Context, what string, err error) error {
	if err == nil || (ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		return nil
	}
	err = fmt.Errorf("%s: %w", what, err)
	s.setErr(err)
	return err
}

// Ready is a readiness check: nil when every stage runs, has joined its
// group, and is restored and within MaxReadyLag of its source; the user
// stage also needs its item replica caught up.
func (s *Service) Ready(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return fmt.Errorf("learner stopped: %w", s.err)
	}
	var wait []string
	if s.items != nil && (s.itemRT == nil || !s.itemRT.Ready(s.cfg.MaxReadyLag)) {
		wait = append(wait, "item stage catching up")
	}
	if s.users != nil {
		switch {
		case s.replica == nil:
			wait = append(wait, "item replica starting")
		case s.userRT == nil:
			wait = append(wait, "item replica catching up")
		case !s.userRT.Ready(s.cfg.MaxReadyLag):
			wait = append(wait, "user stage catching up")
		}
	}
	if len(wait) > 0 {
		return errors.New(strings.Join(wait, "; "))
	}
	return nil
}
