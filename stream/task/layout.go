package task

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// On-disk and on-wire layouts. They are versioned by their first byte so a
// later release can read what an earlier one wrote; every decoder rejects
// what it does not understand instead of guessing.
//
// Badger keys (one DB per runtime and store, shared by its partitions):
//
//	's' | partition (uint32 big-endian) | state key   → state value
//	'm' | partition (uint32 big-endian)               → partition meta (below)
//	'g' | "cluster"                                   → Kafka cluster id the state belongs to
//	'g' | "source"                                    → source topic the state was built from
//
// Big-endian partition numbers keep each partition's keys contiguous, so a
// partition is dropped with one DropPrefix and scanned with one iterator.
//
// Partition meta value, layout version 1 (17 bytes):
//
//	[0]     1
//	[1:9]   next source offset to read, int64 little-endian (-1: none yet)
//	[9:17]  next changelog offset to read, int64 little-endian
//
// Changelog record keys (topic <group>-<store>-changelog, same partition):
//
//	's' | state key   value = state value, or nil (tombstone) for a delete
//	'c'               value = checkpoint (below); one key, so compaction keeps the newest
//
// Checkpoint value, layout version 1 (9 bytes):
//
//	[0]    1
//	[1:9]  next source offset to read after the batch, int64 little-endian
const (
	prefixState   = 's'
	prefixMeta    = 'm'
	prefixGlobal  = 'g'
	changelogKind = 's'
	checkpointKey = 'c'

	metaVersion       = 1
	metaLen           = 17
	checkpointVersion = 1
	checkpointLen     = 9

	// changelogSchema is the value of the eddy-schema header on changelog
	// records (the convention of event.SchemaHeader).
	changelogSchema = "changelog/v1"
	schemaHeader    = "eddy-schema"
)

// MaxKeyLen bounds state keys. Badger refuses keys over 65,000 bytes and the
// store adds a 5-byte prefix; Kafka has no tighter limit.
const MaxKeyLen = 60000

// MaxValueLen bounds one state value. It keeps a single value far below a
// Kafka record's default 1 MiB limit together with its key.
const MaxValueLen = 900 << 10

var (
	globalClusterKey = []byte("gcluster")
	globalSourceKey  = []byte("gsource")
)

// errCorrupt wraps every decoding failure.
var errCorrupt = errors.New("corrupt stored data")

// partitionMeta is what a task persists beside its state.
type partitionMeta struct {
	// SourceNext is the next source offset to read; -1 when the partition
	// has never committed a batch.
	SourceNext int64
	// ChangelogNext is the changelog offset from which a catch-up reads.
	ChangelogNext int64
}

func appendStateKey(dst []byte, partition int32, key []byte) []byte {
	dst = append(dst, prefixState)
	dst = binary.BigEndian.AppendUint32(dst, uint32(partition))
	return append(dst, key...)
}

func appendStateKeyString(dst []byte, partition int32, key string) []byte {
	dst = append(dst, prefixState)
	dst = binary.BigEndian.AppendUint32(dst, uint32(partition))
	return append(dst, key...)
}

func statePrefix(partition int32) []byte {
	return binary.BigEndian.AppendUint32([]byte{prefixState}, uint32(partition))
}

func metaKey(partition int32) []byte {
	return binary.BigEndian.AppendUint32([]byte{prefixMeta}, uint32(partition))
}

func (m partitionMeta) appendTo(dst []byte) []byte {
	dst = append(dst, metaVersion)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(m.SourceNext))
	return binary.LittleEndian.AppendUint64(dst, uint64(m.ChangelogNext))
}

func decodeMeta(b []byte) (partitionMeta, error) {
	if len(b) == 0 || b[0] != metaVersion {
		return partitionMeta{}, fmt.Errorf("partition meta: unknown layout version: %w", errCorrupt)
	}
	if len(b) != metaLen {
		return partitionMeta{}, fmt.Errorf("partition meta: %d bytes, want %d: %w", len(b), metaLen, errCorrupt)
	}
	m := partitionMeta{
		SourceNext:    int64(binary.LittleEndian.Uint64(b[1:9])),
		ChangelogNext: int64(binary.LittleEndian.Uint64(b[9:17])),
	}
	if m.SourceNext < -1 || m.ChangelogNext < 0 {
		return partitionMeta{}, fmt.Errorf("partition meta: negative offset: %w", errCorrupt)
	}
	return m, nil
}

func appendCheckpoint(dst []byte, sourceNext int64) []byte {
	dst = append(dst, checkpointVersion)
	return binary.LittleEndian.AppendUint64(dst, uint64(sourceNext))
}

func decodeCheckpoint(b []byte) (int64, error) {
	if len(b) == 0 || b[0] != checkpointVersion {
		return 0, fmt.Errorf("changelog checkpoint: unknown layout version: %w", errCorrupt)
	}
	if len(b) != checkpointLen {
		return 0, fmt.Errorf("changelog checkpoint: %d bytes, want %d: %w", len(b), checkpointLen, errCorrupt)
	}
	off := int64(binary.LittleEndian.Uint64(b[1:]))
	if off < 0 {
		return 0, fmt.Errorf("changelog checkpoint: negative offset: %w", errCorrupt)
	}
	return off, nil
}

// changelogEntry is one decoded changelog record.
type changelogEntry struct {
	// Checkpoint is true for a checkpoint record; SourceNext is then set.
	Checkpoint bool
	SourceNext int64
	// Key and Value are a state change (Value nil: delete). They alias the
	// record's bytes.
	Key, Value []byte
}

// decodeChangelog reads one changelog record's key and value.
func decodeChangelog(key, value []byte) (changelogEntry, error) {
	if len(key) == 0 {
		return changelogEntry{}, fmt.Errorf("changelog record without key: %w", errCorrupt)
	}
	switch key[0] {
	case checkpointKey:
		if len(key) != 1 {
			return changelogEntry{}, fmt.Errorf("changelog checkpoint key of %d bytes: %w", len(key), errCorrupt)
		}
		off, err := decodeCheckpoint(value)
		if err != nil {
			return changelogEntry{}, err
		}
		return changelogEntry{Checkpoint: true, SourceNext: off}, nil
	case changelogKind:
		k := key[1:]
		if len(k) == 0 || len(k) > MaxKeyLen {
			return changelogEntry{}, fmt.Errorf("changelog state key of %d bytes: %w", len(k), errCorrupt)
		}
		return changelogEntry{Key: k, Value: value}, nil
	default:
		return changelogEntry{}, fmt.Errorf("changelog key kind %q: %w", key[0], errCorrupt)
	}
}
