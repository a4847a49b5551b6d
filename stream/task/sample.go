package task

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// KeySample is a share of keys chosen by hash: a key is in the sample when
// its SampleHash is below share·2³². Everything in Eddy that samples users
// for the drift role uses it with the user id as key — the drift role's
// partitions and forwarders, the process role's and the scorer's copies
// into the drift role's input — so that they all keep the same users.
type KeySample struct {
	all bool
	cut uint32
}

// NewKeySample returns the sample of share of keys: 1 (or more) keeps
// every key, 0 (or less) none.
func NewKeySample(share float64) KeySample {
	switch {
	case share >= 1:
		return KeySample{all: true}
	case share > 0:
		return KeySample{cut: uint32(share * (1 << 32))}
	}
	return KeySample{}
}

// Keeps reports whether key is in the sample.
func (s KeySample) Keeps(key []byte) bool { return s.all || fnv1a(key) < s.cut }

// KeepsString is Keeps of a string key, without converting it.
func (s KeySample) KeepsString(key string) bool { return s.all || fnv1a(key) < s.cut }

// SampleHash is the 32-bit FNV-1a hash of key that sampling compares with
// share·2³² (exported so that a reader can sample its own keys alike).
func SampleHash(key []byte) uint32 { return fnv1a(key) }

func fnv1a[K ~string | ~[]byte](key K) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return h
}

// Copier makes the copies of keyed records for another topic when their
// key is in a sample, each with one header saying where it came from: how
// the drift role's input is fed, by its forwarders, the process role's
// user stage (both through a Forwarder) and the scorer. A copy keeps its
// record's key, so the producer's key partitioner puts every copy of one
// key in one partition of the target, whoever produced it.
type Copier struct {
	to     string
	sample KeySample
	hdr    []kgo.RecordHeader
}

// NewCopier copies the records of share of keys to topic to, with header
// as their only header (none when its Key is empty).
func NewCopier(to string, share float64, header kgo.RecordHeader) *Copier {
	c := &Copier{to: to, sample: NewKeySample(share)}
	if header.Key != "" {
		c.hdr = []kgo.RecordHeader{header}
	}
	return c
}

// Copy returns the copy of the record (key, value, ts) for the target
// topic, or nil when key is not in the sample. The copy shares key and
// value (producers only read them); a zero ts leaves the time to the
// producer.
func (c *Copier) Copy(key, value []byte, ts time.Time) *kgo.Record {
	if !c.sample.Keeps(key) {
		return nil
	}
	return &kgo.Record{Topic: c.to, Key: key, Value: value, Timestamp: ts, Headers: c.hdr}
}
