package abtest

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestExperimentJoin(t *testing.T) {
	e := New()
	abc := []string{"a", "b", "c"}
	for _, l := range []struct {
		req, variant string
		fallback     bool
		items        []string
		want         bool
	}{
		{"r1", "ctl", false, abc, true},
		{"r2", "ctl", true, []string{"x", "y"}, true},
		{"r3", "pop", false, abc, true},
		{"r4", "pop", false, nil, true},
		{"r1", "pop", false, abc, false}, // a retried record
		{"r5", "", false, []string{"a"}, true},
	} {
		if got := e.AddList(l.req, l.variant, l.fallback, l.items); got != l.want {
			t.Fatalf("AddList(%s) = %v", l.req, got)
		}
	}
	for _, c := range []struct {
		g    Engagement
		want Outcome
	}{
		{Engagement{"e1", "r1", "a", Click, 0}, Counted},
		{Engagement{"e1", "r1", "a", Click, 0}, DuplicateEvent},
		{Engagement{"e2", "r1", "a", Click, 0}, RepeatClick},
		{Engagement{"e3", "r1", "b", Click, 0}, Counted},
		{Engagement{"e4", "r1", "b", Watch, 30}, Counted},
		{Engagement{"e5", "r1", "b", Watch, 12.5}, Counted},
		{Engagement{"e5", "r1", "b", Watch, 12.5}, DuplicateEvent},
		{Engagement{"e6", "r1", "z", Click, 0}, UnknownItem},
		{Engagement{"e7", "nope", "a", Click, 0}, UnknownRequest},
		{Engagement{"e8", "r2", "y", Click, 0}, Counted},
		{Engagement{"e9", "r3", "c", Watch, 100}, Counted},
		{Engagement{"e10", "r3", "c", Watch, math.NaN()}, Counted}, // adds nothing
		{Engagement{"", "r3", "a", Click, 0}, Counted},             // no event id: no de-duplication
		{Engagement{"", "r3", "a", Click, 0}, RepeatClick},
	} {
		if got := e.AddEngagement(c.g); got != c.want {
			t.Fatalf("AddEngagement(%+v) = %v, want %v", c.g, got, c.want)
		}
	}
	o := e.Outcomes()
	if o["counted"] != 8 || o["duplicate_event"] != 2 || o["repeat_click"] != 2 || o["unknown_item"] != 1 || o["unknown_request"] != 1 || o["duplicate_list"] != 1 {
		t.Fatalf("outcomes %v", o)
	}
	r, err := e.Report("ctl")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(r.Order, ",") != "ctl,default,pop" || r.Control != "ctl" {
		t.Fatalf("order %v control %s", r.Order, r.Control)
	}
	ctl, pop, def := r.Variants["ctl"], r.Variants["pop"], r.Variants["default"]
	if ctl.Lists != 2 || ctl.FallbackLists != 1 || ctl.Impressions != 5 || ctl.Clicks != 3 || ctl.WatchSeconds != 42.5 || ctl.CTR != 0.6 || ctl.VsControl != nil {
		t.Fatalf("ctl %+v", ctl)
	}
	if pop.Lists != 2 || pop.Impressions != 3 || pop.Clicks != 1 || pop.WatchSeconds != 100 || pop.VsControl == nil || pop.WatchCI != nil {
		t.Fatalf("pop %+v (one list with impressions: no watch interval)", pop)
	}
	if def.Lists != 1 || def.Impressions != 1 || def.Clicks != 0 {
		t.Fatalf("default %+v", def)
	}
	lo, hi := Wilson(3, 5, Z95)
	if *ctl.CTRCI != [2]float64{lo, hi} || ctl.WatchPerImpression != 8.5 || ctl.WatchCI == nil {
		t.Fatalf("ctl intervals %+v", ctl)
	}
	z, p := TwoProportionZ(1, 3, 3, 5)
	if c := pop.VsControl; c.Z != z || c.P != p || c.CTRDiff != 1.0/3-0.6 {
		t.Fatalf("pop vs ctl %+v", c)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{`"control":"ctl"`, `"variants":{"ctl":{"lists":2,`, `"ctr_ci":[`, `"watch_sec_per_impression":`, `"watch_ci":null`, `"vs_control":{"ctr_diff":`} {
		if !strings.Contains(string(b), part) {
			t.Errorf("JSON %s lacks %s", b, part)
		}
	}
	if r, _ := e.Report(""); r.Control != "ctl" {
		t.Fatalf("default control %q, want the first by name", r.Control)
	}
	if _, err := e.Report("treatment"); err == nil || !strings.Contains(err.Error(), "treatment") {
		t.Fatalf("unknown control: %v", err)
	}
}

func TestEmptyExperiment(t *testing.T) {
	r, err := New().Report("anything")
	if err != nil || len(r.Variants) != 0 {
		t.Fatalf("%+v %v", r, err)
	}
	if got := New().AddEngagement(Engagement{RequestID: "r", ItemID: "a", Kind: Click}); got != UnknownRequest {
		t.Fatal(got)
	}
}
