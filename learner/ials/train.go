package ials

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Factors are a trained model: row u of Users (Dim float32s from u·Dim)
// is user u's vector, row i of Items item i's.
type Factors struct {
	Dim          int
	Users, Items []float32
}

// User returns user u's row.
func (f *Factors) User(u int) []float32 { return f.Users[u*f.Dim : u*f.Dim+f.Dim] }

// Item returns item i's row.
func (f *Factors) Item(i int) []float32 { return f.Items[i*f.Dim : i*f.Dim+f.Dim] }

// NumUsers returns the number of user rows.
func (f *Factors) NumUsers() int { return len(f.Users) / f.Dim }

// NumItems returns the number of item rows.
func (f *Factors) NumItems() int { return len(f.Items) / f.Dim }

// Scores writes user u's score for every item into dst (reusing its
// storage) and returns it.
func (f *Factors) Scores(u int, dst []float32) []float32 {
	n := f.NumItems()
	if cap(dst) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	k := kernelsFor(f.Dim)
	uv := f.User(u)
	for i := range dst {
		dst[i] = k.dot(uv, f.Items[i*f.Dim:i*f.Dim+f.Dim])
	}
	return dst
}

// Bytes returns the memory the factors hold.
func (f *Factors) Bytes() int64 { return 4 * int64(len(f.Users)+len(f.Items)) }

// EpochStats describes one finished epoch.
type EpochStats struct {
	Epoch, Epochs int
	// Loss is L (see the package documentation) divided by the number of
	// observed pairs, so that runs on data of different sizes compare.
	Loss float64
	// Seconds is the epoch's wall time, without Validate's.
	Seconds float64
	// Validation is what Options.Validate returned, NaN without it.
	Validation float64
}

// Options are Train's callbacks, both optional.
type Options struct {
	// Progress is called after every epoch.
	Progress func(EpochStats)
	// Validate measures the factors after every epoch (for example HR@10
	// on a validation split); its time is not counted in the epoch's.
	Validate func(*Factors) float64
}

// Summary describes a finished run.
type Summary struct {
	Users, Items, Pairs int
	Epochs              int
	Seconds             float64
	Loss                float64 // of the last epoch, per observed pair
	Kernel              string
	Threads             int
	// MatrixBytes and FactorBytes are the memory the training data and
	// the model hold.
	MatrixBytes, FactorBytes int64
}

// ErrNotFinite is returned when training diverges: a factor or the loss
// became NaN or infinite. Train returns no factors with it.
var ErrNotFinite = errors.New("ials: training diverged (a factor or the loss is not finite); lower the unobserved weight or raise the regularisation")

// gramChunk is the number of rows per partial Gramian. It is fixed, not
// derived from the thread count, so that the float sums (and hence the
// model) are the same whatever the number of threads.
const gramChunk = 4096

// Train runs cfg.Epochs epochs of iALS on m and returns the factors. It
// stops early with ctx's error when ctx is cancelled, and with
// ErrNotFinite (and no factors) when the run diverges.
func Train(ctx context.Context, m *Matrix, cfg Config, opt Options) (*Factors, Summary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, Summary{}, err
	}
	if err := m.check(); err != nil {
		return nil, Summary{}, err
	}
	t := &trainer{cfg: cfg, m: m, d: cfg.Dim, k: kernelsFor(cfg.Dim), threads: cfg.threads()}
	f := t.init()
	sum := Summary{Users: m.Users, Items: m.Items, Pairs: m.NNZ(), Kernel: t.k.name, Threads: t.threads,
		MatrixBytes: m.Bytes(), FactorBytes: f.Bytes()}
	start := time.Now()
	gItems, err := t.gramian(ctx, f.Items)
	if err != nil {
		return nil, sum, err
	}
	for e := 1; e <= cfg.Epochs; e++ {
		t0 := time.Now()
		if err := t.solve(ctx, f.Users, f.Items, &m.ByUser, gItems, m.Items); err != nil {
			return nil, sum, err
		}
		gUsers, err := t.gramian(ctx, f.Users)
		if err != nil {
			return nil, sum, err
		}
		if err := t.solve(ctx, f.Items, f.Users, &m.ByItem, gUsers, m.Users); err != nil {
			return nil, sum, err
		}
		if gItems, err = t.gramian(ctx, f.Items); err != nil {
			return nil, sum, err
		}
		loss, err := t.loss(ctx, f, gUsers, gItems)
		if err != nil {
			return nil, sum, err
		}
		st := EpochStats{Epoch: e, Epochs: cfg.Epochs, Loss: loss, Seconds: time.Since(t0).Seconds(), Validation: math.NaN()}
		sum.Epochs, sum.Loss = e, loss
		if opt.Validate != nil {
			st.Validation = opt.Validate(f)
		}
		if opt.Progress != nil {
			opt.Progress(st)
		}
	}
	sum.Seconds = time.Since(start).Seconds()
	return f, sum, nil
}

// check verifies the invariants the kernels rely on (they index without
// bounds checks in SIMD builds), so a hand-built Matrix cannot corrupt
// memory.
func (m *Matrix) check() error {
	if m == nil || m.Users < 1 || m.Items < 1 {
		return errors.New("ials: empty matrix")
	}
	if err := m.ByUser.check(m.Users, m.Items); err != nil {
		return fmt.Errorf("ials: matrix by user: %w", err)
	}
	if err := m.ByItem.check(m.Items, m.Users); err != nil {
		return fmt.Errorf("ials: matrix by item: %w", err)
	}
	if len(m.ByUser.Idx) != len(m.ByItem.Idx) {
		return errors.New("ials: the two orientations hold different numbers of pairs")
	}
	return nil
}

func (c *CSR) check(rows, cols int) error {
	if len(c.Ptr) != rows+1 || c.Ptr[0] != 0 || int(c.Ptr[rows]) != len(c.Idx) {
		return errors.New("row pointers do not span the entries")
	}
	if len(c.Conf) != len(c.Idx) || (c.Target != nil && len(c.Target) != len(c.Idx)) {
		return errors.New("confidences or targets do not match the entries")
	}
	for r := range rows {
		if c.Ptr[r+1] < c.Ptr[r] {
			return fmt.Errorf("row %d: pointers decrease", r)
		}
	}
	for k, i := range c.Idx {
		if i < 0 || int(i) >= cols {
			return fmt.Errorf("entry %d: index %d outside 0–%d", k, i, cols-1)
		}
		if w := c.Conf[k]; !(w > 0) || math.IsInf(float64(w), 0) {
			return fmt.Errorf("entry %d: confidence %v: want a finite value > 0", k, w)
		}
	}
	for k, v := range c.Target {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("entry %d: target %v outside [0, 1]", k, v)
		}
	}
	return nil
}

type trainer struct {
	cfg     Config
	m       *Matrix
	d       int
	k       *kernels
	threads int
}

// init draws every component from N(0, σ²/d) in a fixed order.
func (t *trainer) init() *Factors {
	f := &Factors{Dim: t.d, Users: make([]float32, t.m.Users*t.d), Items: make([]float32, t.m.Items*t.d)}
	sd := t.cfg.InitScale / math.Sqrt(float64(t.d))
	rng := rand.New(rand.NewPCG(t.cfg.Seed, 0x69616c73)) // "ials"
	for i := range f.Users {
		f.Users[i] = float32(rng.NormFloat64() * sd)
	}
	for i := range f.Items {
		f.Items[i] = float32(rng.NormFloat64() * sd)
	}
	return f
}

// parallel runs fn over [0, n) in chunks of size chunk on t.threads
// goroutines; fn gets the chunk's number, its bounds and the worker's
// number (for per-worker scratch). It stops handing out chunks when ctx is
// done or fn fails, and returns the first error.
func (t *trainer) parallel(ctx context.Context, n, chunk int, fn func(c, lo, hi, w int) error) error {
	chunks := (n + chunk - 1) / chunk
	var next atomic.Int64
	var stop atomic.Bool
	var once sync.Once
	var first error
	fail := func(err error) {
		once.Do(func() { first = err })
		stop.Store(true)
	}
	var wg sync.WaitGroup
	for w := range min(t.threads, max(chunks, 1)) {
		wg.Go(func() {
			for !stop.Load() {
				c := int(next.Add(1) - 1)
				if c >= chunks {
					return
				}
				if ctx.Err() != nil {
					fail(ctx.Err())
					return
				}
				if err := fn(c, c*chunk, min(n, (c+1)*chunk), w); err != nil {
					fail(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// gramian returns Σ_r y_r y_rᵀ, summed in float32 within fixed chunks of
// rows and in float64 across them, in chunk order.
func (t *trainer) gramian(ctx context.Context, y []float32) ([]float32, error) {
	d := t.d
	n := len(y) / d
	chunks := (n + gramChunk - 1) / gramChunk
	parts := make([]float32, chunks*d*d)
	err := t.parallel(ctx, n, gramChunk, func(c, lo, hi, _ int) error {
		t.k.gramAdd(y[lo*d:hi*d], d, parts[c*d*d:(c+1)*d*d])
		return nil
	})
	if err != nil {
		return nil, err
	}
	acc := make([]float64, d*d)
	for c := range chunks {
		for j, v := range parts[c*d*d : (c+1)*d*d] {
			acc[j] += float64(v)
		}
	}
	g := make([]float32, d*d)
	for j, v := range acc {
		g[j] = float32(v)
	}
	return g, nil
}

// rowReg returns λ·(n + α₀·others)^ν, the penalty of a row with n pairs.
func (t *trainer) rowReg(n, others int) float32 {
	return float32(t.cfg.Reg * math.Pow(float64(n)+t.cfg.UnobservedWeight*float64(others), t.cfg.RegExponent))
}

// solveChunk is the number of rows a worker takes at a time: small enough
// to balance rows of very different lengths, large enough to amortise the
// hand-out.
const solveChunk = 64

type scratch struct{ r, p, ap, tmp []float32 }

// solve updates every row of x (against the fixed side y, whose Gramian is
// g) by CGSteps of conjugate gradient.
func (t *trainer) solve(ctx context.Context, x, y []float32, a *CSR, g []float32, others int) error {
	d := t.d
	rows := len(x) / d
	scr := make([]scratch, t.threads)
	for w := range scr {
		buf := make([]float32, 4*d)
		scr[w] = scratch{r: buf[:d], p: buf[d : 2*d], ap: buf[2*d : 3*d], tmp: buf[3*d:]}
	}
	alpha0 := float32(t.cfg.UnobservedWeight)
	return t.parallel(ctx, rows, solveChunk, func(_, lo, hi, w int) error {
		s := &scr[w]
		for r := lo; r < hi; r++ {
			b, e := a.Ptr[r], a.Ptr[r+1]
			var target []float32
			if a.Target != nil {
				target = a.Target[b:e]
			}
			xr := x[r*d : r*d+d]
			t.cg(xr, y, a.Idx[b:e], a.Conf[b:e], target, g, alpha0, t.rowReg(int(e-b), others), s)
			// A NaN or ±Inf component makes the squared norm NaN or +Inf.
			if n := t.k.dot(xr, xr); math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
				return ErrNotFinite
			}
		}
		return nil
	})
}

// cg runs conjugate gradient on (α₀G + λI + Σ c_j y_j y_jᵀ) x = Σ c_j t_j y_j
// from the current x.
func (t *trainer) cg(x, y []float32, idx []int32, conf, target, g []float32, alpha0, lam float32, s *scratch) {
	d, k := t.d, t.k
	r, p, ap, tmp := s.r, s.p, s.ap, s.tmp
	// r = b − A·x
	if alpha0 != 0 {
		k.symv(g, d, x, tmp)
	} else {
		clear(tmp)
	}
	k.lincomb(r, -alpha0, tmp, -lam, x)
	k.gather(y, d, idx, conf, target, x, r, true)
	copy(p, r)
	rs := k.dot(r, r)
	for range t.cfg.CGSteps {
		if rs < 1e-20 {
			return // converged: the residual is at float32 rounding
		}
		if alpha0 != 0 {
			k.symv(g, d, p, ap)
		} else {
			clear(ap)
		}
		k.lincomb(ap, alpha0, ap, lam, p)
		k.gather(y, d, idx, conf, nil, p, ap, false)
		pap := k.dot(p, ap)
		if !(pap > 0) {
			return // p = 0, or rounding: nothing left to gain
		}
		rsNew := k.cgStep(rs/pap, p, ap, x, r)
		k.lincomb(p, 1, r, rsNew/rs, p)
		rs = rsNew
	}
}

// loss returns L / pairs: the observed term from a pass over the pairs,
// the every-pair term as α₀·⟨G_users, G_items⟩ (Σ_u Σ_i ŷ² = tr(G_u G_i)),
// and the penalties.
func (t *trainer) loss(ctx context.Context, f *Factors, gUsers, gItems []float32) (float64, error) {
	m := t.m
	chunks := (m.Users + gramChunk - 1) / gramChunk
	parts := make([]float64, chunks)
	err := t.parallel(ctx, m.Users, gramChunk, func(c, lo, hi, _ int) error {
		var s float64
		a := &m.ByUser
		for u := lo; u < hi; u++ {
			wu := f.User(u)
			for j := a.Ptr[u]; j < a.Ptr[u+1]; j++ {
				tgt := float32(1)
				if a.Target != nil {
					tgt = a.Target[j]
				}
				e := float64(tgt - t.k.dot(wu, f.Item(int(a.Idx[j]))))
				s += float64(a.Conf[j]) * e * e
			}
			s += float64(t.rowReg(a.Len(u), m.Items)) * float64(t.k.dot(wu, wu))
		}
		parts[c] = s
		return nil
	})
	if err != nil {
		return 0, err
	}
	var total float64
	for _, s := range parts {
		total += s
	}
	for i := range m.Items {
		hi := f.Item(i)
		total += float64(t.rowReg(m.ByItem.Len(i), m.Users)) * float64(t.k.dot(hi, hi))
	}
	var tr float64
	for j := range gUsers {
		tr += float64(gUsers[j]) * float64(gItems[j])
	}
	total += t.cfg.UnobservedWeight * tr
	loss := total / float64(max(m.NNZ(), 1))
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return 0, ErrNotFinite
	}
	return loss, nil
}
