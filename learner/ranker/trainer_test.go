package ranker

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/modelrec"
)

// clickStream makes examples whose label depends on item_ctr only:
// P(click) = σ(4·item_ctr − 2); mf_score is noise.
func clickStream(t testing.TB, seed uint64, n int) []*kgo.Record {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 3))
	recs := make([]*kgo.Record, n)
	for i := range recs {
		ctr, mf := rng.Float64(), rng.NormFloat64()
		x := Example{Reason: ReasonExpired, ServedMs: t0, LabelMs: t0 + int64(i),
			Features: []NamedValue{{"item_ctr", ctr}, {"mf_score", mf}, {"not_a_feature", 5}}}
		if rng.Float64() < 1/(1+math.Exp(-(4*ctr-2))) {
			x.Label, x.Reason = 1, ReasonEngaged
		}
		v, err := AppendExample(nil, &x)
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = &kgo.Record{Key: []byte("default"), Value: v, Timestamp: time.UnixMilli(t0 + int64(i))}
	}
	return recs
}

type trainHarness struct {
	t     testing.TB
	cfg   Config
	m     *metrics
	p     *trainProc
	b     *memBatch
	clock time.Time
	pubs  []*modelrec.Ranker
}

func newTrainHarness(t testing.TB, cfg Config) *trainHarness {
	h := &trainHarness{t: t, cfg: cfg, m: newMetrics(), b: newMemBatch(), clock: time.UnixMilli(t0)}
	h.restart()
	return h
}

func (h *trainHarness) restart() {
	h.p = newTrainProc(&h.cfg, h.m, quietLog(), nil)
	h.p.now = func() time.Time { return h.clock }
}

func (h *trainHarness) feed(recs []*kgo.Record) {
	h.t.Helper()
	if err := h.p.process(recs, h.b); err != nil {
		h.t.Fatal(err)
	}
	for _, r := range h.b.take() {
		if r.Topic != h.cfg.Topics.Ranker || string(r.Key) != h.cfg.Name {
			h.t.Fatalf("output to %s key %q", r.Topic, r.Key)
		}
		rk, err := modelrec.DecodeRanker(r.Value)
		if err != nil {
			h.t.Fatal(err)
		}
		h.pubs = append(h.pubs, rk)
	}
}

func weightOf(r *modelrec.Ranker, name string) float64 {
	return r.Weights[slices.Index(r.Features, name)]
}

// TestTrainerLearnsTheFeature: clicks depend on item_ctr alone, so its
// weight must come out clearly positive, the noise feature's near zero,
// the bias negative, and the progressive log-loss below the base rate's.
func TestTrainerLearnsTheFeature(t *testing.T) {
	cfg := testConfig()
	cfg.PublishEvery = 1000
	cfg.PublishInterval = time.Hour
	h := newTrainHarness(t, cfg)
	recs := clickStream(t, 1, 20_000)
	for i := 0; i < len(recs); i += 250 {
		h.feed(recs[i:min(i+250, len(recs))])
	}
	// The first batch publishes (nothing published yet in this process),
	// then the first batch that ends 1,000 examples later: at 250, 1,250,
	// ..., 19,250 examples (the last 750 wait for more, or a tick).
	if len(h.pubs) != 20 {
		t.Fatalf("%d publishes, want 20", len(h.pubs))
	}
	last := h.pubs[len(h.pubs)-1]
	if !slices.Equal(last.Features, cfg.Features) || last.ModelVersion != cfg.ModelVersion || last.TsMillis != t0+19_249 {
		t.Fatalf("record %+v", last)
	}
	wc, wm := weightOf(last, modelrec.FeatureItemCTR), weightOf(last, modelrec.FeatureMFScore)
	t.Logf("item_ctr %.3f mf_score %.3f bias %.3f logloss %.4f", wc, wm, last.Bias, counter(h.m.logLoss))
	if wc < 1.5 || math.Abs(wm) > 0.3 || last.Bias > -0.5 {
		t.Fatalf("weights item_ctr %.3f mf_score %.3f bias %.3f: want item_ctr clearly positive, mf_score ≈ 0, bias < 0", wc, wm, last.Bias)
	}
	pos := counter(h.m.trained.WithLabelValues("positive"))
	base := pos / 20_000
	baseLoss := -(base*math.Log(base) + (1-base)*math.Log(1-base))
	if ll := counter(h.m.logLoss); ll >= baseLoss {
		t.Fatalf("progressive log-loss %.4f not below the base rate's %.4f", ll, baseLoss)
	}
	// The first publish saw little; the weight grew since.
	if w0 := weightOf(h.pubs[0], modelrec.FeatureItemCTR); w0 >= wc {
		t.Fatalf("first published item_ctr weight %.3f ≥ last %.3f", w0, wc)
	}
}

// TestTrainerRestartIsExact: a trainer rebuilt from state continues as if
// nothing happened: same model bits, same counts, same progressive loss.
func TestTrainerRestartIsExact(t *testing.T) {
	cfg := testConfig()
	cfg.PublishEvery = 700
	recs := clickStream(t, 2, 6000)
	a, b := newTrainHarness(t, cfg), newTrainHarness(t, cfg)
	for i := 0; i < len(recs); i += 100 {
		a.feed(recs[i:min(i+100, len(recs))])
		b.feed(recs[i:min(i+100, len(recs))])
		if (i/100)%5 == 0 {
			b.restart()
		}
	}
	if !slices.Equal(a.b.state[string(trainModelKey)], b.b.state[string(trainModelKey)]) {
		t.Fatal("model state differs after restarts")
	}
	ma, mb := a.p.meta, b.p.meta
	if ma.examples != 6000 || mb.examples != ma.examples || mb.positives != ma.positives || mb.lossSum != ma.lossSum {
		t.Fatalf("meta: clean %+v, with restarts %+v", ma, mb)
	}
	// Both publish the same final model (a restarted trainer publishes at
	// its first batch, so the publish counts may differ).
	ra, rb := a.p.ranker(), b.p.ranker()
	if !slices.Equal(ra.Weights, rb.Weights) || ra.Bias != rb.Bias {
		t.Fatalf("weights %v/%v vs %v/%v", ra.Weights, ra.Bias, rb.Weights, rb.Bias)
	}
	// The in-memory FTRL over the same examples gives the same weights:
	// the trainer adds nothing but the bias and the name→index map.
	fc := cfg.FTRL
	fc.Dense = trainDense
	f, err := learner.NewFTRL(fc)
	if err != nil {
		t.Fatal(err)
	}
	var x Example
	for _, r := range recs {
		if err := DecodeExample(r.Value, &x); err != nil {
			t.Fatal(err)
		}
		fs := []learner.Feature{{Index: 0, Value: 1}}
		for _, nv := range x.Features {
			if i := slices.Index(cfg.Features, nv.Name); i >= 0 {
				fs = append(fs, learner.Feature{Index: uint32(i + 1), Value: nv.Value})
			}
		}
		f.Update(fs, float64(x.Label))
	}
	if ra.Bias != f.Weight(0) || ra.Weights[slices.Index(cfg.Features, modelrec.FeatureItemCTR)] != f.Weight(uint32(1+slices.Index(cfg.Features, modelrec.FeatureItemCTR))) {
		t.Fatal("trainer weights differ from a plain FTRL over the same examples")
	}
}

func TestTrainerThrottleAndTicks(t *testing.T) {
	cfg := testConfig()
	cfg.PublishEvery = 1000
	cfg.PublishInterval = time.Second
	h := newTrainHarness(t, cfg)
	recs := clickStream(t, 3, 300)
	h.feed(recs[:100]) // first batch: publishes
	h.feed(recs[100:200])
	h.clock = h.clock.Add(500 * time.Millisecond)
	h.feed(recs[200:250])
	if len(h.pubs) != 1 {
		t.Fatalf("%d publishes within the interval, want 1", len(h.pubs))
	}
	tick := &kgo.Record{Key: []byte("default"), Value: []byte{}, Headers: []kgo.RecordHeader{{Key: TickHeader, Value: []byte{1}}}}
	h.clock = h.clock.Add(600 * time.Millisecond)
	h.feed([]*kgo.Record{tick})
	if len(h.pubs) != 2 || h.p.meta.since != 0 || h.p.meta.examples != 250 {
		t.Fatalf("after a tick past the interval: %d publishes, %d unpublished, %d examples", len(h.pubs), h.p.meta.since, h.p.meta.examples)
	}
	h.clock = h.clock.Add(time.Hour)
	h.feed([]*kgo.Record{tick})
	if len(h.pubs) != 2 {
		t.Fatal("a tick with nothing new published")
	}
	bad := &kgo.Record{Value: []byte("junk")}
	h.feed([]*kgo.Record{bad})
	if h.p.meta.examples != 250 {
		t.Fatal("an undecodable example was learnt")
	}
}

func TestExampleRoundTrip(t *testing.T) {
	x := Example{Label: 1, Reason: ReasonEngaged, Position: 3, ServedMs: t0, LabelMs: t0 + 5,
		Features: []NamedValue{{"a", 1.5}, {"item_ctr", -2}}}
	v, err := AppendExample(nil, &x)
	if err != nil {
		t.Fatal(err)
	}
	var y Example
	if err := DecodeExample(v, &y); err != nil {
		t.Fatal(err)
	}
	if y.Label != x.Label || y.Reason != x.Reason || y.Position != 3 || y.ServedMs != t0 || y.LabelMs != t0+5 || !slices.Equal(y.Features, x.Features) {
		t.Fatalf("round trip %+v", y)
	}
	for i := range v {
		if err := DecodeExample(v[:i], &y); err == nil {
			t.Fatalf("truncated at %d accepted", i)
		}
	}
	if _, err := AppendExample(nil, &Example{Features: []NamedValue{{"x", math.NaN()}}}); err == nil {
		t.Fatal("NaN feature encoded")
	}
}

func FuzzDecodeExample(f *testing.F) {
	v, _ := AppendExample(nil, &Example{Label: 1, Reason: ReasonEngaged, Features: []NamedValue{{"mf_score", 1}}})
	f.Add(v)
	f.Fuzz(func(t *testing.T, b []byte) {
		var x Example
		if DecodeExample(b, &x) != nil {
			return
		}
		w, err := AppendExample(nil, &x)
		if err != nil {
			t.Fatalf("decoded example does not encode: %v", err)
		}
		if !slices.Equal(w, b) {
			t.Fatal("re-encoding differs")
		}
	})
}
