package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/eddyrec/eddy/stream"
)

// kafkaFlags are the Kafka settings of every command that talks to Kafka,
// including where the embedded broker runs when no --brokers are given.
type kafkaFlags struct {
	client       stream.ClientConfig
	embeddedAddr string
	dataDir      string
	syncWrites   bool
	// partitions and replicationFactor fill layout in validate.
	partitions        int
	replicationFactor int
	layout            stream.TopicLayout
}

func newKafkaFlags() *kafkaFlags {
	return &kafkaFlags{
		client:            stream.DefaultClientConfig(),
		embeddedAddr:      "127.0.0.1:9092",
		dataDir:           "./data",
		partitions:        6,
		replicationFactor: 1,
	}
}

func (k *kafkaFlags) register(fs *flag.FlagSet) {
	k.client.RegisterFlags(fs)
	fs.StringVar(&k.embeddedAddr, "embedded-broker-addr", k.embeddedAddr, "address of the embedded broker, started when no --brokers are given")
	fs.StringVar(&k.dataDir, "data-dir", k.dataDir, "data directory (embedded broker log under <data-dir>/broker)")
	fs.BoolVar(&k.syncWrites, "embedded-broker-sync", k.syncWrites, "fsync every batch the embedded broker writes (survives power loss, slower)")
	fs.IntVar(&k.partitions, "partitions", k.partitions, "partitions of the keyed topics when Eddy creates them")
	fs.IntVar(&k.replicationFactor, "replication-factor", k.replicationFactor, "replication factor of the topics Eddy creates")
}

func (k *kafkaFlags) validate() error {
	if k.partitions < 1 || k.partitions > 10000 || k.replicationFactor < 1 || k.replicationFactor > 100 {
		return usageError{fmt.Errorf("--partitions %d / --replication-factor %d out of range", k.partitions, k.replicationFactor)}
	}
	k.layout = stream.TopicLayout{Prefix: k.client.TopicPrefix, Partitions: int32(k.partitions), ReplicationFactor: int16(k.replicationFactor)}
	if err := k.client.Validate(); err != nil {
		return usageError{err}
	}
	if err := k.layout.Validate(); err != nil {
		return usageError{err}
	}
	return nil
}

// brokerDir is where the embedded broker keeps its log.
func (k *kafkaFlags) brokerDir() string { return filepath.Join(k.dataDir, "broker") }

// connect makes sure there is a broker to talk to. With --brokers it uses
// them. Without, it uses an embedded broker already listening on
// --embedded-broker-addr (another `eddy broker` or `eddy up`), or starts one
// in this process. The returned closer stops what connect started.
func (k *kafkaFlags) connect(log *slog.Logger, startIfMissing bool) (func(), error) {
	if len(k.client.Brokers) > 0 {
		return func() {}, nil
	}
	conn, err := net.DialTimeout("tcp", k.embeddedAddr, 300*time.Millisecond)
	if err == nil {
		conn.Close()
		log.Info("using the broker already listening on the embedded broker address", "addr", k.embeddedAddr)
		k.client.Brokers = []string{k.embeddedAddr}
		return func() {}, nil
	}
	if !startIfMissing {
		return nil, fmt.Errorf("no --brokers given and nothing listens on %s (start `eddy broker` or `eddy up`)", k.embeddedAddr)
	}
	b, err := stream.StartEmbedded(stream.EmbeddedConfig{
		Addr:              k.embeddedAddr,
		DataDir:           k.brokerDir(),
		SyncWrites:        k.syncWrites,
		DefaultPartitions: int(k.layout.Partitions),
		Logger:            log,
	})
	if err != nil {
		return nil, err
	}
	k.client.Brokers = []string{b.Addr()}
	return b.Close, nil
}

// ensureTopics creates Eddy's topics where missing and logs what it did.
func (k *kafkaFlags) ensureTopics(ctx context.Context, log *slog.Logger) ([]stream.TopicStatus, error) {
	cl, err := k.client.NewClient()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := stream.EnsureTopics(ctx, kadm.NewClient(cl), k.layout.Specs())
	if err != nil {
		return st, err
	}
	for _, s := range st {
		if s.Created {
			log.Info("topic created", "topic", s.Spec.Name, "partitions", s.Spec.Partitions, "cleanup_policy", s.Spec.CleanupPolicy())
		}
		if s.Mismatch != "" {
			log.Warn("topic differs from layout", "topic", s.Spec.Name, "detail", s.Mismatch)
		}
	}
	return st, nil
}

// startKafkaCommand is the first step of every command that talks to Kafka:
// the logger from the common flags, then the Kafka flags checked (which also
// fixes the topic layout).
func startKafkaCommand(common *commonFlags, kf *kafkaFlags) (*slog.Logger, error) {
	log, err := common.logger()
	if err != nil {
		return nil, err
	}
	if err := kf.validate(); err != nil {
		return nil, err
	}
	return log, nil
}
