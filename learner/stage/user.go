package stage

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/modelrec"
	"github.com/eddyrec/eddy/stream/task"
)

// Seed salts of learner.Model's initialisation (model.go): the stages must
// start users and items from the vectors the evaluated model starts from.
// TestMatchesModel fails if they drift apart.
const (
	userSeedSalt = 0x75736572 // "user"
	itemSeedSalt = 0x6974656d // "item"
)

// batch is the part of *task.Batch the processors use, so tests can drive
// them with an in-memory batch.
type batch interface {
	Get(key []byte) ([]byte, bool, error)
	Put(key, value []byte) error
	Emit(topic string, key, value []byte)
	EmitRecord(r *kgo.Record)
}

// itemSource gives the user stage the current vector of an item: the
// ItemReplica in production.
type itemSource interface {
	read(id string, row *learner.Row) bool
	count(id string) (uint32, bool)
}

// farFuture disables the event contract's future-skew rule when the stage
// decodes: events in Kafka were validated at ingest, and a rule that
// depends on the wall clock would make a replay decide differently.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// userEntry is one user's state while a batch runs.
type userEntry struct {
	key string
	v   modelrec.Vector // the stored and published record; v.Vec is row.Vec
	row learner.Row
}

// impCount sums one item's impressions in a batch.
type impCount struct {
	id       string
	n        uint32
	tsMillis int64
	kafkaTs  time.Time
}

// userProc is the user stage's processor for one partition.
type userProc struct {
	cfg      *Config
	mf       *learner.MF
	items    itemSource
	m        *metrics
	log      *slog.Logger
	dec      event.DecodeOptions
	userSeed uint64
	itemSeed uint64

	// Partition state kept across batches, loaded on the first batch.
	loaded bool
	cat    *catalogue
	smp    *sampler

	// Promotion (promotion.go): proms follows model.versions (nil: never
	// adopt), opts reach Kafka for the adoption's reads; version is the
	// partition's model version (0 until loaded), skipBelow the offset
	// under which events are already in the adopted batch model.
	proms     *promotions
	opts      []kgo.Opt
	ctx       context.Context
	version   uint64
	skipBelow int64

	// Per batch.
	users   map[string]*userEntry
	dirty   []*userEntry
	free    []*userEntry
	imps    map[string]int
	impList []impCount
	records []kgo.Record
	headers []kgo.RecordHeader
	arena   []byte
	buf     []byte

	// overlay holds this partition's view of the items it trained whose
	// latest gradients the replica does not have yet (see itemRow).
	overlay map[string]*learner.Row
	ovFree  []*learner.Row

	// Per event scratch, sized once.
	ex     []learner.Example
	exRows []learner.Row
	grads  []learner.ItemGradient
	du     []float32
}

func newUserProc(cfg *Config, mf *learner.MF, items itemSource, m *metrics, log *slog.Logger) *userProc {
	n := 1 + cfg.MF.Negatives
	p := &userProc{
		cfg: cfg, mf: mf, items: items, m: m, log: log,
		dec:      event.DecodeOptions{Now: func() time.Time { return farFuture }},
		userSeed: cfg.MF.Seed ^ userSeedSalt,
		itemSeed: cfg.MF.Seed ^ itemSeedSalt,
		users:    map[string]*userEntry{},
		imps:     map[string]int{},
		overlay:  map[string]*learner.Row{},
		ex:       make([]learner.Example, 0, n),
		exRows:   make([]learner.Row, n),
		grads:    make([]learner.ItemGradient, n),
		du:       make([]float32, cfg.MF.Dim),
	}
	for i := range p.exRows {
		p.exRows[i].Vec = make([]float32, cfg.MF.Dim)
		p.grads[i].Grad = make([]float32, cfg.MF.Dim)
	}
	return p
}

// Process implements task.Processor.
func (p *userProc) Process(ctx context.Context, recs []*kgo.Record, b *task.Batch) error {
	p.ctx = ctx
	return p.process(recs, b)
}

// load reads the partition's sampler and catalogue.
func (p *userProc) load(b batch) error {
	mf := &p.cfg.MF
	v, ok, err := b.Get(samplerKey)
	if err != nil {
		return fmt.Errorf("stage: read sampler state: %w", err)
	}
	p.cat = newCatalogue()
	if !ok {
		p.smp = newSampler(mf.NegativeWindow, mf.NegativeUniform, mf.Seed)
		p.loaded = true
		return nil
	}
	s, err := decodeSampler(v)
	if err != nil {
		return err
	}
	var key []byte
	for c := 0; c*catalogueChunk < s.catalog; c++ {
		key = catalogueChunkKey(key, c)
		v, ok, err := b.Get(key)
		if err != nil {
			return fmt.Errorf("stage: read catalogue chunk %d: %w", c, err)
		}
		if !ok {
			return fmt.Errorf("%w: chunk %d of a catalogue of %d is missing", errBadChunk, c, s.catalog)
		}
		if p.cat.ids, err = decodeChunk(v, p.cat.ids); err != nil {
			return fmt.Errorf("chunk %d: %w", c, err)
		}
	}
	if len(p.cat.ids) != s.catalog {
		return fmt.Errorf("%w: %d ids stored for a catalogue of %d", errBadChunk, len(p.cat.ids), s.catalog)
	}
	for i, id := range p.cat.ids {
		p.cat.index[id] = int32(i)
	}
	p.cat.stored = len(p.cat.ids)
	p.smp = s.adapt(mf.NegativeWindow, mf.NegativeUniform)
	p.loaded = true
	return nil
}

func (p *userProc) process(recs []*kgo.Record, b batch) error {
	if !p.loaded {
		if err := p.load(b); err != nil {
			return err
		}
	}
	if p.version == 0 {
		v, skip, err := loadAdopted(b, p.cfg.ModelVersion)
		if err != nil {
			return err
		}
		p.version, p.skipBelow = v, skip
	}
	if p.proms != nil && len(recs) > 0 {
		if pr := p.proms.Latest(); pr != nil && pr.Version > p.version {
			if err := p.adopt(b, pr, recs[0].Offset); err != nil {
				return err
			}
		}
	}
	return p.processEvents(recs, b)
}

// processEvents trains on recs and publishes what changed.
func (p *userProc) processEvents(recs []*kgo.Record, b batch) error {
	p.records, p.headers, p.arena = nil, nil, make([]byte, 0, 32<<10)
	var trained, seen, imps, invalid int
	var lossSum float64
	var newest time.Time
	for _, r := range recs {
		if r.Offset < p.skipBelow {
			continue // already learned by the adopted batch model
		}
		ev, err := event.Decode(r.Value, p.dec)
		if err != nil {
			invalid++
			if invalid == 1 {
				p.log.Warn("user stage: skipping records that are not valid events", "partition", r.Partition, "offset", r.Offset, "err", err)
			}
			continue
		}
		if r.Timestamp.After(newest) {
			newest = r.Timestamp
		}
		ts := ev.Time.UnixMilli()
		if ev.Type == event.Impression {
			p.addImpression(ev.ItemID, ts, r.Timestamp)
			imps++
			continue
		}
		u, err := p.user(b, ev.UserID)
		if err != nil {
			return err
		}
		p.noteSeen(u, ev.ItemID)
		u.v.TsMillis = max(u.v.TsMillis, ts)
		y, w := p.cfg.MF.Confidence.Signal(&ev)
		if w <= 0 {
			seen++
			continue
		}
		lossSum += p.learn(b, u, ev.ItemID, y, w, r, ts)
		trained++
	}
	for i := range p.impList {
		c := &p.impList[i]
		p.arena = binary.LittleEndian.AppendUint32(p.arena, c.n)
		p.emit(b, c.id, len(p.arena)-4, KindImpressions, c.tsMillis, c.kafkaTs)
	}
	if err := p.publish(b); err != nil {
		return err
	}
	if trained > 0 {
		if err := p.saveSampler(b); err != nil {
			return err
		}
	}
	p.pruneOverlay()
	clear(p.imps)
	clear(p.impList)
	p.impList = p.impList[:0]

	p.m.updates.WithLabelValues("user").Add(float64(trained))
	p.m.records.WithLabelValues("user", "trained").Add(float64(trained))
	p.m.records.WithLabelValues("user", "seen").Add(float64(seen))
	p.m.records.WithLabelValues("user", "impression").Add(float64(imps))
	p.m.records.WithLabelValues("user", "invalid").Add(float64(invalid))
	if trained > 0 {
		p.m.lossSum(lossSum, trained)
	}
	if !newest.IsZero() {
		p.m.staleness.WithLabelValues("user").Set(max(0, time.Since(newest).Seconds()))
	}
	return nil
}

// user returns the batch's entry for id, reading it from state on first use.
func (p *userProc) user(b batch, id string) (*userEntry, error) {
	if u := p.users[id]; u != nil {
		return u, nil
	}
	var u *userEntry
	if n := len(p.free); n > 0 {
		u, p.free = p.free[n-1], p.free[:n-1]
	} else {
		u = &userEntry{}
	}
	u.key = id
	dim := p.cfg.MF.Dim
	v, ok, err := b.Get([]byte(id))
	if err != nil {
		return nil, fmt.Errorf("stage: read user state: %w", err)
	}
	fresh := !ok
	if ok {
		if err := modelrec.DecodeVector(v, &u.v); err != nil || u.v.Kind != modelrec.KindUser {
			return nil, fmt.Errorf("stage: user state of %q does not decode (kind %v): %w", id, u.v.Kind, err)
		}
		if len(u.v.Vec) != dim {
			// The operator changed --dim: the old vector cannot be
			// used; the user starts over (the seen list stays).
			p.log.Warn("user stage: stored user vector has another dimension; starting it over", "dim", len(u.v.Vec), "want", dim)
			fresh = true
		}
		if u.v.ModelVersion < p.version {
			// Not in the adopted version (new since its data ended): the
			// vector lives in the replaced model's space.
			fresh = true
		}
	} else {
		u.v.Seen = u.v.Seen[:0]
		u.v.TsMillis = math.MinInt64
	}
	if fresh {
		if cap(u.v.Vec) < dim {
			u.v.Vec = make([]float32, dim)
		}
		u.v.Vec = u.v.Vec[:dim]
		learner.InitRow(p.userSeed, id, p.cfg.MF.UserInitScale, u.v.Vec)
		u.v.Updates = 0
	}
	u.v.Kind, u.v.Bias, u.v.Popularity, u.v.Impressions = modelrec.KindUser, 0, 0, 0
	u.row = learner.Row{Vec: u.v.Vec, Count: uint32(min(u.v.Updates, math.MaxUint32))}
	p.users[id] = u
	p.dirty = append(p.dirty, u)
	return u, nil
}

// noteSeen moves item to the newest end of u's seen list.
func (p *userProc) noteSeen(u *userEntry, item string) {
	if p.cfg.SeenItems == 0 {
		return
	}
	s := u.v.Seen
	for i, id := range s {
		if id == item {
			copy(s[i:], s[i+1:])
			s = s[:len(s)-1]
			break
		}
	}
	if len(s) >= p.cfg.SeenItems {
		n := copy(s, s[len(s)-p.cfg.SeenItems+1:])
		s = s[:n]
	}
	u.v.Seen = append(s, item)
}

// itemRow fills row with item id's current vector: the replica's, unless
// this partition's own recent gradients to the item are not in the
// replica yet (the overlay), or else the initial vector the item stage
// will create on its first gradient.
//
// The overlay gives the user stage read-your-writes on items, as
// learner.Model has event by event. Without it a partition would read the
// items as the replica has them, missing its own last batches' gradients;
// in a backlog (batches of thousands, the item stage and the replica
// behind) that costs much quality: on the end-to-end test's stream HR@10
// fell to half the in-memory model's. An overlay row is the replica's row
// plus this partition's gradients since, and its update count says how
// many updates it holds; once the replica's count reaches it, the item
// stage has applied at least as many gradients (ours, give or take
// interleaving with other partitions'), and the replica's row takes over.
// Nothing is counted twice: the overlay never leaves this processor.
func (p *userProc) itemRow(id string, row *learner.Row) {
	ov := p.overlay[id]
	if p.items != nil && p.items.read(id, row) {
		if ov == nil {
			return
		}
		if row.Count >= ov.Count {
			delete(p.overlay, id)
			p.ovFree = append(p.ovFree, ov)
			return
		}
	} else if ov == nil {
		learner.InitRow(p.itemSeed, id, p.cfg.MF.InitScale, row.Vec)
		row.Bias, row.Count = 0, 0
		return
	}
	copy(row.Vec, ov.Vec)
	row.Bias, row.Count = ov.Bias, ov.Count
}

// pruneOverlay drops the overlay rows the replica has caught up with, so
// the overlay holds only items with gradients in flight.
func (p *userProc) pruneOverlay() {
	if p.items == nil {
		return
	}
	for id, ov := range p.overlay {
		if c, ok := p.items.count(id); ok && c >= ov.Count {
			delete(p.overlay, id)
			p.ovFree = append(p.ovFree, ov)
		}
	}
}

// applyOverlay applies g to the batch's copy of its item, which starts as
// ex, the row UserStep read.
func (p *userProc) applyOverlay(ex *learner.Row, g *learner.ItemGradient) {
	ov := p.overlay[g.ItemID]
	if ov == nil {
		if n := len(p.ovFree); n > 0 {
			ov, p.ovFree = p.ovFree[n-1], p.ovFree[:n-1]
		} else {
			ov = &learner.Row{Vec: make([]float32, p.cfg.MF.Dim)}
		}
		copy(ov.Vec, ex.Vec)
		ov.Bias, ov.Count = ex.Bias, ex.Count
		p.overlay[g.ItemID] = ov
	}
	// Cannot fail: the gradient comes from this model's UserStep.
	_ = p.mf.ApplyItemGradient(ov, g)
}

// learn is learner.Model.Learn's recipe on the user's side: examples, the
// sampling correction, UserStep, and the gradients produced to item-grads
// instead of applied in place. It returns the event's loss before the step.
func (p *userProc) learn(b batch, u *userEntry, itemID string, y, w float32, r *kgo.Record, ts int64) float64 {
	mf := &p.cfg.MF
	i := p.cat.intern(itemID)
	p.smp.setCatalogSize(len(p.cat.ids))
	p.itemRow(itemID, &p.exRows[0])
	ex := append(p.ex[:0], learner.Example{ItemID: itemID, Item: &p.exRows[0], Label: y, Weight: w})
	var negs [64]int32 // MFConfig allows at most 64 negatives
	if y > 0 {
		nw := mf.NegWeight * min(w, 1)
		for range mf.Negatives {
			j, ok := p.smp.sample()
			if !ok || j == i {
				continue
			}
			row := &p.exRows[len(ex)]
			id := p.cat.ids[j]
			p.itemRow(id, row)
			negs[len(ex)-1] = j
			ex = append(ex, learner.Example{ItemID: id, Item: row, Label: 0, Weight: nw})
		}
	}
	if mf.SampleCorrection && mf.Negatives > 0 {
		for e := range ex {
			j := i
			if e > 0 {
				j = negs[e-1]
			}
			ex[e].Offset = p.smp.logitOffset(j)
		}
	}
	p.ex = ex
	loss := p.mf.Loss(&u.row, ex)
	p.mf.UserStep(&u.row, ex, p.grads, p.du)
	for e := range ex {
		g := &p.grads[e]
		g.Partition, g.Offset = r.Partition, r.Offset
		kind := KindSampled
		if e == 0 {
			kind = KindNegative
			if y > 0 {
				kind = KindPositive
			}
		}
		start := len(p.arena)
		// Cannot fail: UserStep fills every field within its rules, and
		// the step keeps values finite for finite inputs. A failure is a
		// broken invariant; the gradient is dropped and counted.
		var err error
		if p.arena, err = learner.AppendItemGradient(p.arena, g); err != nil {
			p.m.records.WithLabelValues("user", "bad_gradient").Inc()
			continue
		}
		p.emit(b, g.ItemID, start, kind, ts, r.Timestamp)
		p.applyOverlay(ex[e].Item, g)
	}
	if y > 0 {
		p.smp.observe(i)
	}
	return loss
}

func (p *userProc) addImpression(item string, ts int64, kts time.Time) {
	if k, ok := p.imps[item]; ok {
		c := &p.impList[k]
		c.n++
		c.tsMillis = max(c.tsMillis, ts)
		if kts.After(c.kafkaTs) {
			c.kafkaTs = kts
		}
		return
	}
	p.imps[item] = len(p.impList)
	p.impList = append(p.impList, impCount{id: item, n: 1, tsMillis: ts, kafkaTs: kts})
}

// emit hands the batch an item-grads record whose value is p.arena[start:].
// Records, headers and bytes come from per-batch slabs: the runtime owns
// them until it has produced them, so a slab is never reused.
func (p *userProc) emit(b batch, item string, start int, kind GradKind, ts int64, kts time.Time) {
	val := p.arena[start:len(p.arena):len(p.arena)]
	ks := len(p.arena)
	p.arena = append(p.arena, item...)
	key := p.arena[ks:len(p.arena):len(p.arena)]
	hs := len(p.arena)
	p.arena = appendGradHeader(p.arena, kind, ts)
	hv := p.arena[hs:len(p.arena):len(p.arena)]
	if len(p.headers) == cap(p.headers) {
		p.headers = make([]kgo.RecordHeader, 0, 256)
	}
	p.headers = append(p.headers, kgo.RecordHeader{Key: GradHeader, Value: hv})
	nh := 1
	if p.version != p.cfg.ModelVersion && p.version != 0 {
		// After an adoption: the item stage drops gradients of older
		// versions.
		if len(p.headers) == cap(p.headers) {
			p.headers = append(make([]kgo.RecordHeader, 0, 256), p.headers[len(p.headers)-1])
		}
		vs := len(p.arena)
		p.arena = strconv.AppendUint(p.arena, p.version, 10)
		p.headers = append(p.headers, kgo.RecordHeader{Key: VersionHeader, Value: p.arena[vs:len(p.arena):len(p.arena)]})
		nh = 2
	}
	if len(p.records) == cap(p.records) {
		p.records = make([]kgo.Record, 0, 256)
	}
	n := len(p.headers)
	p.records = append(p.records, kgo.Record{
		Topic: p.cfg.Topics.ItemGrads, Key: key, Value: val,
		Headers: p.headers[n-nh : n : n], Timestamp: kts,
	})
	b.EmitRecord(&p.records[len(p.records)-1])
}

// publish writes every user the batch changed to state and to model.users,
// once per batch however many events the user had.
func (p *userProc) publish(b batch) error {
	for _, u := range p.dirty {
		u.v.Updates = uint64(u.row.Count)
		u.v.ModelVersion = p.version
		var err error
		if p.buf, err = modelrec.AppendVector(p.buf[:0], &u.v); err != nil {
			// A non-finite factor: the SGD diverged for this user.
			// Publishing it would poison the scorer; stop instead.
			return fmt.Errorf("stage: user %q: %w", u.key, err)
		}
		key := []byte(u.key)
		if err := b.Put(key, p.buf); err != nil {
			return fmt.Errorf("stage: write user state: %w", err)
		}
		b.Emit(p.cfg.Topics.ModelUsers, key, p.buf)
		p.m.norms.WithLabelValues("user").Observe(norm(u.v.Vec))
		delete(p.users, u.key)
		p.free = append(p.free, u)
	}
	p.m.published.WithLabelValues("user").Add(float64(len(p.dirty)))
	clear(p.dirty)
	p.dirty = p.dirty[:0]
	return nil
}

// saveSampler writes the sampler and the catalogue chunks that grew.
func (p *userProc) saveSampler(b batch) error {
	var key []byte
	for c := p.cat.stored / catalogueChunk; c*catalogueChunk < len(p.cat.ids); c++ {
		ids := p.cat.ids[c*catalogueChunk : min(len(p.cat.ids), (c+1)*catalogueChunk)]
		p.buf = appendChunk(p.buf[:0], ids)
		key = catalogueChunkKey(key, c)
		if err := b.Put(key, p.buf); err != nil {
			return fmt.Errorf("stage: write catalogue: %w", err)
		}
	}
	p.cat.stored = len(p.cat.ids)
	p.buf = p.smp.appendState(p.buf[:0])
	if err := b.Put(samplerKey, p.buf); err != nil {
		return fmt.Errorf("stage: write sampler state: %w", err)
	}
	return nil
}

func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

// adopt makes promoted version pr this partition's model, in batch b whose
// first event is at offset first (see promotion.go): the version's users,
// then the events from its replay offset re-applied.
func (p *userProc) adopt(b batch, pr *promotion, first int64) error {
	ctx := p.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	part := batchPartition(b)
	start := time.Now()
	if pr.Published.Dim != p.cfg.MF.Dim {
		return fmt.Errorf("stage: version %d has %d dimensions, the learner %d: retrain with the learner's --dim", pr.Version, pr.Published.Dim, p.cfg.MF.Dim)
	}
	// The replay reads item vectors: the replica must hold the version's.
	if w, ok := p.items.(interface {
		waitPast(context.Context, uint64, map[int32][2]int64) error
	}); ok {
		if err := w.waitPast(ctx, pr.Version, pr.Published.ItemRanges); err != nil {
			return err
		}
	}
	users := 0
	if rg, ok := pr.Published.UserRanges[part]; ok {
		recs, err := readRange(ctx, p.opts, p.cfg.Topics.ModelUsers, part, rg[0], rg[1])
		if err != nil {
			return err
		}
		var v modelrec.Vector
		for _, r := range recs {
			if recordVersion(r, 0) != pr.Version || r.Value == nil {
				continue // a stage's record between the promotion's
			}
			if err := modelrec.DecodeVector(r.Value, &v); err != nil || v.Kind != modelrec.KindUser {
				return fmt.Errorf("stage: version %d: user record at offset %d does not decode: %v", pr.Version, r.Offset, err)
			}
			if err := b.Put(r.Key, r.Value); err != nil {
				return fmt.Errorf("stage: write user state: %w", err)
			}
			users++
		}
	}
	for id, ov := range p.overlay {
		delete(p.overlay, id)
		p.ovFree = append(p.ovFree, ov)
	}
	prev := p.version
	p.version = pr.Version
	cut, ok := pr.Data.ReplayOffsets[part]
	if !ok {
		cut = first
	}
	var replayed int
	if cut < first {
		recs, err := readRange(ctx, p.opts, p.cfg.Topics.Events, part, cut, first)
		if err != nil {
			return err
		}
		replayed = len(recs)
		p.skipBelow = 0
		if err := p.processEvents(recs, b); err != nil {
			return err
		}
	}
	// Events before the replay offset that this partition has not processed yet
	// (it lagged behind it) are in the batch model already.
	p.skipBelow = max(cut, 0)
	if err := saveAdopted(b, p.version, p.skipBelow); err != nil {
		return err
	}
	p.m.adoptions.WithLabelValues("user").Inc()
	p.log.Info("user stage: adopted a promoted version", "partition", part, "model_version", p.version, "previous", prev,
		"users", users, "replayed_events", replayed, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// batchPartition is the batch's partition (0 for test batches without one).
func batchPartition(b batch) int32 {
	if pb, ok := b.(interface{ Partition() int32 }); ok {
		return pb.Partition()
	}
	return 0
}
