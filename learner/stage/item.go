package stage

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/modelrec"
	"github.com/eddyrec/eddy/stream/task"
)

// itemEntry is one item's state while a batch runs.
type itemEntry struct {
	key string
	v   modelrec.Vector // stored and published; v.Vec is row.Vec
	row learner.Row
}

// itemProc is the item stage's processor for one partition of item-grads.
type itemProc struct {
	cfg      *Config
	mf       *learner.MF
	m        *metrics
	log      *slog.Logger
	itemSeed uint64
	decay    decayed

	items map[string]*itemEntry
	dirty []*itemEntry
	free  []*itemEntry
	g     learner.ItemGradient
	buf   []byte

	// Promotion (promotion.go), as on the user stage.
	proms   *promotions
	opts    []kgo.Opt
	ctx     context.Context
	version uint64
}

func newItemProc(cfg *Config, mf *learner.MF, m *metrics, log *slog.Logger) *itemProc {
	return &itemProc{
		cfg: cfg, mf: mf, m: m, log: log,
		itemSeed: cfg.MF.Seed ^ itemSeedSalt,
		decay:    decayed{halfLifeMillis: float64(cfg.PopularityHalfLife.Milliseconds())},
		items:    map[string]*itemEntry{},
		g:        learner.ItemGradient{Grad: make([]float32, cfg.MF.Dim)},
	}
}

// Process implements task.Processor.
func (p *itemProc) Process(ctx context.Context, recs []*kgo.Record, b *task.Batch) error {
	p.ctx = ctx
	return p.process(recs, b)
}

func gradHeader(r *kgo.Record) []byte {
	for _, h := range r.Headers {
		if h.Key == GradHeader {
			return h.Value
		}
	}
	return nil
}

func (p *itemProc) process(recs []*kgo.Record, b batch) error {
	if p.version == 0 {
		v, _, err := loadAdopted(b, p.cfg.ModelVersion)
		if err != nil {
			return err
		}
		p.version = v
	}
	if p.proms != nil {
		if pr := p.proms.Latest(); pr != nil && pr.Version > p.version {
			if err := p.adopt(b, pr); err != nil {
				return err
			}
		}
	}
	var updates, imps, invalid, stale int
	var newest time.Time
	for _, r := range recs {
		kind, ts, err := decodeGradHeader(gradHeader(r))
		if err == nil && kind != KindImpressions && p.proms != nil {
			switch gv := recordVersion(r, p.cfg.ModelVersion); {
			case gv < p.version:
				stale++ // computed against the replaced model
				continue
			case gv > p.version:
				// The user stage adopted a version this partition has
				// not: adopt it first (its record may still be on its
				// way to this stage's watcher).
				ctx := p.ctx
				if ctx == nil {
					ctx = context.Background()
				}
				pr, err := p.proms.wait(ctx, gv, 30*time.Second)
				if err != nil {
					return err
				}
				if err := p.publish(b); err != nil {
					return err
				}
				if err := p.adopt(b, pr); err != nil {
					return err
				}
			}
		}
		if err == nil && len(r.Key) == 0 {
			err = fmt.Errorf("%w: no key", errBadEnvelope)
		}
		if err == nil && kind == KindImpressions && len(r.Value) != 4 {
			err = fmt.Errorf("%w: impression count of %d bytes", errBadEnvelope, len(r.Value))
		}
		if err == nil && kind != KindImpressions {
			if err = learner.DecodeItemGradient(r.Value, &p.g); err == nil && p.g.ItemID != string(r.Key) {
				err = fmt.Errorf("%w: gradient of item %q under key %q", errBadEnvelope, p.g.ItemID, r.Key)
			}
		}
		if err != nil {
			invalid++
			if invalid == 1 {
				p.log.Warn("item stage: skipping bad item-grads records", "partition", r.Partition, "offset", r.Offset, "err", err)
			}
			continue
		}
		it, err := p.item(b, string(r.Key))
		if err != nil {
			return err
		}
		if kind == KindImpressions {
			n := binary.LittleEndian.Uint32(r.Value)
			p.decay.add(&it.v.Impressions, &it.v.Popularity, &it.v.TsMillis, ts, float32(n))
			imps += int(n)
		} else {
			if err := p.mf.ApplyItemGradient(&it.row, &p.g); err != nil {
				// A gradient of another dimension (a user stage
				// running another --dim): skip and count.
				invalid++
				continue
			}
			if kind == KindPositive {
				p.decay.add(&it.v.Popularity, &it.v.Impressions, &it.v.TsMillis, ts, 1)
			} else {
				it.v.TsMillis = max(it.v.TsMillis, ts)
			}
			updates++
		}
		if r.Timestamp.After(newest) {
			newest = r.Timestamp
		}
	}
	if err := p.publish(b); err != nil {
		return err
	}
	p.m.updates.WithLabelValues("item").Add(float64(updates))
	p.m.records.WithLabelValues("item", "trained").Add(float64(updates))
	p.m.records.WithLabelValues("item", "impression").Add(float64(imps))
	p.m.records.WithLabelValues("item", "invalid").Add(float64(invalid))
	p.m.staleGrads.Add(float64(stale))
	if !newest.IsZero() {
		p.m.staleness.WithLabelValues("item").Set(max(0, time.Since(newest).Seconds()))
	}
	return nil
}

// item returns the batch's entry for id, reading it from state or creating
// it with the initial vector the user stage assumed.
func (p *itemProc) item(b batch, id string) (*itemEntry, error) {
	if it := p.items[id]; it != nil {
		return it, nil
	}
	var it *itemEntry
	if n := len(p.free); n > 0 {
		it, p.free = p.free[n-1], p.free[:n-1]
	} else {
		it = &itemEntry{}
	}
	it.key = id
	dim := p.cfg.MF.Dim
	v, ok, err := b.Get([]byte(id))
	if err != nil {
		return nil, fmt.Errorf("stage: read item state: %w", err)
	}
	fresh := !ok
	if ok {
		if err := modelrec.DecodeVector(v, &it.v); err != nil || it.v.Kind != modelrec.KindItem {
			return nil, fmt.Errorf("stage: item state of %q does not decode (kind %v): %w", id, it.v.Kind, err)
		}
		if len(it.v.Vec) != dim {
			p.log.Warn("item stage: stored item vector has another dimension; starting it over", "dim", len(it.v.Vec), "want", dim)
			fresh = true
		}
		if it.v.ModelVersion < p.version {
			fresh = true // not in the adopted version: the old vector is in the replaced space
		}
	} else {
		it.v.Popularity, it.v.Impressions, it.v.TsMillis = 0, 0, math.MinInt64
	}
	if fresh {
		if cap(it.v.Vec) < dim {
			it.v.Vec = make([]float32, dim)
		}
		it.v.Vec = it.v.Vec[:dim]
		learner.InitRow(p.itemSeed, id, p.cfg.MF.InitScale, it.v.Vec)
		it.v.Bias, it.v.Updates = 0, 0
	}
	it.v.Kind, it.v.Seen = modelrec.KindItem, it.v.Seen[:0]
	it.row = learner.Row{Vec: it.v.Vec, Bias: it.v.Bias, Count: uint32(min(it.v.Updates, math.MaxUint32))}
	p.items[id] = it
	p.dirty = append(p.dirty, it)
	return it, nil
}

// publish writes every item the batch changed to state, and those that
// have been trained at least once to model.items: an item known only from
// impressions has no learned vector for the scorer to rank by.
func (p *itemProc) publish(b batch) error {
	published := 0
	for _, it := range p.dirty {
		it.v.Bias, it.v.Updates = it.row.Bias, uint64(it.row.Count)
		it.v.ModelVersion = p.version
		if it.v.TsMillis == math.MinInt64 {
			it.v.TsMillis = 0
		}
		var err error
		if p.buf, err = modelrec.AppendVector(p.buf[:0], &it.v); err != nil {
			return fmt.Errorf("stage: item %q: %w", it.key, err)
		}
		key := []byte(it.key)
		if err := b.Put(key, p.buf); err != nil {
			return fmt.Errorf("stage: write item state: %w", err)
		}
		if it.v.Updates > 0 {
			b.Emit(p.cfg.Topics.ModelItems, key, p.buf)
			p.m.norms.WithLabelValues("item").Observe(norm(it.v.Vec))
			published++
		}
		delete(p.items, it.key)
		p.free = append(p.free, it)
	}
	p.m.published.WithLabelValues("item").Add(float64(published))
	clear(p.dirty)
	p.dirty = p.dirty[:0]
	return nil
}

// adopt makes promoted version pr this partition's item model in batch b:
// the version's items of the partition replace their vectors, biases and
// update counts, keeping the stage's decayed popularity and impressions.
func (p *itemProc) adopt(b batch, pr *promotion) error {
	ctx := p.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	part := batchPartition(b)
	start := time.Now()
	n := 0
	if rg, ok := pr.Published.ItemRanges[part]; ok {
		recs, err := readRange(ctx, p.opts, p.cfg.Topics.ModelItems, part, rg[0], rg[1])
		if err != nil {
			return err
		}
		var v, old modelrec.Vector
		for _, r := range recs {
			if recordVersion(r, 0) != pr.Version || r.Value == nil {
				continue
			}
			if err := modelrec.DecodeVector(r.Value, &v); err != nil || v.Kind != modelrec.KindItem || len(v.Vec) != p.cfg.MF.Dim {
				return fmt.Errorf("stage: version %d: item record at offset %d does not fit (dim %d, want %d): %v", pr.Version, r.Offset, len(v.Vec), p.cfg.MF.Dim, err)
			}
			if cur, ok, err := b.Get(r.Key); err != nil {
				return fmt.Errorf("stage: read item state: %w", err)
			} else if ok && modelrec.DecodeVector(cur, &old) == nil {
				v.Popularity, v.Impressions, v.TsMillis = old.Popularity, old.Impressions, max(old.TsMillis, v.TsMillis)
			}
			if p.buf, err = modelrec.AppendVector(p.buf[:0], &v); err != nil {
				return fmt.Errorf("stage: item %q: %w", r.Key, err)
			}
			if err := b.Put(r.Key, p.buf); err != nil {
				return fmt.Errorf("stage: write item state: %w", err)
			}
			n++
		}
	}
	prev := p.version
	p.version = pr.Version
	if err := saveAdopted(b, p.version, 0); err != nil {
		return err
	}
	p.m.adoptions.WithLabelValues("item").Inc()
	p.log.Info("item stage: adopted a promoted version", "partition", part, "model_version", p.version, "previous", prev,
		"items", n, "took", time.Since(start).Round(time.Millisecond))
	return nil
}
