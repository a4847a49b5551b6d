package features

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/eddyrec/eddy/stream/task"
)

// Config configures the process role (New): the two stages, their consumer
// groups, the snapshot throttle, the de-duplicator and the runtime.
type Config struct {
	// UserGroup and ItemGroup are the consumer groups of the user stage
	// (source: events) and the item stage (source: item updates).
	UserGroup string
	ItemGroup string
	// SnapshotInterval is the least time between two snapshots of one user
	// on the snapshot topic (see doc.go for the staleness bound).
	SnapshotInterval time.Duration
	// CacheStates bounds the decoded states each partition's processor
	// keeps between batches (users with an unpublished snapshot are kept
	// beyond it until published).
	CacheStates int
	// Dedup configures each user partition's de-duplicator.
	Dedup DedupConfig
	// ReadyMaxLag is the lag, in records per partition, under which the
	// role reports ready.
	ReadyMaxLag int64
	// DriftSample is the share of users whose events the user stage also
	// copies, unchanged, to DriftInput for the drift role (0, the default:
	// none). The users are chosen as task.Forwarder chooses them (FNV-1a
	// of the record key below DriftSample·2³²), so it must equal the drift
	// role's window sample: then the drift role reads the events of its
	// users from DriftInput instead of reading the whole events topic a
	// second time. The copies are produced in the batch's Kafka
	// transaction, so each appears once.
	DriftSample float64
	// DriftInput is the drift role's input topic; required when
	// DriftSample > 0. It must exist, with the events topic's partition
	// count, before the stage starts.
	DriftInput string
	// DriftHeaderKey and DriftHeaderValue are the one header of every copy
	// (the drift role's source header and its name for the events source;
	// set by the command, since features does not import drift).
	DriftHeaderKey, DriftHeaderValue string
	// Task is the base runtime configuration of both stages (batching,
	// write-back, timeouts, InstanceID, OnBrokerWiped). New sets its
	// Client, Group, Store, Topic and DataDir.
	Task task.Config
}

// Defaults of the process role.
const (
	DefaultUserGroup = "eddy-features-users"
	DefaultItemGroup = "eddy-features-items"
)

// DefaultConfig returns the defaults: groups eddy-features-users and
// eddy-features-items, one snapshot per user per second, 20,000 decoded
// states per partition, the default de-duplicator and runtime.
func DefaultConfig() Config {
	return Config{
		UserGroup:        DefaultUserGroup,
		ItemGroup:        DefaultItemGroup,
		SnapshotInterval: time.Second,
		CacheStates:      20000,
		Dedup:            DefaultDedupConfig(),
		ReadyMaxLag:      1000,
		Task:             task.DefaultConfig(),
	}
}

// RegisterFlags binds the settings users change to fs. The runtime's
// instance id and wiped-broker policy are shared by every role of a process
// and registered by the command.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.UserGroup, "features-user-group", c.UserGroup, "consumer group of the features user stage (source: events)")
	fs.StringVar(&c.ItemGroup, "features-item-group", c.ItemGroup, "consumer group of the features item stage (source: features.item-updates)")
	fs.DurationVar(&c.SnapshotInterval, "snapshot-interval", c.SnapshotInterval, "least time between two serving snapshots of one user on features.users")
	fs.IntVar(&c.CacheStates, "features-cache-states", c.CacheStates, "decoded user/item states kept in memory per partition")
	fs.DurationVar(&c.Dedup.TTL, "dedup-ttl", c.Dedup.TTL, "event-time window in which a repeated event_id is dropped")
	fs.IntVar(&c.Dedup.MaxIDs, "dedup-max-ids", c.Dedup.MaxIDs, "event ids remembered per partition (≈ 24 bytes each)")
	fs.IntVar(&c.Task.MaxBatchRecords, "features-batch-records", c.Task.MaxBatchRecords, "most source records per batch (one Kafka transaction)")
}

// Validate reports the first setting out of range.
func (c Config) Validate() error {
	switch {
	case c.UserGroup == "" || c.ItemGroup == "":
		return errors.New("features: --features-user-group and --features-item-group are required")
	case c.UserGroup == c.ItemGroup:
		return fmt.Errorf("features: user and item stages need different consumer groups (both %q)", c.UserGroup)
	case c.SnapshotInterval < 0 || c.SnapshotInterval > time.Hour:
		return fmt.Errorf("features: --snapshot-interval %v: want 0–1h", c.SnapshotInterval)
	case c.CacheStates < 1 || c.CacheStates > 10_000_000:
		return fmt.Errorf("features: --features-cache-states %d: want 1–10000000", c.CacheStates)
	case c.ReadyMaxLag < 0:
		return fmt.Errorf("features: ready max lag %d: want ≥ 0", c.ReadyMaxLag)
	case !(c.DriftSample >= 0 && c.DriftSample <= 1):
		return fmt.Errorf("features: drift sample %v: want 0–1", c.DriftSample)
	case c.DriftSample > 0 && (c.DriftInput == "" || c.DriftHeaderKey == ""):
		return errors.New("features: a drift sample needs the drift input topic and header")
	}
	if err := c.Dedup.Validate(); err != nil {
		return err
	}
	// The runtime validates the rest once New fills in the names.
	t := c.Task
	t.Group, t.Store, t.Topic, t.DataDir = c.UserGroup, "state", "x", "x"
	return t.Validate()
}
