package drifteval

import (
	"context"
	"os"
	"testing"

	"github.com/eddyrec/eddy/drift"
	"github.com/eddyrec/eddy/internal/synth"
)

func run(t *testing.T, seed uint64, windows, at int, kind synth.DriftKind) Result {
	t.Helper()
	sc := synth.DefaultConfig()
	sc.Seed = seed
	res, err := Run(context.Background(), Config{Synth: sc, Drift: drift.DefaultConfig(), Windows: windows, DriftAt: at, Kind: kind}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestShiftsDetected is the acceptance check on the product
// defaults: each synthetic shift crosses a threshold within 2 windows and
// causes exactly one retrain request, with no false alarm before it. The
// run continues 12 windows (an hour) past the shift so that the latch and
// cooldown are exercised.
func TestShiftsDetected(t *testing.T) {
	for _, kind := range []synth.DriftKind{synth.DriftPopularity, synth.DriftTaste, synth.DriftWatchRatio} {
		t.Run(kind.String(), func(t *testing.T) {
			windows := 16
			if testing.Short() {
				windows = 6
			}
			res := run(t, 5, windows, 3, kind)
			if res.DetectedAfterWindows == nil || *res.DetectedAfterWindows > 2 {
				t.Errorf("detected after %v windows, want ≤ 2", res.DetectedAfterWindows)
			}
			if res.FalseAlarms != 0 {
				t.Errorf("%d false alarms", res.FalseAlarms)
			}
			if res.RetrainRequests != 1 {
				t.Errorf("%d retrain requests at %v, want 1", res.RetrainRequests, res.RequestWindows)
			}
			t.Logf("detected after %d by %v; requests at %v", *res.DetectedAfterWindows, res.DetectedSignals, res.RequestWindows)
		})
	}
}

// TestStationaryDay: a day of 5-minute windows of a stationary stream
// raises no alert and no retrain request. A full day takes ~30 s on a
// loaded 2-core machine, so -short runs two hours; EDDY_DRIFT_CALIBRATION=1
// runs the day on several seeds (the calibration recorded in doc.go).
func TestStationaryDay(t *testing.T) {
	windows, seeds := 288, []uint64{21}
	if testing.Short() {
		windows = 24
	}
	if os.Getenv("EDDY_DRIFT_CALIBRATION") == "1" {
		seeds = []uint64{21, 22, 23, 24, 25}
	}
	for _, seed := range seeds {
		res := run(t, seed, windows, 0, synth.DriftNone)
		if res.FalseAlarms != 0 || res.RetrainRequests != 0 {
			t.Errorf("seed %d: %d alarms, %d requests over %d windows", seed, res.FalseAlarms, res.RetrainRequests, windows)
		}
		for name, r := range res.MaxRatio {
			// The margin that makes zero alarms robust, not just lucky.
			if r > 0.8 {
				t.Errorf("seed %d: %s reached %.2f of its threshold", seed, name, r)
			}
		}
		t.Logf("seed %d: max score/threshold %v", seed, res.MaxRatio)
	}
}

func TestRunValidates(t *testing.T) {
	for _, cfg := range []Config{
		{Synth: synth.DefaultConfig(), Drift: drift.DefaultConfig(), Windows: 2, DriftAt: 3, Kind: synth.DriftTaste},
		{Synth: synth.DefaultConfig(), Drift: drift.DefaultConfig(), Windows: 2, DriftAt: 1},
		{Synth: synth.DefaultConfig(), Drift: drift.DefaultConfig(), Windows: 2, Partitions: 4, WindowEvents: 3},
	} {
		if _, err := Run(context.Background(), cfg, nil); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

// TestCountWindows runs the count-based option end to end.
func TestCountWindows(t *testing.T) {
	sc := synth.DefaultConfig()
	res, err := Run(context.Background(), Config{Synth: sc, Drift: drift.DefaultConfig(), Windows: 4, DriftAt: 2,
		Kind: synth.DriftWatchRatio, WindowEvents: 20_000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.DetectedAfterWindows == nil || *res.DetectedAfterWindows > 2 || res.FalseAlarms != 0 {
		t.Errorf("count windows: %+v", res)
	}
}
