package features

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/stream"
	"github.com/eddyrec/eddy/stream/task"
)

// Topics names the topics of the process role.
type Topics struct {
	Events      string // source of the user stage, keyed by user id
	DLQ         string // invalid records of Events go here, with the reason
	ItemUpdates string // user stage → item stage, keyed by item id
	Users       string // user snapshots, keyed by user id (compacted)
}

func (t Topics) validate() error {
	if t.Events == "" || t.DLQ == "" || t.ItemUpdates == "" || t.Users == "" {
		return errors.New("features: every topic name is required")
	}
	return nil
}

// State keys. The user stage's partition state holds the users, the
// de-duplicator's segments and their index; the item stage's the items.
const (
	keyUser      = 'u' // 'u' | user id → UserState
	keyItem      = 'i' // 'i' | item id → ItemState
	keyDedupSeg  = 'd' // 'd' | seq (u64 big-endian) → Deduper segment
	keyDedupList = 'D' // 'D' → dedup index (below)
)

// dedupIndexVersion is the first byte of the dedup index value: version,
// count uvarint, then the live segment seqs as uvarints, increasing. Batch
// has no range scan, so the index is how the first batch finds the segments.
const dedupIndexVersion = 1

// ErrNotReady is returned by the lookups when this instance holds no
// restored partition of the stage yet (or the stage stopped).
var ErrNotReady = errors.New("features: no partition of this stage is ready on this instance")

// Process is the `eddy process` role: the user stage and the item stage,
// each a stream/task runtime, and reads of their committed state.
type Process struct {
	cfg    Config
	topics Topics
	log    *slog.Logger
	m      *metrics

	users, items         *task.Runtime
	userViews, itemViews overlays

	stats struct {
		events, duplicates, invalid, itemUpdates, replays, snapshots, driftCopies atomic.Uint64
	}

	mu     sync.Mutex
	runErr error
	ran    bool
}

// Stats counts what the stages applied since New.
type Stats struct {
	Events      uint64 // events applied to users
	Duplicates  uint64 // events dropped as duplicates
	Invalid     uint64 // records sent to the DLQ (or skipped, item stage)
	ItemUpdates uint64 // item updates applied
	Replays     uint64 // item updates dropped as already applied
	Snapshots   uint64 // user snapshots published
	DriftCopies uint64 // events copied to the drift input (Config.DriftSample)
}

// Stats returns the counters. They count batches processed, including a
// last batch whose commit may still fail.
func (p *Process) Stats() Stats {
	return Stats{
		Events:      p.stats.events.Load(),
		Duplicates:  p.stats.duplicates.Load(),
		Invalid:     p.stats.invalid.Load(),
		ItemUpdates: p.stats.itemUpdates.Load(),
		Replays:     p.stats.replays.Load(),
		Snapshots:   p.stats.snapshots.Load(),
		DriftCopies: p.stats.driftCopies.Load(),
	}
}

// New opens the two stages' state stores under dataDir (in
// <dataDir>/<user group>-state and <dataDir>/<item group>-state; their
// changelogs are <group>-state-changelog) and registers the
// metrics on reg (nil: none). Run starts them.
func New(cfg Config, client stream.ClientConfig, topics Topics, dataDir string, reg prometheus.Registerer, log *slog.Logger) (*Process, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := topics.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	p := &Process{cfg: cfg, topics: topics, log: log.With("component", "features")}
	m, err := newMetrics(reg, p)
	if err != nil {
		return nil, err
	}
	p.m = m
	base := cfg.Task
	base.Client, base.DataDir = client, dataDir
	uc := base
	uc.Group, uc.Store, uc.Topic = cfg.UserGroup, "state", topics.Events
	if p.users, err = task.New(uc, p.newUserProc, reg, log); err != nil {
		return nil, fmt.Errorf("features: user stage: %w", err)
	}
	ic := base
	ic.Group, ic.Store, ic.Topic = cfg.ItemGroup, "state", topics.ItemUpdates
	if p.items, err = task.New(ic, p.newItemProc, reg, log); err != nil {
		return nil, fmt.Errorf("features: item stage: %w", err)
	}
	m.stateDirs = []string{filepath.Join(dataDir, uc.Group+"-"+uc.Store), filepath.Join(dataDir, ic.Group+"-"+ic.Store)}
	return p, nil
}

// Run runs both stages until ctx ends (then it returns nil after they
// committed their last batches) or one fails (then it stops the other and
// returns the error; a wiped broker under task.WipeFail wraps
// task.ErrBrokerWiped). It closes the state stores; a Process runs once.
func (p *Process) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.ran {
		p.mu.Unlock()
		return errors.New("features: Process.Run called twice")
	}
	p.ran = true
	p.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	run := func(name string, rt *task.Runtime) {
		err := rt.Run(ctx)
		if err != nil {
			err = fmt.Errorf("features: %s stage: %w", name, err)
			p.setErr(err)
		}
		cancel() // one stage stopping stops the other
		errs <- err
	}
	go run("user", p.users)
	go run("item", p.items)
	return errors.Join(<-errs, <-errs)
}

func (p *Process) setErr(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.runErr == nil {
		p.runErr = err
	}
}

// Ready is the readiness check: both stages joined their groups, restored
// every partition they hold, and lag at most ReadyMaxLag records.
func (p *Process) Ready(context.Context) error {
	p.mu.Lock()
	err := p.runErr
	p.mu.Unlock()
	switch {
	case err != nil:
		return fmt.Errorf("stopped: %w", err)
	case !p.users.Ready(p.cfg.ReadyMaxLag):
		return errors.New("user stage is joining, restoring or catching up")
	case !p.items.Ready(p.cfg.ReadyMaxLag):
		return errors.New("item stage is joining, restoring or catching up")
	}
	return nil
}

// Runtimes returns the user and item stage runtimes (status, tests).
func (p *Process) Runtimes() (users, items *task.Runtime) { return p.users, p.items }

// User returns the committed state of user id held by this instance.
// found is false for a user this instance does not know (it may live in a
// partition another instance holds); the error is ErrNotReady when no user
// partition is ready here.
func (p *Process) User(id string) (st UserState, found bool, err error) {
	v, found, err := lookup(p.users, &p.userViews, stateKey(keyUser, id))
	if err != nil || !found {
		return st, false, err
	}
	if err := st.UnmarshalBinary(v); err != nil {
		return st, false, fmt.Errorf("features: stored state of user %q: %w", id, err)
	}
	return st, true, nil
}

// Item returns the committed state of item id held by this instance (see
// User).
func (p *Process) Item(id string) (st ItemState, found bool, err error) {
	v, found, err := lookup(p.items, &p.itemViews, stateKey(keyItem, id))
	if err != nil || !found {
		return st, false, err
	}
	if err := st.UnmarshalBinary(v); err != nil {
		return st, false, fmt.Errorf("features: stored state of item %q: %w", id, err)
	}
	return st, true, nil
}

func stateKey(kind byte, id string) []byte {
	k := make([]byte, 0, 1+len(id))
	return append(append(k, kind), id...)
}

// lookup reads key from the partitions of rt held here: a partition's
// overlay first (committed values the local store may not have yet), then
// its local store. The records of a key are in one partition when every
// producer partitions by key alike, but that is not assumed: every held
// partition is searched.
func lookup(rt *task.Runtime, views *overlays, key []byte) ([]byte, bool, error) {
	if len(key) > task.MaxKeyLen {
		return nil, false, nil
	}
	ready := false
	for _, s := range rt.Status() {
		committed, ok := rt.Committed(s.Partition)
		if !ok {
			continue
		}
		ready = true
		if ov := views.get(s.Partition); ov != nil {
			if v, ok := ov.get(string(key), committed); ok {
				return v, true, nil
			}
		}
		v, found, _, err := rt.ReadStored(s.Partition, key)
		if errors.Is(err, task.ErrNotOwned) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		if found {
			return v, true, nil
		}
	}
	if !ready {
		return nil, false, ErrNotReady
	}
	return nil, false, nil
}

// userEntry is a decoded user state kept between batches.
type userEntry struct {
	id       string
	st       UserState
	lastSnap time.Time // when its last snapshot was emitted (wall clock)
	dirty    bool      // changed in the current batch
	pending  bool      // changed since its last snapshot
}

// userProc is the user stage's processor of one events partition.
type userProc struct {
	p         *Process
	partition int32
	ov        *overlay
	log       *slog.Logger

	cache   map[string]*userEntry
	pending map[string]*userEntry
	dirty   []*userEntry

	dedup     *Deduper
	dedupSeqs []uint64

	// drift copies the events of the drift role's sampled users to its
	// input topic (nil: Config.DriftSample is 0).
	drift *task.Forwarder

	dec     event.DecodeOptions
	recTime time.Time
	kbuf    []byte
	vbuf    []byte
	arenaN  int // last batch's encoded size, to size the next arena
	last    time.Time
}

func (p *Process) newUserProc(partition int32) (task.Processor, error) {
	u := &userProc{
		p:         p,
		partition: partition,
		ov:        newOverlay(),
		log:       p.log.With("stage", "user", "partition", partition),
		cache:     map[string]*userEntry{},
		pending:   map[string]*userEntry{},
	}
	// The future-skew rule is checked against the record's timestamp, not
	// the wall clock, so that a replay decides as the first pass did.
	u.dec.Now = func() time.Time { return u.recTime }
	if c := p.cfg; c.DriftSample > 0 {
		u.drift = task.NewForwarder(task.ForwardConfig{
			To:     c.DriftInput,
			Header: kgo.RecordHeader{Key: c.DriftHeaderKey, Value: []byte(c.DriftHeaderValue)},
			Sample: c.DriftSample,
			// As the drift role's own forwarder: a record without a key
			// is decoded to find its user; one that does not decode is
			// not copied.
			KeyOf: func(v []byte) ([]byte, bool) {
				e, err := event.Decode(v, event.DecodeOptions{})
				return []byte(e.UserID), err == nil
			},
			Observe: func(_, copied, _ int) {
				p.stats.driftCopies.Add(uint64(copied))
				p.m.driftCopies.Add(float64(copied))
			},
		})
	}
	p.userViews.set(partition, u.ov)
	return u, nil
}

// Close drops the partition's overlay: the partition left this instance.
func (u *userProc) Close() error {
	u.p.userViews.remove(u.partition, u.ov)
	u.p.m.pendingSnapshots.Sub(float64(len(u.pending)))
	return nil
}

// Process applies a batch of events: decode and validate (invalid records
// go to the DLQ), drop duplicates, apply to the user's state, forward an
// ItemUpdate; then store each changed user once, publish due snapshots and
// persist the de-duplicator's changed segments. With a drift sample it
// first copies the records of sampled users, every one as read (invalid
// records and duplicates too, as the drift role's own forwarder does: the
// drift role decodes and counts them), to the drift input topic.
func (u *userProc) Process(ctx context.Context, recs []*kgo.Record, b *task.Batch) error {
	m := u.p.m
	start := time.Now()
	if !u.last.IsZero() {
		m.batchCycle.Observe(start.Sub(u.last).Seconds())
	}
	u.last = start
	// Being called again means the previous batch committed.
	u.ov.promote()
	if _, _, stored, err := u.p.users.ReadStored(u.partition, nil); err == nil {
		u.ov.prune(stored)
	}
	if u.dedup == nil {
		if err := u.loadDedup(b); err != nil {
			return err
		}
	}
	if u.drift != nil {
		if err := u.drift.Process(ctx, recs, b); err != nil {
			return err
		}
	}
	var applied, dups, invalid, late, tooLate int
	for _, r := range recs {
		e, reason := u.decode(r)
		if reason != "" {
			invalid++
			u.deadLetter(b, r, reason)
			continue
		}
		if u.dedup.Duplicate(e.EventID, e.Time) {
			dups++
			continue
		}
		ent, err := u.entry(b, e.UserID)
		if err != nil {
			return err
		}
		if !ent.st.Empty() {
			if lateness := ent.st.lastSeen - e.Time.UnixMilli(); lateness > 0 {
				late++
				if lateness > allowedLatenessMs {
					tooLate++
				}
			}
		}
		if err := ent.st.Apply(&e); err != nil {
			// Decode validated the event; kept so a contract change
			// cannot stop the stage.
			invalid++
			u.deadLetter(b, r, err.Error())
			continue
		}
		applied++
		if !ent.dirty {
			ent.dirty = true
			u.dirty = append(u.dirty, ent)
		}
		upd := NewItemUpdate(&e, r.Partition, r.Offset)
		u.vbuf, _ = upd.AppendBinary(u.vbuf[:0])
		u.kbuf = append(u.kbuf[:0], e.ItemID...)
		b.Emit(u.p.topics.ItemUpdates, u.kbuf, u.vbuf)
	}
	if err := u.finish(b, recs[len(recs)-1].Offset+1); err != nil {
		return err
	}
	st := &u.p.stats
	st.events.Add(uint64(applied))
	st.duplicates.Add(uint64(dups))
	st.invalid.Add(uint64(invalid))
	m.events.applied.Add(float64(applied))
	m.events.duplicate.Add(float64(dups))
	m.events.invalid.Add(float64(invalid))
	m.late.Add(float64(late))
	m.tooLate.Add(float64(tooLate))
	m.processSeconds.Observe(time.Since(start).Seconds())
	return nil
}

// decode reads one record as an event; reason is non-empty when it is
// invalid.
func (u *userProc) decode(r *kgo.Record) (event.Event, string) {
	for _, h := range r.Headers {
		if h.Key == event.SchemaHeader {
			if _, err := event.ParseSchemaHeader(string(h.Value)); err != nil {
				return event.Event{}, err.Error()
			}
		}
	}
	u.recTime = r.Timestamp
	e, err := event.Decode(r.Value, u.dec)
	if err != nil {
		return e, err.Error()
	}
	return e, ""
}

var dlqHeaders = []kgo.RecordHeader{{Key: event.SchemaHeader, Value: []byte(event.DeadLetterSchemaHeaderValue)}}

// deadLetter sends an invalid record to the DLQ, inside the batch's
// transaction (so a replay does not send it twice), and logs it without its
// payload.
func (u *userProc) deadLetter(b *task.Batch, r *kgo.Record, reason string) {
	src := "kafka:" + r.Topic + "/" + strconv.Itoa(int(r.Partition)) + "@" + strconv.FormatInt(r.Offset, 10)
	dl := event.NewDeadLetter(reason, 0, r.Value, r.Timestamp, src)
	v, err := dl.MarshalJSON()
	if err != nil {
		u.log.Error("encoding a dead letter failed; the record is skipped", "offset", r.Offset, "err", err)
		return
	}
	b.EmitRecord(&kgo.Record{Topic: u.p.topics.DLQ, Key: slices.Clone(r.Key), Value: v, Headers: dlqHeaders})
	u.log.Warn("invalid record on the events topic sent to the DLQ", "offset", r.Offset, "reason", reason, "dlq", u.p.topics.DLQ)
}

// entry returns the cached state of user id, loading it on a miss.
func (u *userProc) entry(b *task.Batch, id string) (*userEntry, error) {
	if ent := u.cache[id]; ent != nil {
		return ent, nil
	}
	ent := &userEntry{id: id}
	u.kbuf = append(append(u.kbuf[:0], keyUser), id...)
	v, found, err := b.Get(u.kbuf)
	if err != nil {
		return nil, fmt.Errorf("features: load user %q: %w", id, err)
	}
	if found {
		if err := ent.st.UnmarshalBinary(v); err != nil {
			return nil, fmt.Errorf("features: stored state of user %q: %w", id, err)
		}
	}
	u.cache[id] = ent
	return ent, nil
}

// finish stores the batch's changed users, emits the due snapshots,
// persists the de-duplicator and bounds the cache. next is the source
// offset after the batch.
func (u *userProc) finish(b *task.Batch, next int64) error {
	m := u.p.m
	arena := make([]byte, 0, u.arenaN+u.arenaN/4+256)
	writes := make([]overlayWrite, 0, len(u.dirty))
	for _, ent := range u.dirty {
		off := len(arena)
		arena = append(arena, keyUser)
		arena = append(arena, ent.id...)
		kEnd := len(arena)
		var err error
		if arena, err = ent.st.AppendBinary(arena); err != nil {
			return fmt.Errorf("features: encode user %q: %w", ent.id, err)
		}
		key, val := arena[off:kEnd:kEnd], arena[kEnd:len(arena):len(arena)]
		if err := b.Put(key, val); err != nil {
			return fmt.Errorf("features: store user %q: %w", ent.id, err)
		}
		writes = append(writes, overlayWrite{key: string(key), val: val})
		ent.dirty = false
		if !ent.pending {
			ent.pending = true
			u.pending[ent.id] = ent
			m.pendingSnapshots.Inc()
		}
	}
	u.arenaN = len(arena)
	clear(u.dirty)
	u.dirty = u.dirty[:0]
	u.ov.setPending(writes, next)

	// Snapshots: a user whose last snapshot is at least SnapshotInterval
	// old gets one now; the others wait in pending for a later batch.
	now := time.Now()
	var snap UserSnapshot
	for id, ent := range u.pending {
		if now.Sub(ent.lastSnap) < u.p.cfg.SnapshotInterval {
			continue
		}
		snap = ent.st.Snapshot(id)
		u.vbuf, _ = snap.AppendBinary(u.vbuf[:0])
		u.kbuf = append(u.kbuf[:0], id...)
		b.Emit(u.p.topics.Users, u.kbuf, u.vbuf)
		ent.lastSnap, ent.pending = now, false
		delete(u.pending, id)
		m.pendingSnapshots.Dec()
		m.snapshots.Inc()
		u.p.stats.snapshots.Add(1)
	}

	if err := u.flushDedup(b); err != nil {
		return err
	}
	u.evict()
	return nil
}

// evict bounds the cache: it drops arbitrary entries (map order is random)
// that have no unpublished snapshot, down to 90% of CacheStates.
func (u *userProc) evict() {
	limit := u.p.cfg.CacheStates
	if len(u.cache) <= limit {
		return
	}
	target := limit - limit/10
	for id, ent := range u.cache {
		if len(u.cache) <= target {
			break
		}
		if !ent.pending {
			delete(u.cache, id)
		}
	}
}

func dedupSegKey(dst []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, keyDedupSeg), seq)
}

// loadDedup restores the partition's de-duplicator from its segments (on the
// first batch: the factory has no Batch to read with).
func (u *userProc) loadDedup(b *task.Batch) error {
	v, found, err := b.Get([]byte{keyDedupList})
	if err != nil {
		return fmt.Errorf("features: load dedup index: %w", err)
	}
	var segs [][]byte
	if found {
		seqs, err := decodeDedupIndex(v)
		if err != nil {
			return fmt.Errorf("features: partition %d: %w", u.partition, err)
		}
		for _, seq := range seqs {
			u.kbuf = dedupSegKey(u.kbuf[:0], seq)
			sv, ok, err := b.Get(u.kbuf)
			if err != nil {
				return fmt.Errorf("features: load dedup segment %d: %w", seq, err)
			}
			if !ok {
				return fmt.Errorf("features: partition %d: dedup segment %d listed in the index is missing", u.partition, seq)
			}
			segs = append(segs, sv)
		}
		u.dedupSeqs = seqs
	}
	d, err := RestoreDeduper(u.p.cfg.Dedup, segs)
	if err != nil {
		return fmt.Errorf("features: partition %d: %w", u.partition, err)
	}
	u.dedup = d
	if len(segs) > 0 {
		u.log.Info("de-duplicator restored", "segments", len(segs), "ids", d.Stats().Remembered)
	}
	return nil
}

// flushDedup writes the de-duplicator's changed segments, deletes dropped
// ones and rewrites the index when the set of segments changed.
func (u *userProc) flushDedup(b *task.Batch) error {
	changed := false
	err := u.dedup.Flush(func(seq uint64, data []byte) error {
		u.kbuf = dedupSegKey(u.kbuf[:0], seq)
		i, found := slices.BinarySearch(u.dedupSeqs, seq)
		if data == nil {
			if found {
				u.dedupSeqs = slices.Delete(u.dedupSeqs, i, i+1)
				changed = true
			}
			return b.Delete(u.kbuf)
		}
		if !found {
			u.dedupSeqs = slices.Insert(u.dedupSeqs, i, seq)
			changed = true
		}
		return b.Put(u.kbuf, data)
	})
	if err != nil {
		return fmt.Errorf("features: store dedup segments: %w", err)
	}
	if changed {
		if err := b.Put([]byte{keyDedupList}, appendDedupIndex(nil, u.dedupSeqs)); err != nil {
			return fmt.Errorf("features: store dedup index: %w", err)
		}
	}
	return nil
}

func appendDedupIndex(dst []byte, seqs []uint64) []byte {
	dst = append(dst, dedupIndexVersion)
	dst = appendUvarint(dst, uint64(len(seqs)))
	for _, s := range seqs {
		dst = appendUvarint(dst, s)
	}
	return dst
}

func decodeDedupIndex(data []byte) ([]uint64, error) {
	r := reader{b: data}
	if v := r.byte("version"); r.err == nil && v != dedupIndexVersion {
		return nil, fmt.Errorf("features: decode dedup index: %w", corrupt("schema version %d, want %d", v, dedupIndexVersion))
	}
	n := r.count("segment count", 1<<20, 1)
	seqs := make([]uint64, 0, n)
	for range n {
		s := r.uvarint("seq")
		if r.err == nil && len(seqs) > 0 && s <= seqs[len(seqs)-1] {
			r.fail("seqs: not increasing")
		}
		if r.err != nil {
			break
		}
		seqs = append(seqs, s)
	}
	if err := r.done("dedup index"); err != nil {
		return nil, err
	}
	return seqs, nil
}

// itemEntry is a decoded item state kept between batches.
type itemEntry struct {
	id    string
	st    ItemState
	dirty bool
}

// itemProc is the item stage's processor of one item-updates partition.
type itemProc struct {
	p         *Process
	partition int32
	ov        *overlay
	log       *slog.Logger
	cache     map[string]*itemEntry
	dirty     []*itemEntry
	kbuf      []byte
	arenaN    int
	last      time.Time
}

func (p *Process) newItemProc(partition int32) (task.Processor, error) {
	ip := &itemProc{
		p:         p,
		partition: partition,
		ov:        newOverlay(),
		log:       p.log.With("stage", "item", "partition", partition),
		cache:     map[string]*itemEntry{},
	}
	p.itemViews.set(partition, ip.ov)
	return ip, nil
}

// Close drops the partition's overlay.
func (ip *itemProc) Close() error {
	ip.p.itemViews.remove(ip.partition, ip.ov)
	return nil
}

// Process applies a batch of item updates; updates whose source offset an
// item already applied are counted as replays and dropped.
func (ip *itemProc) Process(_ context.Context, recs []*kgo.Record, b *task.Batch) error {
	m := ip.p.m
	start := time.Now()
	if !ip.last.IsZero() {
		m.itemBatchCycle.Observe(start.Sub(ip.last).Seconds())
	}
	ip.last = start
	ip.ov.promote()
	if _, _, stored, err := ip.p.items.ReadStored(ip.partition, nil); err == nil {
		ip.ov.prune(stored)
	}
	var applied, replays, invalid int
	var upd ItemUpdate
	for _, r := range recs {
		if err := upd.UnmarshalBinary(r.Value); err != nil {
			// Only the user stage writes this topic: a record that does
			// not decode is a bug or a foreign producer. Skip it loudly
			// rather than stop the stage.
			invalid++
			ip.log.Error("item update does not decode; skipped", "offset", r.Offset, "err", err)
			continue
		}
		ent, err := ip.entry(b, upd.ItemID)
		if err != nil {
			return err
		}
		ok, err := ent.st.ApplyUpdate(&upd)
		switch {
		case err != nil:
			invalid++
			ip.log.Error("item update rejected; skipped", "offset", r.Offset, "err", err)
			continue
		case !ok:
			replays++
			continue
		}
		applied++
		if !ent.dirty {
			ent.dirty = true
			ip.dirty = append(ip.dirty, ent)
		}
	}
	arena := make([]byte, 0, ip.arenaN+ip.arenaN/4+256)
	writes := make([]overlayWrite, 0, len(ip.dirty))
	for _, ent := range ip.dirty {
		off := len(arena)
		arena = append(arena, keyItem)
		arena = append(arena, ent.id...)
		kEnd := len(arena)
		var err error
		if arena, err = ent.st.AppendBinary(arena); err != nil {
			return fmt.Errorf("features: encode item %q: %w", ent.id, err)
		}
		key, val := arena[off:kEnd:kEnd], arena[kEnd:len(arena):len(arena)]
		if err := b.Put(key, val); err != nil {
			return fmt.Errorf("features: store item %q: %w", ent.id, err)
		}
		writes = append(writes, overlayWrite{key: string(key), val: val})
		ent.dirty = false
	}
	ip.arenaN = len(arena)
	clear(ip.dirty)
	ip.dirty = ip.dirty[:0]
	ip.ov.setPending(writes, recs[len(recs)-1].Offset+1)
	if limit := ip.p.cfg.CacheStates; len(ip.cache) > limit {
		for id := range ip.cache {
			if len(ip.cache) <= limit-limit/10 {
				break
			}
			delete(ip.cache, id)
		}
	}
	st := &ip.p.stats
	st.itemUpdates.Add(uint64(applied))
	st.replays.Add(uint64(replays))
	st.invalid.Add(uint64(invalid))
	m.itemUpdates.applied.Add(float64(applied))
	m.itemUpdates.replay.Add(float64(replays))
	m.itemUpdates.invalid.Add(float64(invalid))
	m.itemProcessSeconds.Observe(time.Since(start).Seconds())
	return nil
}

func (ip *itemProc) entry(b *task.Batch, id string) (*itemEntry, error) {
	if ent := ip.cache[id]; ent != nil {
		return ent, nil
	}
	ent := &itemEntry{id: id}
	ip.kbuf = append(append(ip.kbuf[:0], keyItem), id...)
	v, found, err := b.Get(ip.kbuf)
	if err != nil {
		return nil, fmt.Errorf("features: load item %q: %w", id, err)
	}
	if found {
		if err := ent.st.UnmarshalBinary(v); err != nil {
			return nil, fmt.Errorf("features: stored state of item %q: %w", id, err)
		}
	}
	ip.cache[id] = ent
	return ent, nil
}
