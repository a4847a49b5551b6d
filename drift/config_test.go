package drift

import (
	"strings"
	"testing"
	"time"
)

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := ParseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(cfg.Window.Size) != 5*time.Minute || cfg.Trigger.Consecutive != 3 ||
		time.Duration(cfg.Trigger.Cooldown) != 6*time.Hour || len(cfg.Signals) != len(DefaultSignals()) {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	for _, s := range cfg.Signals {
		if s.Kind == 0 || s.Method == MethodAuto || s.Threshold == 0 || s.MinSamples == 0 {
			t.Errorf("signal %s not completed by Validate: %+v", s.Name, s)
		}
	}
	cfg, err = ParseConfig([]byte(`
window: {size: 1m}
trigger: {consecutive: 2, cooldown: 1h}
signals:
  - {name: wr, source: events, field: watch_ratio, method: ks, threshold: 0.01}
  - {name: dev, source: events, field: context.device}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Signals) != 2 || cfg.Signals[0].Method != MethodKS || cfg.Signals[1].Kind != SignalCategorical ||
		cfg.Signals[1].Method != MethodJS || cfg.Trigger.DailyMax != 4 {
		t.Errorf("parsed %+v", cfg)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"windw: {size: 1m}", "field windw not found"},
		{"window: {size: 10ms}", "window.size = 10ms: must be between 1s and 24h"},
		{"window: {size: fast}", "time: invalid duration"},
		{"trigger: {consecutive: 0}", "trigger.consecutive = 0"},
		{"signals: [{name: a, source: logs, field: x}]", "unknown source"},
		{"signals: [{name: a, source: events, field: nope}]", `signals[0] (a).field = events/"nope": unknown field (events has type, watch_ratio`},
		{"signals: [{name: a, source: events, field: type, method: ks}]", "signals[0] (a).method = ks: does not apply to categorical signals"},
		{"signals: [{name: a, source: events, field: type, kind: numeric}]", "field type is categorical"},
		{"signals: [{name: A B, source: events, field: type}]", "must be 1–64 bytes"},
		{"signals: [{name: a, source: events, field: type}, {name: a, source: events, field: watch_ratio}]", "duplicate signal name"},
		{"signals: [{name: a, source: events, field: watch_ratio, method: ks, threshold: 2}]", "must be > 0 (and < 1 for tests)"},
		{"signals: [{name: a, source: events, field: context.}]", "unknown field"},
		{"signals: [{name: a, source: recs, field: item_rank, method: ztest}]", "does not apply to rank signals"},
	}
	for _, tc := range tests {
		_, err := ParseConfig([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.yaml, err, tc.want)
		}
	}
}

func TestServedListJSON(t *testing.T) {
	in := `{"request_id":"r1","user_id":"u1","model_version":"v3","variant":"b","fallback":true,"ts":1735689600123,"items":[{"item_id":"i1","position":0,"score":1.5,"features":{"mf_score":1.5}}]}`
	l, err := DecodeServedList([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if l.Time.UnixMilli() != 1735689600123 || !l.Fallback || l.Items[0].Features[0] != (Feature{Name: "mf_score", Value: 1.5}) {
		t.Errorf("decoded %+v", l)
	}
	out, _ := l.MarshalJSON()
	if string(out) != in {
		t.Errorf("re-encoded\n%s\nwant\n%s", out, in)
	}
	for _, bad := range []string{
		`{"user_id":"u1","ts":1,"items":[]}`,
		`{"request_id":"r","user_id":"u1","items":[]}`,
		`{"request_id":"r","user_id":"u1","ts":1,"items":[{"item_id":""}]}`,
		`{"request_id":"r","user_id":"u1","ts":"yesterday"}`,
		`[]`,
	} {
		if _, err := DecodeServedList([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
