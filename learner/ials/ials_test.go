package ials

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// randomMatrix returns a users × items matrix with about density·users·items
// pairs, a tenth of them explicit negatives, and confidences in [1, 3).
func randomMatrix(t testing.TB, users, items int, density float64, seed uint64) *Matrix {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	var es []Entry
	for u := range users {
		for i := range items {
			if rng.Float64() < density {
				label := float32(1)
				if rng.IntN(10) == 0 {
					label = 0
				}
				es = append(es, Entry{Row: int32(u), Col: int32(i), Label: label, Weight: 1 + 2*rng.Float32()})
			}
		}
	}
	m, err := NewMatrix(users, items, es)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNewMatrixMergesAndTransposes(t *testing.T) {
	es := []Entry{
		{Row: 1, Col: 2, Label: 1, Weight: 1},
		{Row: 0, Col: 1, Label: 1, Weight: 2},
		{Row: 1, Col: 2, Label: 0, Weight: 3}, // same pair: conf 4, target 0.25
		{Row: 1, Col: 0, Label: 1, Weight: 0}, // no signal: dropped
		{Row: 0, Col: 2, Label: 1, Weight: 1},
	}
	m, err := NewMatrix(2, 3, es)
	if err != nil {
		t.Fatal(err)
	}
	if m.NNZ() != 3 || m.Merged != 1 {
		t.Fatalf("nnz %d merged %d, want 3 and 1", m.NNZ(), m.Merged)
	}
	u := m.ByUser
	if !slices.Equal(u.Ptr, []int32{0, 2, 3}) || !slices.Equal(u.Idx, []int32{1, 2, 2}) ||
		!slices.Equal(u.Conf, []float32{2, 1, 4}) || !slices.Equal(u.Target, []float32{1, 1, 0.25}) {
		t.Fatalf("by user %+v", u)
	}
	i := m.ByItem
	if !slices.Equal(i.Ptr, []int32{0, 0, 1, 3}) || !slices.Equal(i.Idx, []int32{0, 0, 1}) ||
		!slices.Equal(i.Conf, []float32{2, 1, 4}) || !slices.Equal(i.Target, []float32{1, 1, 0.25}) {
		t.Fatalf("by item %+v", i)
	}
	if err := m.check(); err != nil {
		t.Fatal(err)
	}
}

func TestNewMatrixAllPositiveHasNoTargets(t *testing.T) {
	m, err := NewMatrix(1, 2, []Entry{{0, 0, 1, 1}, {0, 1, 1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if m.ByUser.Target != nil || m.ByItem.Target != nil {
		t.Fatal("targets stored for all-positive data")
	}
}

func TestNewMatrixRejects(t *testing.T) {
	cases := []struct {
		name         string
		users, items int
		es           []Entry
		want         error
	}{
		{"no users", 0, 1, nil, nil},
		{"row out of range", 1, 1, []Entry{{1, 0, 1, 1}}, nil},
		{"negative col", 1, 1, []Entry{{0, -1, 1, 1}}, nil},
		{"label above one", 1, 1, []Entry{{0, 0, 2, 1}}, nil},
		{"nan label", 1, 1, []Entry{{0, 0, float32(math.NaN()), 1}}, nil},
		{"inf weight", 1, 1, []Entry{{0, 0, 1, float32(math.Inf(1))}}, nil},
		{"only negatives", 1, 1, []Entry{{0, 0, 0, 1}}, ErrEmpty},
		{"nothing", 1, 1, nil, ErrEmpty},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewMatrix(c.users, c.items, c.es)
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"dim 0":         func(c *Config) { c.Dim = 0 },
		"dim 1025":      func(c *Config) { c.Dim = 1025 },
		"epochs 0":      func(c *Config) { c.Epochs = 0 },
		"reg 0":         func(c *Config) { c.Reg = 0 },
		"reg nan":       func(c *Config) { c.Reg = math.NaN() },
		"exponent 3":    func(c *Config) { c.RegExponent = 3 },
		"alpha0 neg":    func(c *Config) { c.UnobservedWeight = -1 },
		"alpha0 inf":    func(c *Config) { c.UnobservedWeight = math.Inf(1) },
		"init 0":        func(c *Config) { c.InitScale = 0 },
		"cg 0":          func(c *Config) { c.CGSteps = 0 },
		"threads neg":   func(c *Config) { c.Threads = -1 },
		"threads large": func(c *Config) { c.Threads = 5000 },
	} {
		c := DefaultConfig()
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// exactALS is the independent reference: the same initialisation, then
// each row's normal equations solved directly with gonum (dense Cholesky
// via SolveVec) in float64, with every pair's term built explicitly from
// the loss — no Gramian trick, no CG.
func exactALS(t *testing.T, m *Matrix, cfg Config) *Factors {
	t.Helper()
	tr := &trainer{cfg: cfg, m: m, d: cfg.Dim, k: &gonumKernels, threads: 1}
	f := tr.init()
	d := cfg.Dim
	solveSide := func(x, y []float32, a *CSR, others int) {
		rows := len(x) / d
		for r := range rows {
			A := mat.NewSymDense(d, nil)
			b := mat.NewVecDense(d, nil)
			conf := map[int32]float64{}
			tgt := map[int32]float64{}
			for j := a.Ptr[r]; j < a.Ptr[r+1]; j++ {
				conf[a.Idx[j]] = float64(a.Conf[j])
				tgt[a.Idx[j]] = 1
				if a.Target != nil {
					tgt[a.Idx[j]] = float64(a.Target[j])
				}
			}
			for o := range others {
				w := cfg.UnobservedWeight + conf[int32(o)]
				yo := y[o*d : o*d+d]
				for p := range d {
					b.SetVec(p, b.AtVec(p)+conf[int32(o)]*tgt[int32(o)]*float64(yo[p]))
					for q := p; q < d; q++ {
						A.SetSym(p, q, A.At(p, q)+w*float64(yo[p])*float64(yo[q]))
					}
				}
			}
			lam := cfg.Reg * math.Pow(float64(a.Len(r))+cfg.UnobservedWeight*float64(others), cfg.RegExponent)
			for p := range d {
				A.SetSym(p, p, A.At(p, p)+lam)
			}
			var sol mat.VecDense
			if err := sol.SolveVec(A, b); err != nil {
				t.Fatal(err)
			}
			for p := range d {
				x[r*d+p] = float32(sol.AtVec(p))
			}
		}
	}
	for range cfg.Epochs {
		solveSide(f.Users, f.Items, &m.ByUser, m.Items)
		solveSide(f.Items, f.Users, &m.ByItem, m.Users)
	}
	return f
}

// TestCGMatchesExactALS: with as many CG steps as dimensions, CG solves
// each row's system exactly (in exact arithmetic), so Train must agree
// with the direct solve of the loss's normal equations.
func TestCGMatchesExactALS(t *testing.T) {
	m := randomMatrix(t, 30, 20, 0.2, 1)
	for _, kern := range []string{"gonum", "simd"} {
		t.Run(kern, func(t *testing.T) {
			if kern == "simd" && simdKernels == nil {
				t.Skip("SKIPPED: no SIMD kernels in this build or on this CPU")
			}
			forcePortable = kern == "gonum"
			defer func() { forcePortable = false }()
			cfg := DefaultConfig()
			cfg.Dim, cfg.Epochs, cfg.CGSteps, cfg.Reg, cfg.UnobservedWeight = 8, 3, 24, 0.05, 0.2
			got, _, err := Train(context.Background(), m, cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			want := exactALS(t, m, cfg)
			for _, side := range []struct {
				name      string
				got, want []float32
			}{{"users", got.Users, want.Users}, {"items", got.Items, want.Items}} {
				for j := range side.got {
					if diff := math.Abs(float64(side.got[j] - side.want[j])); diff > 2e-4 {
						t.Fatalf("%s[%d] = %v, exact %v", side.name, j, side.got[j], side.want[j])
					}
				}
			}
		})
	}
}

func TestLossDecreases(t *testing.T) {
	m := randomMatrix(t, 200, 150, 0.05, 2)
	cfg := DefaultConfig()
	cfg.Dim, cfg.Epochs = 16, 10
	var losses []float64
	_, sum, err := Train(context.Background(), m, cfg, Options{Progress: func(s EpochStats) { losses = append(losses, s.Loss) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(losses) != cfg.Epochs || sum.Epochs != cfg.Epochs || sum.Loss != losses[len(losses)-1] {
		t.Fatalf("losses %v summary %+v", losses, sum)
	}
	for e := 1; e < len(losses); e++ {
		if losses[e] > losses[e-1]*(1+1e-5) {
			t.Fatalf("loss rose at epoch %d: %v", e+1, losses)
		}
	}
	if losses[len(losses)-1] > 0.9*losses[0] {
		t.Fatalf("loss barely moved: %v", losses)
	}
}

func TestTrainDeterministicAcrossThreads(t *testing.T) {
	m := randomMatrix(t, 9000, 300, 0.01, 3) // > gramChunk users
	cfg := DefaultConfig()
	cfg.Dim, cfg.Epochs = 16, 3
	var runs []*Factors
	for _, th := range []int{1, 2, 5} {
		cfg.Threads = th
		f, _, err := Train(context.Background(), m, cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, f)
	}
	for _, f := range runs[1:] {
		if !slices.Equal(f.Users, runs[0].Users) || !slices.Equal(f.Items, runs[0].Items) {
			t.Fatal("factors depend on the thread count")
		}
	}
	cfg.Seed = 2
	other, _, _ := Train(context.Background(), m, cfg, Options{})
	if slices.Equal(other.Items, runs[0].Items) {
		t.Fatal("the seed changes nothing")
	}
}

func TestTrainDivergesCleanly(t *testing.T) {
	// Confidences near float32's maximum overflow the first residual.
	m, err := NewMatrix(2, 2, []Entry{{0, 0, 1, 3e38}, {1, 1, 1, 3e38}, {0, 1, 1, 3e38}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Dim = 8
	f, _, err := Train(context.Background(), m, cfg, Options{})
	if !errors.Is(err, ErrNotFinite) || f != nil {
		t.Fatalf("Train = %v, %v; want no factors and ErrNotFinite", f, err)
	}
}

func TestTrainCancelled(t *testing.T) {
	m := randomMatrix(t, 100, 50, 0.1, 4)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Train(ctx, m, DefaultConfig(), Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Train = %v, want context.Canceled", err)
	}
}

func TestTrainRejectsCorruptMatrix(t *testing.T) {
	m := randomMatrix(t, 10, 10, 0.3, 5)
	m.ByItem.Idx[0] = 99
	if _, _, err := Train(context.Background(), m, DefaultConfig(), Options{}); err == nil {
		t.Fatal("a matrix with an index out of range trained")
	}
	if _, _, err := Train(context.Background(), randomMatrix(t, 3, 3, 1, 1), Config{}, Options{}); err == nil {
		t.Fatal("a zero Config trained")
	}
}

// TestKernelsAgree checks every SIMD kernel against the portable one on
// random data for the dimensions the product uses.
func TestKernelsAgree(t *testing.T) {
	if simdKernels == nil {
		t.Skip("SKIPPED: no SIMD kernels in this build or on this CPU (GOEXPERIMENT=simd on amd64 with AVX2)")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	vec := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = rng.Float32()*2 - 1
		}
		return v
	}
	near := func(a, b []float32, tol float32) bool {
		for i := range a {
			if d := a[i] - b[i]; d > tol || d < -tol {
				return false
			}
		}
		return true
	}
	for _, d := range []int{8, 16, 24, 32, 64, 96, 128} {
		y := vec(50 * d)
		idx := []int32{3, 0, 49, 7, 7, 20}
		conf, target := vec(len(idx)), vec(len(idx))
		v := vec(d)
		for _, residual := range []bool{false, true} {
			for _, tg := range [][]float32{nil, target} {
				a, b := vec(d), make([]float32, d)
				copy(b, a)
				gonumKernels.gather(y, d, idx, conf, tg, v, a, residual)
				simdKernels.gather(y, d, idx, conf, tg, v, b, residual)
				if !near(a, b, 1e-4) {
					t.Fatalf("gather d=%d residual=%v", d, residual)
				}
			}
		}
		simdKernels.gather(y, d, nil, nil, nil, v, make([]float32, d), false) // no entries
		g := make([]float32, d*d)
		gonumKernels.gramAdd(y[:7*d], d, g)
		a, b := make([]float32, d), make([]float32, d)
		gonumKernels.symv(g, d, v, a)
		simdKernels.symv(g, d, v, b)
		if !near(a, b, 1e-4) {
			t.Fatalf("symv d=%d", d)
		}
		g2 := make([]float32, d*d)
		simdKernels.gramAdd(y[:7*d], d, g2)
		if !near(g, g2, 1e-4) {
			t.Fatalf("gramAdd d=%d", d)
		}
		if x, z := gonumKernels.dot(y[:d], v), simdKernels.dot(y[:d], v); math.Abs(float64(x-z)) > 1e-4 {
			t.Fatalf("dot d=%d: %v vs %v", d, x, z)
		}
	}
}
