package stage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/eddyrec/eddy/learner/modelrec"
)

// State keys of a user-stage partition besides the users themselves (whose
// key is the user id). They start with 0x00, which the event contract
// forbids in ids, so they cannot collide with a user.
var (
	samplerKey = []byte{0, 's'}
	// catalogue chunk i is under catalogueKey + uint32 BE i.
	catalogueKey = []byte{0, 'c'}
	// adoptedKey holds the model version the partition adopted last
	// (uint64 LE); absent: Config.ModelVersion, nothing adopted.
	adoptedKey = []byte{0, 'v'}
)

// maxSeen bounds Config.SeenItems by what a user record can carry.
const maxSeen = modelrec.MaxSeen

// catalogueChunk is how many item ids one catalogue state value holds: the
// last chunk is rewritten as the catalogue grows, so chunks stay small.
const catalogueChunk = 256

// catalogue is a user-stage partition's item catalogue: the items of its
// training events in order of first sight, the index space of its negative
// sampler (as learner.Catalog is learner.Model's). It is part of the
// partition's state, so indices survive restarts unchanged.
type catalogue struct {
	ids   []string
	index map[string]int32
	// stored is how many ids are in the state already.
	stored int
}

func newCatalogue() *catalogue { return &catalogue{index: map[string]int32{}} }

func (c *catalogue) intern(id string) int32 {
	if i, ok := c.index[id]; ok {
		return i
	}
	i := int32(len(c.ids))
	c.ids = append(c.ids, id)
	c.index[id] = i
	return i
}

func catalogueChunkKey(dst []byte, chunk int) []byte {
	dst = append(dst[:0], catalogueKey...)
	return binary.BigEndian.AppendUint32(dst, uint32(chunk))
}

// appendChunk encodes ids as a count (uint16 LE) and, per id, a uint16 LE
// length and the bytes.
func appendChunk(dst []byte, ids []string) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(ids)))
	for _, id := range ids {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(len(id)))
		dst = append(dst, id...)
	}
	return dst
}

var errBadChunk = errors.New("stage: bad catalogue chunk")

// decodeChunk appends the ids of one chunk to ids.
func decodeChunk(b []byte, ids []string) ([]string, error) {
	if len(b) < 2 {
		return ids, fmt.Errorf("%w: %d bytes", errBadChunk, len(b))
	}
	n := int(binary.LittleEndian.Uint16(b))
	if n < 1 || n > catalogueChunk {
		return ids, fmt.Errorf("%w: %d ids", errBadChunk, n)
	}
	p := b[2:]
	for i := range n {
		if len(p) < 2 {
			return ids, fmt.Errorf("%w: id %d truncated", errBadChunk, i)
		}
		l := int(binary.LittleEndian.Uint16(p))
		if l < 1 || l > modelrec.MaxIDLen || len(p) < 2+l {
			return ids, fmt.Errorf("%w: id %d of %d bytes, %d left", errBadChunk, i, l, len(p)-2)
		}
		id := string(p[2 : 2+l])
		if !utf8.ValidString(id) {
			return ids, fmt.Errorf("%w: id %d is not UTF-8", errBadChunk, i)
		}
		ids = append(ids, id)
		p = p[2+l:]
	}
	if len(p) != 0 {
		return ids, fmt.Errorf("%w: %d trailing bytes", errBadChunk, len(p))
	}
	return ids, nil
}

// Record envelope on item-grads: the header GradHeader carries the kind and
// the event time.
const (
	// GradHeader is the Kafka header key of every item-grads record.
	GradHeader = "eddy-grad"
	// GradHeaderLen is its value's length: kind (1 byte), event time
	// (int64 unix ms, little-endian).
	GradHeaderLen = 9
)

// GradKind says what an item-grads record carries.
type GradKind byte

// Kinds of item-grads records.
const (
	// KindPositive: the gradient of the event's own item, positive event
	// (it also counts towards the item's popularity).
	KindPositive GradKind = 'p'
	// KindNegative: the gradient of the event's own item, negative event
	// (dislike, skip, abandoned watch, low rating).
	KindNegative GradKind = 'n'
	// KindSampled: the gradient of a popularity-sampled negative.
	KindSampled GradKind = 's'
	// KindImpressions: no gradient; the value is a uint32 LE count of
	// impressions of the item in one user-stage batch.
	KindImpressions GradKind = 'i'
)

func (k GradKind) valid() bool {
	switch k {
	case KindPositive, KindNegative, KindSampled, KindImpressions:
		return true
	}
	return false
}

var errBadEnvelope = errors.New("stage: bad item-grads header")

// appendGradHeader encodes the header value.
func appendGradHeader(dst []byte, k GradKind, tsMillis int64) []byte {
	dst = append(dst, byte(k))
	return binary.LittleEndian.AppendUint64(dst, uint64(tsMillis))
}

// decodeGradHeader parses the header value.
func decodeGradHeader(v []byte) (GradKind, int64, error) {
	if len(v) != GradHeaderLen {
		return 0, 0, fmt.Errorf("%w: %d bytes, want %d", errBadEnvelope, len(v), GradHeaderLen)
	}
	k := GradKind(v[0])
	if !k.valid() {
		return 0, 0, fmt.Errorf("%w: kind %q", errBadEnvelope, v[0])
	}
	return k, int64(binary.LittleEndian.Uint64(v[1:])), nil
}

// decayed keeps an item's popularity and impressions as of tsMillis, the
// newest event time applied; adding at an older time decays the addition
// instead, so the result does not depend on arrival order.
type decayed struct {
	halfLifeMillis float64
}

// add adds w to *count at event time t, moving *ts forward (and decaying
// the other count, *other, with it).
func (d decayed) add(count, other *float32, ts *int64, t int64, w float32) {
	switch {
	case *count == 0 && *other == 0:
		*count, *ts = w, max(*ts, t)
	case t > *ts:
		f := float32(math.Exp2(-float64(t-*ts) / d.halfLifeMillis))
		*count, *other, *ts = *count*f+w, *other*f, t
	case t == *ts:
		*count += w
	default:
		*count += w * float32(math.Exp2(-float64(*ts-t)/d.halfLifeMillis))
	}
}
