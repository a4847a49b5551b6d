package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"testing"
	"time"
)

// TestBenchFreshnessSmall runs `eddy bench freshness --json` briefly: the
// whole of `eddy up` in this process, a few samples under light background
// traffic. Every sample must complete, and the JSON must carry the figures
// BENCHMARKS.md quotes.
func TestBenchFreshnessSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs eddy up in-process; skipped in -short")
	}
	const samples = 8
	args := []string{"--samples", "8", "--warmup-events", "500", "--background-rate", "100",
		"--partitions", "2", "--max-gap", "5ms", "--sample-timeout", "30s", "--duration", "2m",
		"--log-level", "error", "--json"}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	out := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); out <- b }()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	runErr := newBenchFreshnessCommand().ParseAndRun(ctx, args)
	os.Stdout = stdout
	w.Close()
	got := <-out
	if runErr != nil {
		t.Fatalf("bench freshness: %v\noutput: %s", runErr, got)
	}

	var fields map[string]any
	if err := json.Unmarshal(got, &fields); err != nil {
		t.Fatalf("output is not one JSON object: %v: %s", err, got)
	}
	for _, k := range []string{"p50_ms", "p95_ms", "p99_ms", "max_ms", "samples", "timeouts", "partitions", "background_rate", "user_stage_commit_p99_ms"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, got)
		}
	}
	var res FreshnessBenchResult
	dec := json.NewDecoder(bytes.NewReader(got))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		t.Fatal(err)
	}
	if res.Samples != samples || res.Timeouts != 0 {
		t.Fatalf("%d samples completed and %d timed out, want %d and 0: %s", res.Samples, res.Timeouts, samples, got)
	}
	if !(res.P50Ms > 0 && res.P50Ms <= res.P95Ms && res.P95Ms <= res.P99Ms && res.P99Ms <= res.MaxMs) {
		t.Fatalf("percentiles out of order: %s", got)
	}
	if res.Partitions != 2 || res.BackgroundRate != 100 || res.UserStageBatches == 0 || res.CPUs < 1 {
		t.Fatalf("result does not describe the run: %s", got)
	}
	t.Logf("%s", bytes.TrimSpace(got))
}
