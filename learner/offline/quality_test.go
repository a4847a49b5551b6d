package offline

import (
	"context"
	"log/slog"
	"testing"

	"github.com/eddyrec/eddy/connectors/movielens"
	"github.com/eddyrec/eddy/connectors/movielens/movielenstest"
	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/trainset"
)

func movieLensSet(t testing.TB, name string) *trainset.Set {
	t.Helper()
	rs, err := movielens.ReadDir(movielenstest.Dir(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return trainset.FromEvents(movielens.Events(rs), learner.DefaultConfidence())
}

// TestQualityTargets asserts the quality targets with seed 1: the
// default hyperparameters for leave-last-out (measured 2.2× popularity on
// ML-100K, 2.5× on latest-small), and for the sampled protocol the point
// `--sweep` picks on a validation split carved from the training part
// (measured 0.72 on ML-100K; the defaults give 0.695). Tuning per
// protocol on validation data is what Rendle et al. and the NCF paper do.
func TestQualityTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPED in -short: dataset-sized (runs in make unit)")
	}
	cases := []struct {
		dataset, protocol string
		minRatio          float64 // iALS HR@10 ≥ minRatio × popularity's
		minHR             float64
		sweep             bool
	}{
		{"ml-100k", LeaveLastOut, 1.5, 0, false},
		{"ml-100k", Sampled, 0, 0.70, true},
		{"ml-latest-small", LeaveLastOut, 1.3, 0, false},
	}
	for _, c := range cases {
		t.Run(c.dataset+"/"+c.protocol, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Protocol = c.protocol
			cfg.Models = []string{IALS, Popularity}
			s := movieLensSet(t, c.dataset)
			var res *Result
			var err error
			if c.sweep {
				var sw *SweepResult
				sw, err = Sweep(context.Background(), s, cfg, DefaultGrid(cfg.IALS), slog.New(slog.DiscardHandler))
				if err == nil {
					res = sw.Test
					t.Logf("sweep picked %+v", sw.Points[sw.Best].Config)
				}
			} else {
				res, err = Run(context.Background(), s, cfg, slog.New(slog.DiscardHandler))
			}
			if err != nil {
				t.Fatal(err)
			}
			ia, pop := res.Model(IALS), res.Model(Popularity)
			t.Logf("ials %+v; popularity %+v", ia.Metrics, pop.Metrics)
			if ia.HR < c.minRatio*pop.HR || ia.HR < c.minHR {
				t.Fatalf("ials HR@10 %.4f, popularity %.4f: want ≥ %.2f× and ≥ %.2f", ia.HR, pop.HR, c.minRatio, c.minHR)
			}
			if ia.Cases < 600 {
				t.Fatalf("only %d test users", ia.Cases)
			}
		})
	}
}

// TestPopularityMatchesScript pins the all-time popularity baseline of
// leave-last-out on ML-100K to the ten-line script (0.094).
func TestPopularityMatchesScript(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Models = []string{Popularity}
	res, err := Run(context.Background(), movieLensSet(t, "ml-100k"), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if hr := res.Model(Popularity).HR; hr < 0.090 || hr > 0.098 {
		t.Fatalf("popularity HR@10 %.4f, the script's 0.094", hr)
	}
}
