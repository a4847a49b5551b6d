package features

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// DedupConfig configures a Deduper.
type DedupConfig struct {
	// TTL is how long, in event time, an event id is remembered: at least
	// TTL of watermark advance after it was first seen, unless MaxIDs
	// forces it out earlier.
	TTL time.Duration
	// MaxIDs bounds the ids remembered (memory ≈ 24 bytes per id).
	MaxIDs int
	// SegmentSize is the number of ids per segment, the unit the Deduper
	// expires, evicts and persists.
	SegmentSize int
}

// DefaultDedupConfig returns TTL 1 h, MaxIDs 2^20 (≈ 24 MiB), SegmentSize
// 8192 (64 KiB encoded).
func DefaultDedupConfig() DedupConfig {
	return DedupConfig{TTL: time.Hour, MaxIDs: 1 << 20, SegmentSize: 8192}
}

// Validate reports a configuration the Deduper cannot run with.
func (c DedupConfig) Validate() error {
	switch {
	case c.TTL <= 0:
		return fmt.Errorf("features: dedup ttl %v: must be positive", c.TTL)
	case c.SegmentSize < 16 || c.SegmentSize > 1<<20:
		return fmt.Errorf("features: dedup segment size %d: want 16–1048576", c.SegmentSize)
	case c.MaxIDs < 2*c.SegmentSize:
		return fmt.Errorf("features: dedup max ids %d: want at least two segments (%d)", c.MaxIDs, 2*c.SegmentSize)
	}
	return nil
}

// DedupStats counts what a Deduper did since it was created or restored
// (counters are not persisted: they feed metrics, which restart with the
// process).
type DedupStats struct {
	Checked    uint64 // ids checked
	Duplicates uint64 // ids already remembered
	Expired    uint64 // ids forgotten because their TTL passed
	Evicted    uint64 // ids forgotten early to respect MaxIDs
	Remembered int    // ids remembered now
}

type dedupSegment struct {
	seq   uint64
	lastT int64 // the watermark when the last id was added
	ids   []uint64
	dirty bool
}

// Deduper remembers event ids (as 64-bit hashes) of one partition, bounded
// in count and in event time. Ids live in segments of SegmentSize in arrival
// order; a whole segment is forgotten when the watermark (the largest event
// time checked) has moved more than TTL past its last addition, or when the
// count exceeds MaxIDs (oldest first). One index answers membership in O(1).
//
// It persists by segments, so a checkpoint writes only what changed: see
// Flush and RestoreDeduper. It is not safe for concurrent use.
type Deduper struct {
	cfg       DedupConfig
	ttlMs     int64
	watermark int64
	started   bool
	segs      []*dedupSegment // oldest first; the last is open for additions
	nextSeq   uint64
	index     hashIndex
	removed   []uint64 // seqs dropped since the last Flush
	stats     DedupStats
}

// NewDeduper returns an empty Deduper.
func NewDeduper(cfg DedupConfig) (*Deduper, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Deduper{cfg: cfg, ttlMs: cfg.TTL.Milliseconds()}, nil
}

// Duplicate reports whether eventID was seen before (within the window) and
// remembers it otherwise. t is the event's time: it advances the watermark
// that expires old ids. Ids are compared by Hash64; two different ids
// collide with probability ≈ n²/2⁶⁵ over n ids (≈ 3·10⁻⁸ at 2^20).
func (d *Deduper) Duplicate(eventID string, t time.Time) bool {
	return d.DuplicateHash(Hash64(eventID), t.UnixMilli())
}

// DuplicateHash is Duplicate for a precomputed Hash64 and a unix-ms time.
func (d *Deduper) DuplicateHash(h uint64, ms int64) bool {
	d.stats.Checked++
	if !d.started || ms > d.watermark {
		d.watermark, d.started = ms, true
		d.expire()
	}
	if d.index.has(h) {
		d.stats.Duplicates++
		return true
	}
	if len(d.segs) == 0 || len(d.segs[len(d.segs)-1].ids) >= d.cfg.SegmentSize {
		if d.index.n+d.cfg.SegmentSize > d.cfg.MaxIDs {
			d.drop(&d.stats.Evicted)
		}
		d.segs = append(d.segs, &dedupSegment{seq: d.nextSeq, ids: make([]uint64, 0, d.cfg.SegmentSize)})
		d.nextSeq++
	}
	s := d.segs[len(d.segs)-1]
	s.ids = append(s.ids, h)
	s.lastT = d.watermark
	s.dirty = true
	d.index.add(h)
	return false
}

// expire forgets the segments, oldest first, whose last addition is more
// than TTL behind the watermark. The open segment goes too when it is that
// old: nothing was added to it for TTL.
func (d *Deduper) expire() {
	for len(d.segs) > 0 && d.watermark-d.segs[0].lastT > d.ttlMs {
		d.drop(&d.stats.Expired)
	}
}

func (d *Deduper) drop(counter *uint64) {
	s := d.segs[0]
	for _, h := range s.ids {
		d.index.del(h)
	}
	*counter += uint64(len(s.ids))
	d.segs[0] = nil
	d.segs = d.segs[1:]
	d.removed = append(d.removed, s.seq)
}

// Stats returns the counters.
func (d *Deduper) Stats() DedupStats {
	s := d.stats
	s.Remembered = d.index.n
	return s
}

// Flush calls fn for every segment changed since the last successful Flush —
// with its encoding, to be stored under seq — and for every segment dropped —
// with nil, to be deleted. data is valid only during the call. When fn
// returns an error, Flush stops and returns it, and the next Flush reports
// the same changes again. A checkpoint that stores these writes atomically
// with the partition's offset keeps the Deduper exact across crashes.
func (d *Deduper) Flush(fn func(seq uint64, data []byte) error) error {
	for len(d.removed) > 0 {
		if err := fn(d.removed[0], nil); err != nil {
			return err
		}
		d.removed = d.removed[1:]
	}
	var buf []byte
	for _, s := range d.segs {
		if !s.dirty {
			continue
		}
		buf = s.appendBinary(buf[:0])
		if err := fn(s.seq, buf); err != nil {
			return err
		}
		s.dirty = false
	}
	return nil
}

const dedupSegmentVersion = 1

// Segment layout (version 1): version u8, seq uvarint, lastT varint, count
// uvarint, count × u64 LE hashes (non-zero).
func (s *dedupSegment) appendBinary(dst []byte) []byte {
	dst = append(dst, dedupSegmentVersion)
	dst = appendUvarint(dst, s.seq)
	dst = appendVarint(dst, s.lastT)
	dst = appendUvarint(dst, uint64(len(s.ids)))
	for _, h := range s.ids {
		dst = appendU64(dst, h)
	}
	return dst
}

func decodeDedupSegment(data []byte, maxIDs int) (*dedupSegment, error) {
	r := reader{b: data}
	if v := r.byte("version"); r.err == nil && v != dedupSegmentVersion {
		return nil, fmt.Errorf("features: decode dedup segment: %w", corrupt("schema version %d, want %d", v, dedupSegmentVersion))
	}
	s := &dedupSegment{seq: r.uvarint("seq"), lastT: r.varint("last time")}
	n := r.count("id count", maxIDs, 8)
	if r.err == nil {
		s.ids = make([]uint64, n, max(n, 1))
		for i := range s.ids {
			if s.ids[i] = r.u64("id"); r.err == nil && s.ids[i] == 0 {
				r.fail("id: zero")
			}
		}
	}
	if err := r.done("dedup segment"); err != nil {
		return nil, err
	}
	return s, nil
}

// RestoreDeduper rebuilds a Deduper from the segments its Flush wrote (in
// any order). An id found in two segments (possible only if a delete was
// lost) is remembered once. The restored Deduper has nothing to flush.
func RestoreDeduper(cfg DedupConfig, segments [][]byte) (*Deduper, error) {
	d, err := NewDeduper(cfg)
	if err != nil {
		return nil, err
	}
	for i, data := range segments {
		s, err := decodeDedupSegment(data, cfg.MaxIDs)
		if err != nil {
			return nil, fmt.Errorf("features: restore dedup segment %d: %w", i, err)
		}
		d.segs = append(d.segs, s)
	}
	slices.SortFunc(d.segs, func(a, b *dedupSegment) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	for i, s := range d.segs {
		if i > 0 && d.segs[i-1].seq == s.seq {
			return nil, fmt.Errorf("features: restore dedup: %w", corrupt("segment %d twice", s.seq))
		}
		if !d.started || s.lastT > d.watermark {
			d.watermark, d.started = s.lastT, true
		}
		for _, h := range s.ids {
			d.index.add(h)
		}
		d.nextSeq = s.seq + 1
	}
	// Apply the current bounds: the configuration may have shrunk.
	d.expire()
	for d.index.n > cfg.MaxIDs {
		d.drop(&d.stats.Evicted)
	}
	return d, nil
}

// MarshalBinary encodes the whole Deduper (for a store that keeps it in one
// value): version u8 = 1, segment count uvarint, then each segment's
// encoding with a uvarint length prefix.
func (d *Deduper) MarshalBinary() ([]byte, error) {
	dst := []byte{1}
	dst = appendUvarint(dst, uint64(len(d.segs)))
	var buf []byte
	for _, s := range d.segs {
		buf = s.appendBinary(buf[:0])
		dst = appendUvarint(dst, uint64(len(buf)))
		dst = append(dst, buf...)
	}
	return dst, nil
}

// errNoConfig guards UnmarshalBinary on a Deduper not made by NewDeduper.
var errNoConfig = errors.New("features: dedup: UnmarshalBinary needs a Deduper from NewDeduper (it keeps the configuration)")

// UnmarshalBinary replaces d's contents with those encoded by MarshalBinary,
// keeping d's configuration. On error d is left unchanged.
func (d *Deduper) UnmarshalBinary(data []byte) error {
	if d.cfg.SegmentSize == 0 {
		return errNoConfig
	}
	r := reader{b: data}
	if v := r.byte("version"); r.err == nil && v != 1 {
		return fmt.Errorf("features: decode dedup: %w", corrupt("schema version %d, want 1", v))
	}
	n := r.count("segment count", d.cfg.MaxIDs/d.cfg.SegmentSize+1, 1)
	segs := make([][]byte, 0, n)
	for range n {
		segs = append(segs, r.bytes("segment", len(data)))
	}
	if err := r.done("dedup"); err != nil {
		return err
	}
	x, err := RestoreDeduper(d.cfg, segs)
	if err != nil {
		return err
	}
	*d = *x
	return nil
}
