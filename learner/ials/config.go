package ials

import (
	"fmt"
	"math"
	"runtime"
)

// Config holds iALS's hyperparameters, named as in Rendle et al. (2022).
// Fill it with DefaultConfig and check it with Validate. Its JSON form is
// how reports, exports and model snapshots record a run's settings.
type Config struct {
	// Dim is the number of latent factors, 1–1024 (modelrec's bound); the
	// online model uses 32–128, and a model meant to be promoted into the
	// live stages must match it. Default 64.
	Dim int `json:"dim"`
	// Epochs is the number of alternations (users, then items). Default 16.
	Epochs int `json:"epochs"`
	// Reg is λ, the L2 penalty, scaled per row by (count + α₀·N)^ν.
	// Default 0.003.
	Reg float64 `json:"reg"`
	// RegExponent is ν: 1 scales a row's penalty with its number of
	// observations plus its share of the unobserved weight, 0 is plain λ.
	// Default 1.
	RegExponent float64 `json:"reg_exponent"`
	// UnobservedWeight is α₀, the weight of the every-pair term that pushes
	// all scores towards zero. Default 1.
	UnobservedWeight float64 `json:"unobserved_weight"`
	// InitScale is σ: rows start from N(0, σ²/Dim). Default 0.1.
	InitScale float64 `json:"init_scale"`
	// CGSteps is the number of conjugate-gradient steps per row and epoch.
	// Default 3.
	CGSteps int `json:"cg_steps"`
	// Threads is the number of goroutines solving rows; 0 means
	// GOMAXPROCS. The result does not depend on it.
	Threads int `json:"threads,omitempty"`
	// Seed makes the initialisation reproducible.
	Seed uint64 `json:"seed"`
}

// DefaultConfig returns the defaults documented on Config's fields, chosen
// with `eddy eval offline --sweep` on MovieLens 100K (see BENCHMARKS.md).
func DefaultConfig() Config {
	return Config{
		Dim:              64,
		Epochs:           16,
		Reg:              0.003,
		RegExponent:      1,
		UnobservedWeight: 1,
		InitScale:        0.1,
		CGSteps:          3,
		Seed:             1,
	}
}

// Validate reports the first hyperparameter out of range.
func (c Config) Validate() error {
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case c.Dim < 1 || c.Dim > 1024:
		return fmt.Errorf("ials: dim %d: want 1–1024", c.Dim)
	case c.Epochs < 1 || c.Epochs > 1000:
		return fmt.Errorf("ials: epochs %d: want 1–1000", c.Epochs)
	case !finite(c.Reg) || c.Reg <= 0 || c.Reg > 1e3:
		return fmt.Errorf("ials: reg %v: want (0, 1000]", c.Reg)
	case !finite(c.RegExponent) || c.RegExponent < 0 || c.RegExponent > 2:
		return fmt.Errorf("ials: reg exponent %v: want [0, 2]", c.RegExponent)
	case !finite(c.UnobservedWeight) || c.UnobservedWeight < 0 || c.UnobservedWeight > 1e3:
		return fmt.Errorf("ials: unobserved weight %v: want [0, 1000]", c.UnobservedWeight)
	case !finite(c.InitScale) || c.InitScale <= 0 || c.InitScale > 10:
		return fmt.Errorf("ials: init scale %v: want (0, 10]", c.InitScale)
	case c.CGSteps < 1 || c.CGSteps > 64:
		return fmt.Errorf("ials: cg steps %d: want 1–64", c.CGSteps)
	case c.Threads < 0 || c.Threads > 1024:
		return fmt.Errorf("ials: threads %d: want 0 (GOMAXPROCS) to 1024", c.Threads)
	}
	return nil
}

func (c Config) threads() int {
	if c.Threads > 0 {
		return c.Threads
	}
	return runtime.GOMAXPROCS(0)
}
