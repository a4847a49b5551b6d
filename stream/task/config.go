package task

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/eddyrec/eddy/stream"
)

// WipePolicy says what a runtime does when the broker no longer holds what
// the local state was built from: the stored source offset is beyond the
// partition's end, the changelog is shorter than the local position, or the
// cluster id differs from the one stored with the state.
type WipePolicy int

const (
	// WipeFail stops the runtime with an error wrapping ErrBrokerWiped. It
	// is the default: resetting silently would reprocess or drop data.
	WipeFail WipePolicy = iota
	// WipeReset drops the affected local state and starts over from the
	// broker as it is now (what `eddy up` wants after its broker dir was
	// deleted).
	WipeReset
)

// ErrBrokerWiped means the local state belongs to a broker log that no
// longer exists (see WipePolicy).
var ErrBrokerWiped = errors.New("task: broker log was wiped or replaced: local state is ahead of it")

// Config configures a Runtime. Fill it from DefaultConfig.
type Config struct {
	// Client reaches Kafka.
	Client stream.ClientConfig
	// Group is the consumer group id; members of one group share the source
	// partitions.
	Group string
	// Store names the state; with Group it names the changelog topic
	// (<group>-<store>-changelog) and the transactional ids
	// (<group>-<store>-<partition>).
	Store string
	// Topic is the source topic.
	Topic string
	// DataDir holds the Badger store, in DataDir/<group>-<store>.
	DataDir string
	// InMemory keeps the state in a Go map instead of Badger, rebuilt from
	// the changelog at every start (Kafka Streams' in-memory stores): for
	// small state only, since a restart reads all of it back from Kafka and
	// it all stays in RAM. It saves an idle runtime Badger's background
	// work (two compactors waking every 50 ms), which for the drift role's
	// few-megabyte stages cost more CPU than their records. The changelog
	// it creates rolls 16 MiB segments hourly, so that compaction keeps a
	// restore near the live state's size. DataDir is not used.
	InMemory bool
	// ChangelogTopic overrides the changelog topic's name.
	ChangelogTopic string

	// MaxBatchRecords and MaxBatchBytes bound one batch (one Kafka
	// transaction, one Badger commit) by source records and source bytes.
	MaxBatchRecords int
	MaxBatchBytes   int
	// LocalFlushInterval and LocalFlushBytes bound the write-back of state
	// to the local store: changes committed to Kafka are written to Badger
	// at most this long after, or once this many bytes (values, keys and
	// index, estimated) are waiting, per partition. Longer means fewer Badger writes for keys
	// that change often, and a longer changelog catch-up after a crash.
	// Zero writes every batch.
	LocalFlushInterval time.Duration
	LocalFlushBytes    int
	// MemTableSize is Badger's memtable size. One Badger transaction holds
	// at most 15% of it; bigger batches are split (see doc.go).
	MemTableSize int64

	// FetchMinBytes and FetchMaxWait are the consumer's fetch settings: the
	// broker answers a fetch once FetchMinBytes are there or FetchMaxWait
	// has passed. Every batch is a Kafka transaction, so a runtime with a
	// thin input and no need for low latency (the drift role's) sets a
	// larger FetchMinBytes to gather its records into fewer, bigger
	// batches. Defaults 1 byte and 500 ms.
	FetchMinBytes int32
	FetchMaxWait  time.Duration

	// TransactionTimeout bounds an open Kafka transaction: a crashed owner's
	// transaction is aborted after it if no new owner fences it first.
	TransactionTimeout time.Duration
	// CommitTimeout bounds committing one batch before the runtime gives up.
	CommitTimeout time.Duration
	// SessionTimeout and RebalanceTimeout are the consumer group's.
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	// LagCommitInterval is how often durable offsets are committed to the
	// group, for lag monitoring only.
	LagCommitInterval time.Duration

	// InstanceID, when set, makes this member static (KIP-345): a process
	// restarted with the same id takes its partitions back at once,
	// without waiting for the session timeout or moving partitions.
	InstanceID string

	// OnBrokerWiped chooses between stopping and resetting (WipePolicy).
	OnBrokerWiped WipePolicy
	// ReplicationFactor of a changelog topic the runtime creates; 0 copies
	// the source topic's.
	ReplicationFactor int16

	// hooks are test-only crash points.
	hooks *hooks
}

// DefaultConfig returns the defaults: batches of at most 5,000 records or
// 4 MiB, local write-back every second, 16 MiB memtables, 30 s
// transactions.
func DefaultConfig() Config {
	return Config{
		Client:             stream.DefaultClientConfig(),
		MaxBatchRecords:    5000,
		MaxBatchBytes:      4 << 20,
		MemTableSize:       16 << 20,
		LocalFlushInterval: time.Second,
		LocalFlushBytes:    16 << 20,
		FetchMinBytes:      1,
		FetchMaxWait:       500 * time.Millisecond,
		TransactionTimeout: 30 * time.Second,
		CommitTimeout:      30 * time.Second,
		SessionTimeout:     45 * time.Second,
		RebalanceTimeout:   60 * time.Second,
		LagCommitInterval:  time.Second,
	}
}

// Validate checks the settings.
func (c *Config) Validate() error {
	switch {
	case c.Group == "":
		return errors.New("task: Group is required")
	case c.Store == "":
		return errors.New("task: Store is required")
	case c.Topic == "":
		return errors.New("task: Topic is required")
	case c.DataDir == "" && !c.InMemory:
		return errors.New("task: DataDir is required (or InMemory)")
	case c.FetchMinBytes < 1 || c.FetchMaxWait < time.Millisecond:
		return fmt.Errorf("task: FetchMinBytes %d / FetchMaxWait %v: want ≥ 1 / ≥ 1ms", c.FetchMinBytes, c.FetchMaxWait)
	case c.MaxBatchRecords < 1:
		return fmt.Errorf("task: MaxBatchRecords %d: want ≥ 1", c.MaxBatchRecords)
	case c.MaxBatchBytes < 1:
		return fmt.Errorf("task: MaxBatchBytes %d: want ≥ 1", c.MaxBatchBytes)
	case c.MemTableSize < 8<<20:
		// One Badger transaction holds 15% of a memtable and must fit
		// the largest value (MaxValueLen).
		return fmt.Errorf("task: MemTableSize %d: want ≥ 8 MiB", c.MemTableSize)
	case c.TransactionTimeout <= 0 || c.CommitTimeout <= 0 || c.SessionTimeout <= 0 ||
		c.RebalanceTimeout <= 0 || c.LagCommitInterval <= 0:
		return errors.New("task: timeouts and intervals must be positive")
	case c.LocalFlushInterval < 0 || c.LocalFlushBytes < 0:
		return errors.New("task: LocalFlushInterval and LocalFlushBytes must not be negative")
	case c.OnBrokerWiped != WipeFail && c.OnBrokerWiped != WipeReset:
		return fmt.Errorf("task: OnBrokerWiped %d: unknown policy", c.OnBrokerWiped)
	}
	for _, s := range []string{c.Group, c.Store} {
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				return fmt.Errorf("task: %q: only letters, digits, '.', '_' and '-' are allowed in Group and Store", s)
			}
		}
	}
	return nil
}

func (c *Config) changelogTopic() string {
	if c.ChangelogTopic != "" {
		return c.ChangelogTopic
	}
	return c.Group + "-" + c.Store + "-changelog"
}

func (c *Config) transactionalID(partition int32) string {
	return fmt.Sprintf("%s-%s-%d", c.Group, c.Store, partition)
}

func (c *Config) storeDir() string {
	return filepath.Join(c.DataDir, c.Group+"-"+c.Store)
}
