package ranker

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/modelrec"
	"github.com/eddyrec/eddy/stream/task"
)

// TickHeader marks a tick record on the examples topic: no example, only a
// prompt for the trainer to publish weights it has held back (see Service).
const TickHeader = "eddy-ranker-tick"

// Trainer state: the FTRL model (learner.FTRL's binary layout) under
// 0x00 't', the trainer's meta under 0x00 'm'.
var (
	trainModelKey = []byte{0, 't'}
	trainMetaKey  = []byte{0, 'm'}
)

const trainMetaVersion = 1

// trainMeta is the trainer's bookkeeping, kept in its state so that a
// restart continues the counts (and the progressive log-loss) exactly.
type trainMeta struct {
	// vocab names the FTRL's dense indices: vocab[i] is index i+1; index
	// 0 is the bias. It only grows, so a changed Config.Features never
	// moves a learnt weight.
	vocab         []string
	examples      uint64
	positives     uint64
	lossSum       float64
	publishes     uint64
	since         uint64 // examples learnt since the last publish
	newestKafkaMs int64  // Kafka timestamp of the newest example's deciding record
	newestLabelMs int64  // event time of the newest label
}

func (t *trainMeta) encode(e *enc) {
	e.b = e.b[:0]
	e.byte1(trainMetaVersion)
	e.u64(uint64(len(t.vocab)))
	for _, n := range t.vocab {
		e.str(n)
	}
	e.u64(t.examples)
	e.u64(t.positives)
	e.f64(t.lossSum)
	e.u64(t.publishes)
	e.u64(t.since)
	e.i64(t.newestKafkaMs)
	e.i64(t.newestLabelMs)
}

func decodeTrainMeta(v []byte) (trainMeta, error) {
	d := dec{b: v}
	var t trainMeta
	if d.byte1() != trainMetaVersion {
		d.fail("trainer meta version")
	}
	n := d.count()
	for range n {
		t.vocab = append(t.vocab, d.str())
	}
	t.examples, t.positives, t.lossSum = d.u64(), d.u64(), d.f64()
	t.publishes, t.since = d.u64(), d.u64()
	t.newestKafkaMs, t.newestLabelMs = d.i64(), d.i64()
	return t, d.done()
}

// trainDense is the FTRL's dense size: the bias and up to
// modelrec.MaxRankerFeatures−1 named features.
const trainDense = modelrec.MaxRankerFeatures

// trainProc is the trainer: one task over the single partition of the
// examples topic, holding the FTRL model in its state.
type trainProc struct {
	cfg *Config
	m   *metrics
	log *slog.Logger
	now func() time.Time
	// unpublished is shared with the Service's ticker: examples learnt
	// and not yet published, as of the last batch.
	unpublished *atomic.Int64

	loaded      bool
	ftrl        *learner.FTRL
	meta        trainMeta
	index       map[string]uint32
	x           []learner.Feature
	ex          Example
	e           enc
	lastPublish time.Time // wall clock, this process only
}

func newTrainProc(cfg *Config, m *metrics, log *slog.Logger, unpublished *atomic.Int64) *trainProc {
	return &trainProc{cfg: cfg, m: m, log: log, now: time.Now, unpublished: unpublished,
		index: map[string]uint32{}, x: make([]learner.Feature, 0, 1+len(cfg.Features))}
}

// Process implements task.Processor.
func (p *trainProc) Process(_ context.Context, recs []*kgo.Record, b *task.Batch) error {
	return p.process(recs, b)
}

func (p *trainProc) load(b batch) error {
	fc := p.cfg.FTRL
	fc.Dense, fc.HashBits = trainDense, 0
	f, err := learner.NewFTRL(fc)
	if err != nil {
		return err
	}
	v, ok, err := b.Get(trainModelKey)
	if err != nil {
		return err
	}
	if ok {
		if err := f.UnmarshalBinary(v); err != nil {
			return fmt.Errorf("ranker: trainer state: %w", err)
		}
		if got := f.Config(); got.Alpha != fc.Alpha || got.Beta != fc.Beta || got.L1 != fc.L1 || got.L2 != fc.L2 {
			p.log.Warn("ranker hyper-parameters differ from the stored model's; the stored ones stay in force",
				"alpha", got.Alpha, "beta", got.Beta, "l1", got.L1, "l2", got.L2)
		}
	}
	p.ftrl = f
	if v, ok, err = b.Get(trainMetaKey); err != nil {
		return err
	} else if ok {
		if p.meta, err = decodeTrainMeta(v); err != nil {
			return err
		}
	}
	for _, n := range p.cfg.Features {
		if !containsString(p.meta.vocab, n) && len(p.meta.vocab) < trainDense-1 {
			p.meta.vocab = append(p.meta.vocab, n)
		}
	}
	for i, n := range p.meta.vocab {
		p.index[n] = uint32(i + 1)
	}
	if p.meta.examples > 0 {
		p.m.logLoss.Set(p.meta.lossSum / float64(p.meta.examples))
	}
	p.loaded = true
	return nil
}

func containsString(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// logLoss is the log-loss of predicting p for label y, p clipped away from
// 0 and 1.
func logLoss(p, y float64) float64 {
	p = min(max(p, 1e-15), 1-1e-15)
	if y > 0 {
		return -math.Log(p)
	}
	return -math.Log(1 - p)
}

func isTick(r *kgo.Record) bool {
	for _, h := range r.Headers {
		if h.Key == TickHeader {
			return true
		}
	}
	return false
}

func (p *trainProc) process(recs []*kgo.Record, b batch) error {
	if !p.loaded {
		if err := p.load(b); err != nil {
			return err
		}
	}
	learnt := 0
	var loss float64
	for _, r := range recs {
		if isTick(r) {
			continue
		}
		if err := DecodeExample(r.Value, &p.ex); err != nil {
			p.m.joinRecords.WithLabelValues("invalid").Inc()
			continue
		}
		x := append(p.x[:0], learner.Feature{Index: 0, Value: 1})
		for _, f := range p.ex.Features {
			if i, ok := p.index[f.Name]; ok {
				x = append(x, learner.Feature{Index: i, Value: f.Value})
			}
		}
		p.x = x
		y := float64(p.ex.Label)
		l := logLoss(p.ftrl.Update(x, y), y)
		loss += l
		learnt++
		mt := &p.meta
		mt.examples++
		mt.since++
		mt.lossSum += l
		if p.ex.Label == 1 {
			mt.positives++
			p.m.trained.WithLabelValues("positive").Inc()
		} else {
			p.m.trained.WithLabelValues("negative").Inc()
		}
		mt.newestKafkaMs = max(mt.newestKafkaMs, r.Timestamp.UnixMilli())
		mt.newestLabelMs = max(mt.newestLabelMs, p.ex.LabelMs)
	}
	if learnt > 0 {
		p.m.loss.Add(loss)
		p.m.logLoss.Set(p.meta.lossSum / float64(p.meta.examples))
	}
	now := p.now()
	published := false
	if p.meta.since > 0 && (p.meta.since >= uint64(p.cfg.PublishEvery) || now.Sub(p.lastPublish) >= p.cfg.PublishInterval) {
		if err := p.publish(b, now); err != nil {
			return err
		}
		published = true
	}
	if learnt > 0 {
		v, err := p.ftrl.MarshalBinary()
		if err != nil {
			return err
		}
		if err := b.Put(trainModelKey, v); err != nil {
			return err
		}
	}
	if learnt > 0 || published {
		p.meta.encode(&p.e)
		if err := b.Put(trainMetaKey, p.e.b); err != nil {
			return err
		}
	}
	if p.unpublished != nil {
		p.unpublished.Store(int64(p.meta.since))
	}
	return nil
}

// Ranker returns the model's current record.
func (p *trainProc) ranker() *modelrec.Ranker {
	r := &modelrec.Ranker{
		Schema: modelrec.RankerSchemaVersion, ModelVersion: p.cfg.ModelVersion, TsMillis: p.meta.newestLabelMs,
		Features: p.cfg.Features, Weights: make([]float64, len(p.cfg.Features)), Bias: p.ftrl.Weight(0),
	}
	for i, n := range p.cfg.Features {
		if j, ok := p.index[n]; ok {
			r.Weights[i] = p.ftrl.Weight(j)
		}
	}
	return r
}

func (p *trainProc) publish(b batch, now time.Time) error {
	r := p.ranker()
	v, err := modelrec.EncodeRanker(r)
	if err != nil {
		return err
	}
	b.Emit(p.cfg.Topics.Ranker, []byte(p.cfg.Name), v)
	p.meta.publishes++
	p.meta.since = 0
	p.lastPublish = now
	p.m.publishes.Inc()
	if p.meta.newestKafkaMs > 0 {
		p.m.staleness.Set(max(0, now.Sub(time.UnixMilli(p.meta.newestKafkaMs)).Seconds()))
	}
	p.m.weights.WithLabelValues("bias").Set(r.Bias)
	for i, n := range r.Features {
		p.m.weights.WithLabelValues(n).Set(r.Weights[i])
	}
	p.log.Debug("ranker published", "examples", p.meta.examples, "publishes", p.meta.publishes)
	return nil
}
