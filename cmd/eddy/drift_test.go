package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eddyrec/eddy/drift"
	"github.com/eddyrec/eddy/features"
	"github.com/eddyrec/eddy/scorer"
	"github.com/eddyrec/eddy/stream/task"
)

func TestDriftFlagsConfig(t *testing.T) {
	yaml := filepath.Join(t.TempDir(), "drift.yaml")
	if err := os.WriteFile(yaml, []byte("window: {size: 2m, sample: 0.5}\nreference_windows: 4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		prefix  string
		args    []string
		check   func(t *testing.T, s driftSettings)
		wantErr bool
	}{
		{"defaults", "", nil, func(t *testing.T, s driftSettings) {
			c := s.Role.Drift
			if c.Window.Sample != defaultDriftSample || time.Duration(c.Window.Size) != 5*time.Minute || c.Window.Events != 0 {
				t.Errorf("window %+v", c.Window)
			}
			if s.Role.Group != "eddy-drift" || s.Role.IdleWindows != 3 || s.Role.Runtime.OnBrokerWiped != task.WipeFail || s.Role.StateOnDisk {
				t.Errorf("role %+v", s.Role)
			}
		}, false},
		{"flags", "", []string{"--window", "1m", "--window-events", "500", "--sample", "1", "--group", "g", "--reset-on-wiped-broker",
			"--webhook-url", "http://127.0.0.1:9/hook", "--state-on-disk"}, func(t *testing.T, s driftSettings) {
			c := s.Role.Drift
			if c.Window.Sample != 1 || time.Duration(c.Window.Size) != time.Minute || c.Window.Events != 500 {
				t.Errorf("window %+v", c.Window)
			}
			if s.Role.Group != "g" || s.Role.Runtime.OnBrokerWiped != task.WipeReset || s.WebhookURL == "" || !s.Role.StateOnDisk {
				t.Errorf("role %+v", s)
			}
		}, false},
		{"config file wins unless flags are set", "", []string{"--drift-config", yaml}, func(t *testing.T, s driftSettings) {
			c := s.Role.Drift
			if c.Window.Sample != 0.5 || time.Duration(c.Window.Size) != 2*time.Minute || c.ReferenceWindows != 4 {
				t.Errorf("config %+v", c)
			}
		}, false},
		{"flag over config file", "", []string{"--drift-config", yaml, "--sample", "0.25", "--window", "30s"}, func(t *testing.T, s driftSettings) {
			if c := s.Role.Drift; c.Window.Sample != 0.25 || time.Duration(c.Window.Size) != 30*time.Second {
				t.Errorf("config %+v", c.Window)
			}
		}, false},
		{"up prefix", "drift-", []string{"--drift-window", "10m", "--drift-sample", "0.1"}, func(t *testing.T, s driftSettings) {
			if c := s.Role.Drift; c.Window.Sample != 0.1 || time.Duration(c.Window.Size) != 10*time.Minute {
				t.Errorf("config %+v", c.Window)
			}
		}, false},
		{"events from process", "", []string{"--events-from", "process"}, func(t *testing.T, s driftSettings) {
			if s.Role.ForwardEvents {
				t.Error("--events-from process: the role still forwards events")
			}
		}, false},
		{"events and lists forwarded by default", "", nil, func(t *testing.T, s driftSettings) {
			if !s.Role.ForwardEvents || !s.Role.ForwardRecs {
				t.Error("eddy drift does not forward events and served lists by default")
			}
		}, false},
		{"recs from serve", "", []string{"--recs-from", "serve"}, func(t *testing.T, s driftSettings) {
			if s.Role.ForwardRecs || !s.Role.ForwardEvents {
				t.Error("--recs-from serve: the role still forwards served lists, or stopped forwarding events")
			}
		}, false},
		{"bad recs-from", "", []string{"--recs-from", "process"}, nil, true},
		{"fetch wait", "", []string{"--fetch-wait", "250ms"}, func(t *testing.T, s driftSettings) {
			if s.Role.FetchWait != 250*time.Millisecond || s.Role.FetchBytes != 1<<20 {
				t.Errorf("fetch wait %v, bytes %d", s.Role.FetchWait, s.Role.FetchBytes)
			}
		}, false},
		{"bad fetch wait", "", []string{"--fetch-wait", "1m"}, nil, true},
		{"bad events-from", "", []string{"--events-from", "kafka"}, nil, true},
		{"bad sample", "", []string{"--sample", "0"}, nil, true},
		{"bad webhook", "", []string{"--webhook-url", "ftp://x"}, nil, true},
		{"missing config", "", []string{"--drift-config", filepath.Join(t.TempDir(), "nope.yaml")}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			var f driftFlags
			f.register(fs, tc.prefix)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			s, err := f.config(fs)
			if tc.wantErr {
				var ue usageError
				if !errors.As(err, &ue) {
					t.Fatalf("err %v, want a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Role.Drift.Validate(); err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
	_ = drift.DefaultConfig
}

// TestNewDriftCommandFlags: the command parses its documented flags.
func TestNewDriftCommandFlags(t *testing.T) {
	cmd := newDriftCommand()
	if err := cmd.Parse([]string{"--window", "1m", "--window-events", "10", "--drift-config", "", "--webhook-url", "", "--group", "x", "--sample", "0.5"}); err != nil {
		t.Fatal(err)
	}
	if cmd.Name != "drift" || cmd.FlagSet.Lookup("http-addr") == nil {
		t.Fatal("drift command lacks its name or flags")
	}
}

// TestUpDriftCopy: `eddy up` feeds the drift role from the process role's
// user stage and the scorer by default — same sample, the drift group's
// input topic, the drift header — and --drift-events-from forward and
// --drift-recs-from forward turn the copies off.
func TestUpDriftCopy(t *testing.T) {
	cases := []struct {
		args                     []string
		wantEvents, wantRecs     float64
		wantInput, wantRecsInput string
	}{
		{nil, defaultDriftSample, defaultDriftSample, "eddy.eddy-drift-input", "eddy.eddy-drift-input"},
		{[]string{"--drift-sample", "0.2", "--drift-group", "g"}, 0.2, 0.2, "eddy.g-input", "eddy.g-input"},
		{[]string{"--drift-events-from", "forward"}, 0, defaultDriftSample, "", "eddy.eddy-drift-input"},
		{[]string{"--drift-recs-from", "forward"}, defaultDriftSample, 0, "eddy.eddy-drift-input", ""},
	}
	for _, tc := range cases {
		fs := flag.NewFlagSet("up", flag.ContinueOnError)
		var uf upFlags
		uf.register(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		r, err := uf.roles(fs)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		fc, sc, rc := r.features, r.scorer, r.drift.Role
		if fc.DriftSample != tc.wantEvents || fc.DriftInput != tc.wantInput || rc.ForwardEvents != (tc.wantEvents == 0) {
			t.Errorf("%v: process copies %v to %q, drift forwards events %v", tc.args, fc.DriftSample, fc.DriftInput, rc.ForwardEvents)
		}
		if sc.DriftSample != tc.wantRecs || sc.DriftInput != tc.wantRecsInput || rc.ForwardRecs != (tc.wantRecs == 0) {
			t.Errorf("%v: scorer copies %v to %q, drift forwards lists %v", tc.args, sc.DriftSample, sc.DriftInput, rc.ForwardRecs)
		}
		if tc.wantEvents > 0 && (fc.DriftHeaderKey != drift.SourceHeader || fc.DriftHeaderValue != "events") {
			t.Errorf("%v: event copies marked %s=%s", tc.args, fc.DriftHeaderKey, fc.DriftHeaderValue)
		}
		if tc.wantRecs > 0 && (sc.DriftHeaderKey != drift.SourceHeader || sc.DriftHeaderValue != "recs") {
			t.Errorf("%v: list copies marked %s=%s", tc.args, sc.DriftHeaderKey, sc.DriftHeaderValue)
		}
		if err := sc.Validate(); err != nil {
			t.Errorf("%v: scorer config: %v", tc.args, err)
		}
	}
	// A copy whose sample differs from the drift role's, or a copy for a
	// role that forwards its own, is refused; for either source.
	rc := drift.DefaultRoleConfig(drift.DefaultConfig())
	rc.ForwardEvents, rc.ForwardRecs = false, false
	rc.Drift.Window.Sample = 0.01
	in := drift.RoleTopics{Input: "in"}
	good := func() (features.Config, scorer.Config) {
		fc, sc := features.DefaultConfig(), scorer.DefaultConfig()
		fc.DriftSample, fc.DriftInput = 0.01, "in"
		sc.DriftSample, sc.DriftInput = 0.01, "in"
		return fc, sc
	}
	if fc, sc := good(); checkDriftCopy(fc, sc, rc, in) != nil {
		t.Errorf("checkDriftCopy refused matching copies: %v", checkDriftCopy(fc, sc, rc, in))
	}
	for name, bad := range map[string]func(*features.Config, *scorer.Config, *drift.RoleConfig){
		"process sample":       func(fc *features.Config, _ *scorer.Config, _ *drift.RoleConfig) { fc.DriftSample = 0.02 },
		"scorer sample":        func(_ *features.Config, sc *scorer.Config, _ *drift.RoleConfig) { sc.DriftSample = 0.02 },
		"scorer input":         func(_ *features.Config, sc *scorer.Config, _ *drift.RoleConfig) { sc.DriftInput = "other" },
		"no scorer copy":       func(_ *features.Config, sc *scorer.Config, _ *drift.RoleConfig) { sc.DriftSample = 0 },
		"events forwarded too": func(_ *features.Config, _ *scorer.Config, rc *drift.RoleConfig) { rc.ForwardEvents = true },
		"lists forwarded too":  func(_ *features.Config, _ *scorer.Config, rc *drift.RoleConfig) { rc.ForwardRecs = true },
	} {
		fc, sc := good()
		r := rc
		bad(&fc, &sc, &r)
		if err := checkDriftCopy(fc, sc, r, in); err == nil {
			t.Errorf("%s: checkDriftCopy accepted it", name)
		}
	}
}
