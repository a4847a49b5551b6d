package task

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
