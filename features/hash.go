package features

// Hash64 is the 64-bit hash this package uses for item ids (the seen set and
// its digest), user ids (the distinct-user sketch) and event ids (the
// de-duplicator): FNV-1a over the bytes, then the MurmurHash3 64-bit
// finaliser so that every output bit depends on every input bit (FNV-1a alone
// has weak high bits for short inputs, and both the sketch and the digest
// index with high bits). It is part of the encodings: a scorer that tests an
// item against a SeenDigest must hash with this function. Zero is never
// returned, so zero can mark an empty slot.
func Hash64(s string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	h = mix64(h)
	if h == 0 {
		h = 1
	}
	return h
}

// mix64 is the MurmurHash3 fmix64 finaliser (a bijection on uint64).
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
