package learner

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/eddyrec/eddy/event"
)

func testRow(seed uint64, id string, d int, scale float32, bias float32) *Row {
	r := &Row{Vec: make([]float32, d), Bias: bias}
	InitRow(seed, id, scale, r.Vec)
	return r
}

func cloneRow(r *Row) *Row {
	return &Row{Vec: append([]float32(nil), r.Vec...), Bias: r.Bias, Count: r.Count}
}

// TestUserStepIsSGD checks both halves against finite differences of the
// loss in float64: the user moves by −rate·∂L/∂u (with L2 shrinkage), and
// every item gradient equals −∂L/∂v and −∂L/∂b.
func TestUserStepIsSGD(t *testing.T) {
	cfg := DefaultMFConfig()
	cfg.Dim = 32
	cfg.ScheduleSteps = 0
	cfg.Reg = 0.02
	mf, err := NewMF(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Dim
	user := testRow(1, "u", d, 0.3, 0)
	items := []*Row{testRow(2, "a", d, 0.3, 0.2), testRow(2, "b", d, 0.3, -0.1), testRow(2, "c", d, 0.3, 0)}
	ex := []Example{
		{ItemID: "a", Item: items[0], Label: 1, Weight: 1.5, Offset: 0.3},
		{ItemID: "b", Item: items[1], Label: 0, Weight: 0.7, Offset: -0.2},
		{ItemID: "c", Item: items[2], Label: 0, Weight: 0.7},
	}
	loss := func(u *Row) float64 { return mf.Loss(u, ex) }

	// Numerical gradient with respect to the user vector.
	const h = 1e-3
	wantU := make([]float64, d)
	for j := range d {
		p, m := cloneRow(user), cloneRow(user)
		p.Vec[j] += h
		m.Vec[j] -= h
		g := (loss(p) - loss(m)) / (2 * h)
		lr := float64(cfg.LearnRate)
		wantU[j] = float64(user.Vec[j])*(1-lr*float64(cfg.Reg)) - lr*g
	}
	// Numerical gradients with respect to each item's vector and bias.
	wantV := make([][]float64, len(ex))
	wantB := make([]float64, len(ex))
	for e, it := range items {
		wantV[e] = make([]float64, d)
		for j := range d {
			old := it.Vec[j]
			it.Vec[j] = old + h
			lp := loss(user)
			it.Vec[j] = old - h
			lm := loss(user)
			it.Vec[j] = old
			wantV[e][j] = -(lp - lm) / (2 * h)
		}
		old := it.Bias
		it.Bias = old + h
		lp := loss(user)
		it.Bias = old - h
		lm := loss(user)
		it.Bias = old
		wantB[e] = -(lp - lm) / (2 * h)
	}

	grads := make([]ItemGradient, len(ex))
	for i := range grads {
		grads[i].Grad = make([]float32, d)
	}
	mf.UserStep(user, ex, grads, make([]float32, d))
	const tol = 2e-3
	for j := range d {
		if math.Abs(float64(user.Vec[j])-wantU[j]) > tol*0.05 {
			t.Fatalf("user[%d] = %v, want %v", j, user.Vec[j], wantU[j])
		}
	}
	if user.Count != 1 {
		t.Errorf("user count = %d, want 1", user.Count)
	}
	for e := range ex {
		g := grads[e]
		if g.ItemID != ex[e].ItemID || g.Rate != cfg.LearnRate {
			t.Errorf("grad %d: id %q rate %v", e, g.ItemID, g.Rate)
		}
		if math.Abs(float64(g.BiasGrad)-wantB[e]) > tol {
			t.Errorf("grad %d: bias %v, want %v", e, g.BiasGrad, wantB[e])
		}
		for j := range d {
			if math.Abs(float64(g.Grad[j])-wantV[e][j]) > tol {
				t.Fatalf("grad %d[%d] = %v, want %v", e, j, g.Grad[j], wantV[e][j])
			}
		}
	}
}

func TestApplyItemGradient(t *testing.T) {
	cfg := DefaultMFConfig()
	cfg.Dim = 32
	cfg.ScheduleSteps = 4
	cfg.MinRateFrac = 0.5
	mf, _ := NewMF(cfg)
	grad := make([]float32, 32)
	for j := range grad {
		grad[j] = float32(j) / 32
	}
	tests := []struct {
		name    string
		count   uint32
		g       ItemGradient
		wantErr string
		rate    float32 // expected effective rate
	}{
		{"fresh item", 0, ItemGradient{ItemID: "i", Rate: 0.1, BiasGrad: 0.5, Grad: grad}, "", 0.1},
		{"settled item", 12, ItemGradient{ItemID: "i", Rate: 0.1, BiasGrad: 0.5, Grad: grad}, "", 0.05}, // 1/sqrt(1+3) = 0.5
		{"floor", 1000, ItemGradient{ItemID: "i", Rate: 0.1, BiasGrad: 0.5, Grad: grad}, "", 0.05},
		{"wrong dim", 0, ItemGradient{ItemID: "i", Rate: 0.1, Grad: grad[:8]}, "dim 8", 0},
		{"zero rate", 0, ItemGradient{ItemID: "i", Rate: 0, Grad: grad}, "rate 0", 0},
		{"nan rate", 0, ItemGradient{ItemID: "i", Rate: float32(math.NaN()), Grad: grad}, "rate NaN", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it := testRow(5, "i", 32, 0.1, 0.3)
			it.Count = tt.count
			before := cloneRow(it)
			err := mf.ApplyItemGradient(it, &tt.g)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if it.Count != before.Count || it.Bias != before.Bias || it.Vec[3] != before.Vec[3] {
					t.Fatal("row changed on error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			lr := tt.rate
			for j := range it.Vec {
				want := (1-lr*cfg.Reg)*before.Vec[j] + lr*grad[j]
				if math.Abs(float64(it.Vec[j]-want)) > 1e-6 {
					t.Fatalf("vec[%d] = %v, want %v", j, it.Vec[j], want)
				}
			}
			wantB := (1-lr*cfg.BiasReg)*before.Bias + lr*0.5
			if math.Abs(float64(it.Bias-wantB)) > 1e-6 || it.Count != tt.count+1 {
				t.Errorf("bias %v count %d, want %v %d", it.Bias, it.Count, wantB, tt.count+1)
			}
		})
	}
}

func TestInitRow(t *testing.T) {
	const d = 128
	a, b, c, s := make([]float32, d), make([]float32, d), make([]float32, d), make([]float32, d)
	InitRow(1, "item-1", 0.1, a)
	InitRow(1, "item-1", 0.1, b)
	InitRow(1, "item-2", 0.1, c)
	InitRow(2, "item-1", 0.1, s)
	var same, sum, sq float64
	for j := range a {
		if a[j] != b[j] {
			t.Fatal("same seed and id gave different vectors")
		}
		if a[j] == c[j] || a[j] == s[j] {
			same++
		}
		if math.Abs(float64(a[j])) > 0.1*math.Sqrt(3) {
			t.Fatalf("component %v beyond ±scale·√3", a[j])
		}
		sum += float64(a[j] + c[j] + s[j])
		sq += float64(a[j]*a[j] + c[j]*c[j] + s[j]*s[j])
	}
	if same > 2 {
		t.Errorf("%v components coincide across ids or seeds", same)
	}
	n := float64(3 * d)
	std := math.Sqrt(sq/n - (sum/n)*(sum/n))
	if std < 0.08 || std > 0.12 {
		t.Errorf("std = %v, want ≈ 0.1", std)
	}
	z := make([]float32, d)
	InitRow(1, "u", 0, z)
	for _, v := range z {
		if v != 0 {
			t.Fatal("scale 0 must give a zero vector")
		}
	}
}

func TestConfidence(t *testing.T) {
	c := DefaultConfidence()
	watch := func(v, d float64) event.Event {
		return event.Event{Type: event.Watch, Value: v, HasValue: true, Duration: d, HasDuration: true}
	}
	rating := func(v float64) event.Event { return event.Event{Type: event.Rating, Value: v, HasValue: true} }
	tests := []struct {
		name     string
		ev       event.Event
		label    float32
		weight   float32
		positive bool
	}{
		{"click", event.Event{Type: event.Click}, 1, 1, true},
		{"like", event.Event{Type: event.Like}, 1, 2, true},
		{"purchase", event.Event{Type: event.Purchase}, 1, 2, true},
		{"dislike", event.Event{Type: event.Dislike}, 0, 1, false},
		{"skip", event.Event{Type: event.Skip}, 0, 0.5, false},
		{"impression", event.Event{Type: event.Impression}, 0, 0, false},
		{"full watch", watch(100, 100), 1, 2, true},
		{"half watch", watch(50, 100), 1, 1.25, true},
		{"middling watch", watch(20, 100), 0, 0, false},
		{"abandoned watch", watch(5, 100), 0, 0.5, false},
		{"watch no duration", event.Event{Type: event.Watch, Value: 30, HasValue: true}, 1, 1.25, true},
		{"rating 5", rating(5), 1, 1.5, true},
		{"rating 4", rating(4), 1, 1, true},
		{"rating 3.5", rating(3.5), 1, 0.6, false},
		{"rating 2", rating(2), 0, 0.5, false},
		{"rating without value", event.Event{Type: event.Rating}, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, w := c.Signal(&tt.ev)
			if l != tt.label || math.Abs(float64(w-tt.weight)) > 1e-6 {
				t.Errorf("Signal = (%v, %v), want (%v, %v)", l, w, tt.label, tt.weight)
			}
			if p := c.Positive(&tt.ev); p != tt.positive {
				t.Errorf("Positive = %v, want %v", p, tt.positive)
			}
		})
	}
}

func TestMFConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*MFConfig)
		want string
	}{
		{"default", func(*MFConfig) {}, ""},
		{"dim low", func(c *MFConfig) { c.Dim = 16 }, "dim 16"},
		{"dim high", func(c *MFConfig) { c.Dim = 129 }, "dim 129"},
		{"rate", func(c *MFConfig) { c.LearnRate = 0 }, "learn rate"},
		{"nan reg", func(c *MFConfig) { c.Reg = float32(math.NaN()) }, "reg"},
		{"negatives", func(c *MFConfig) { c.Negatives = 65 }, "negatives 65"},
		{"window", func(c *MFConfig) { c.NegativeWindow = 0 }, "negative window"},
		{"uniform", func(c *MFConfig) { c.NegativeUniform = 1.5 }, "uniform share"},
		{"init", func(c *MFConfig) { c.InitScale = -1 }, "init scale"},
		{"confidence", func(c *MFConfig) { c.Confidence.Like = -1 }, "confidence like"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultMFConfig()
			tt.mod(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// benchStep builds the inputs of one event with 1 positive and 4 negatives.
func benchStep(b *testing.B, d int) (*MF, *Row, []Example, []ItemGradient, []float32) {
	cfg := DefaultMFConfig()
	cfg.Dim = d
	mf, err := NewMF(cfg)
	if err != nil {
		b.Fatal(err)
	}
	user := testRow(1, "u", d, 0.1, 0)
	ex := make([]Example, 5)
	grads := make([]ItemGradient, 5)
	for e := range ex {
		id := string(rune('a' + e))
		ex[e] = Example{ItemID: id, Item: testRow(2, id, d, 0.1, 0), Weight: 0.7}
		grads[e].Grad = make([]float32, d)
	}
	ex[0].Label, ex[0].Weight = 1, 1
	return mf, user, ex, grads, make([]float32, d)
}

// BenchmarkUpdate measures one (user, item) update: the user half and the
// item half of one example. The "updates/s" metric is the DESIGN.md §6
// kernel target (≥ 2M/s per core at d=64).
func BenchmarkUpdate(b *testing.B) {
	for _, d := range []int{32, 64, 128} {
		b.Run("dim="+strconv.Itoa(d), func(b *testing.B) {
			mf, user, ex, grads, du := benchStep(b, d)
			ex = ex[:1]
			b.ReportAllocs()
			for b.Loop() {
				mf.UserStep(user, ex, grads, du)
				_ = mf.ApplyItemGradient(ex[0].Item, &grads[0])
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
		})
	}
}

// BenchmarkEventStep measures one positive event with 4 negatives (five
// updates): what the learner does per event.
func BenchmarkEventStep(b *testing.B) {
	mf, user, ex, grads, du := benchStep(b, 64)
	b.ReportAllocs()
	for b.Loop() {
		mf.UserStep(user, ex, grads, du)
		for e := range ex {
			_ = mf.ApplyItemGradient(ex[e].Item, &grads[e])
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.N*len(ex))/b.Elapsed().Seconds(), "updates/s")
}

func BenchmarkUserStep(b *testing.B) {
	mf, user, ex, grads, du := benchStep(b, 64)
	b.ReportAllocs()
	for b.Loop() {
		mf.UserStep(user, ex, grads, du)
	}
}

func BenchmarkApplyItemGradient(b *testing.B) {
	mf, user, ex, grads, du := benchStep(b, 64)
	mf.UserStep(user, ex, grads, du)
	b.ReportAllocs()
	for b.Loop() {
		_ = mf.ApplyItemGradient(ex[0].Item, &grads[0])
	}
}
