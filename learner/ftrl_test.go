package learner

import (
	"bufio"
	"encoding/json"
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

type ftrlExample struct {
	x []Feature
	y float64
}

func readFTRLInput(t *testing.T) []ftrlExample {
	t.Helper()
	f, err := os.Open("testdata/ftrl_input.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []ftrlExample
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Fields(line)
		y, err := strconv.ParseFloat(parts[0], 64)
		if err != nil {
			t.Fatal(err)
		}
		ex := ftrlExample{y: y}
		for _, p := range parts[1:] {
			is, vs, _ := strings.Cut(p, ":")
			i, err1 := strconv.Atoi(is)
			v, err2 := strconv.ParseFloat(vs, 64)
			if err := errors.Join(err1, err2); err != nil {
				t.Fatal(err)
			}
			ex.x = append(ex.x, Feature{Index: uint32(i), Value: v})
		}
		out = append(out, ex)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFTRLGolden replays testdata/ftrl_input.txt and compares every
// prediction and the final weights with testdata/ftrl_reference.py, a direct
// transcription of the paper's Algorithm 1.
func TestFTRLGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/ftrl_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Alpha, Beta, L1, L2 float64
		Size                int
		Predictions         []float64
		Weights             []float64
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	f, err := NewFTRL(FTRLConfig{Alpha: g.Alpha, Beta: g.Beta, L1: g.L1, L2: g.L2, Dense: g.Size})
	if err != nil {
		t.Fatal(err)
	}
	exs := readFTRLInput(t)
	if len(exs) != len(g.Predictions) || len(exs) < 100 {
		t.Fatalf("%d examples, %d golden predictions", len(exs), len(g.Predictions))
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b)) }
	for k, ex := range exs {
		if p := f.Update(ex.x, ex.y); !near(p, g.Predictions[k]) {
			t.Fatalf("example %d: prediction %v, want %v", k, p, g.Predictions[k])
		}
	}
	zeros := 0
	for i, w := range g.Weights {
		if got := f.Weight(uint32(i)); !near(got, w) {
			t.Errorf("weight %d = %v, want %v", i, got, w)
		}
		if w == 0 {
			zeros++
		}
	}
	if zeros == 0 {
		t.Error("golden input exercises no L1 sparsity")
	}
}

func TestFTRLLearns(t *testing.T) {
	// A separable problem: label = feature 0 > 0.
	f, err := NewFTRL(FTRLConfig{Alpha: 0.5, Beta: 1, L1: 0, L2: 0, Dense: 2, HashBits: 4})
	if err != nil {
		t.Fatal(err)
	}
	var s uint64 = 3
	for range 2000 {
		s += 0x9E3779B97F4A7C15
		v := float64(splitmix(s)>>11)/(1<<53)*2 - 1
		y := 0.0
		if v > 0 {
			y = 1
		}
		f.Update([]Feature{{0, v}, {1, 1}}, y)
	}
	if p := f.Predict([]Feature{{0, 0.8}, {1, 1}}); p < 0.9 {
		t.Errorf("p(x=0.8) = %v, want > 0.9", p)
	}
	if p := f.Predict([]Feature{{0, -0.8}, {1, 1}}); p > 0.1 {
		t.Errorf("p(x=-0.8) = %v, want < 0.1", p)
	}
}

func TestFTRLHashed(t *testing.T) {
	f, err := NewFTRL(FTRLConfig{Alpha: 0.1, Beta: 1, Dense: 5, HashBits: 10})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]bool{}
	for _, c := range [][2]string{{"ab", "c"}, {"a", "bc"}, {"ctx.device", "tv"}, {"ctx.device", "phone"}, {"item", "42"}} {
		i := f.Hashed(c[0], c[1])
		if i < 5 || int(i) >= f.Size() {
			t.Errorf("Hashed%v = %d outside [5, %d)", c, i, f.Size())
		}
		if i != f.Hashed(c[0], c[1]) {
			t.Errorf("Hashed%v not deterministic", c)
		}
		seen[i] = true
	}
	if len(seen) != 5 {
		t.Errorf("5 features hashed to %d indices (collision in a 1024 space is unlikely)", len(seen))
	}
	// Out-of-range indices are ignored, not a panic.
	if m := f.Margin([]Feature{{Index: 1 << 30, Value: 1}}); m != 0 {
		t.Errorf("margin of out-of-range feature = %v", m)
	}
	f.Update([]Feature{{Index: 1 << 30, Value: 1}}, 1)
}

func TestFTRLConfigValidate(t *testing.T) {
	ok := DefaultFTRLConfig()
	tests := []struct {
		name string
		mod  func(*FTRLConfig)
		bad  bool
	}{
		{"default", func(*FTRLConfig) {}, false},
		{"zero alpha", func(c *FTRLConfig) { c.Alpha = 0 }, true},
		{"nan beta", func(c *FTRLConfig) { c.Beta = math.NaN() }, true},
		{"negative l1", func(c *FTRLConfig) { c.L1 = -1 }, true},
		{"inf l2", func(c *FTRLConfig) { c.L2 = math.Inf(1) }, true},
		{"too many bits", func(c *FTRLConfig) { c.HashBits = 23 }, true},
		{"negative dense", func(c *FTRLConfig) { c.Dense = -1 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			if err := c.Validate(); (err != nil) != tt.bad {
				t.Errorf("Validate() = %v, want error %v", err, tt.bad)
			}
		})
	}
}

func TestFTRLMarshalRoundTrip(t *testing.T) {
	f, err := NewFTRL(FTRLConfig{Alpha: 0.1, Beta: 1, L1: 0.5, L2: 1, Dense: 16, HashBits: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range readFTRLInput(t) {
		f.Update(ex.x, ex.y)
	}
	b, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var g FTRL
	if err := g.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if g.Config() != f.Config() {
		t.Errorf("config %+v, want %+v", g.Config(), f.Config())
	}
	for i := range uint32(f.Size()) {
		if g.Weight(i) != f.Weight(i) || g.z[i] != f.z[i] || g.n[i] != f.n[i] {
			t.Fatalf("coordinate %d differs after round trip", i)
		}
	}
	// Corruptions are rejected and leave the target unchanged.
	for name, mut := range map[string]func([]byte){
		"magic":    func(b []byte) { b[0] = 'X' },
		"version":  func(b []byte) { b[4] = 9 },
		"reserved": func(b []byte) { b[6] = 1 },
		"alpha":    func(b []byte) { copy(b[12:], make([]byte, 8)) },
		"order":    func(b []byte) { b[ftrlHeaderLen] = 0xff; b[ftrlHeaderLen+1] = 0xff },
	} {
		c := append([]byte(nil), b...)
		mut(c)
		h := g
		if err := h.UnmarshalBinary(c); !errors.Is(err, ErrBadFTRL) {
			t.Errorf("%s: err = %v, want ErrBadFTRL", name, err)
		}
		if h.Size() != g.Size() {
			t.Errorf("%s: target changed on error", name)
		}
	}
	if err := g.UnmarshalBinary(b[:len(b)-1]); !errors.Is(err, ErrBadFTRL) {
		t.Errorf("truncated: err = %v", err)
	}
}

func FuzzFTRLUnmarshal(f *testing.F) {
	m, _ := NewFTRL(FTRLConfig{Alpha: 0.1, Beta: 1, L1: 0.5, L2: 1, Dense: 3, HashBits: 2})
	m.Update([]Feature{{0, 1}, {4, -2}}, 1)
	b, _ := m.MarshalBinary()
	f.Add(b)
	f.Add([]byte("EFTR"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var g FTRL
		if err := g.UnmarshalBinary(b); err != nil {
			return
		}
		out, err := g.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != string(b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, out)
		}
		for i := range uint32(g.Size()) {
			if w := g.Weight(i); math.IsNaN(w) || math.IsInf(w, 0) {
				t.Fatalf("weight %d = %v", i, w)
			}
		}
	})
}

func TestFTRLUpdateDoesNotAllocate(t *testing.T) {
	f, _ := NewFTRL(DefaultFTRLConfig())
	x := []Feature{{0, 1}, {f.Hashed("item", "7"), 1}, {f.Hashed("ctx", "tv"), 1}}
	if a := testing.AllocsPerRun(100, func() { f.Update(x, 1) }); a != 0 {
		t.Errorf("Update allocates %v times", a)
	}
}

func BenchmarkFTRLUpdate(b *testing.B) {
	f, _ := NewFTRL(FTRLConfig{Alpha: 0.05, Beta: 1, L1: 1, L2: 1, Dense: 11, HashBits: 18})
	x := make([]Feature, 0, 16)
	for i := range 11 {
		x = append(x, Feature{uint32(i), 0.5})
	}
	x = append(x, Feature{f.Hashed("item", "42"), 1}, Feature{f.Hashed("ctx.device", "tv"), 1})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f.Update(x, float64(i&1))
	}
}
