package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eddyrec/eddy/drift/drifteval"
)

func TestEvalDriftCommand(t *testing.T) {
	reports := filepath.Join(t.TempDir(), "reports.ndjson")
	args := []string{"--synthetic", "--windows=3", "--drift-at=2", "--kind=watch-ratio", "--seed=3", "--json"}
	cfg, err := evalDriftConfigFromArgs(t, args)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := runEvalDrift(context.Background(), cfg, reports, true, &out); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Detected        *int `json:"detected_after_windows"`
		FalseAlarms     int  `json:"false_alarms"`
		Windows         int  `json:"windows"`
		RetrainRequests int  `json:"retrain_requests"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out.Bytes())
	}
	if res.Detected == nil || *res.Detected != 1 || res.FalseAlarms != 0 || res.Windows != 3 {
		t.Errorf("result %s", out.Bytes())
	}
	data, err := os.ReadFile(reports)
	if err != nil {
		t.Fatal(err)
	}
	// 12 reference windows + 3 judged, one report line each.
	if n := strings.Count(string(data), "\n"); n != 15 {
		t.Errorf("%d report lines, want 15", n)
	}
}

func TestEvalDriftFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{}, // --synthetic missing
		{"--synthetic", "--kind=nope", "--drift-at=1"},
		{"--synthetic", "--windows=2", "--drift-at=3"},
		{"--synthetic", "--window=1ms"},
	} {
		if _, err := evalDriftConfigFromArgs(t, args); err == nil {
			t.Errorf("%v: no error", args)
		} else if _, ok := err.(usageError); !ok {
			t.Errorf("%v: %v is not a usage error", args, err)
		}
	}
}

func evalDriftConfigFromArgs(t *testing.T, args []string) (cfgOut drifteval.Config, err error) {
	t.Helper()
	fs := flag.NewFlagSet("eddy eval drift", flag.ContinueOnError)
	var f evalDriftFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return f.config(fs)
}
