package main

import (
	"context"
	"flag"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/eddyrec/eddy/stream"
)

func newBrokerCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy broker", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	kf := newKafkaFlags()
	fs.StringVar(&kf.embeddedAddr, "embedded-broker-addr", kf.embeddedAddr, "address to listen on")
	fs.StringVar(&kf.dataDir, "data-dir", kf.dataDir, "data directory (the log goes to <data-dir>/broker)")
	fs.BoolVar(&kf.syncWrites, "embedded-broker-sync", kf.syncWrites, "fsync every batch written (survives power loss, slower)")
	fs.IntVar(&kf.partitions, "partitions", kf.partitions, "partitions of the keyed topics it creates")
	fs.StringVar(&kf.client.TopicPrefix, "topic-prefix", kf.client.TopicPrefix, "prefix of every Eddy topic name")
	var noTopics bool
	fs.BoolVar(&noTopics, "no-topics", false, "do not create Eddy's topics at start")
	return &ffcli.Command{
		Name:       "broker",
		ShortUsage: "eddy broker [flags]",
		ShortHelp:  "run the embedded Kafka broker alone (kfake on a real TCP port)",
		LongHelp: `Runs the embedded broker, franz-go's kfake, on a real TCP port so that any
Kafka client (eddy, kcat, the Java client) can connect. Its log persists under
<data-dir>/broker, so a restart keeps topics, records and committed offsets.
Eddy's topics are created at start unless --no-topics.`,
		FlagSet:   fs,
		Options:   ffOptions(),
		UsageFunc: usage,
		Exec: func(ctx context.Context, _ []string) error {
			log, err := startKafkaCommand(&common, kf)
			if err != nil {
				return err
			}
			b, err := stream.StartEmbedded(stream.EmbeddedConfig{
				Addr:              kf.embeddedAddr,
				DataDir:           kf.brokerDir(),
				SyncWrites:        kf.syncWrites,
				DefaultPartitions: kf.partitions,
				Logger:            log,
			})
			if err != nil {
				return err
			}
			defer b.Close()
			kf.client.Brokers = []string{b.Addr()}
			if !noTopics {
				if _, err := kf.ensureTopics(ctx, log); err != nil {
					return err
				}
			}
			log.Info("broker ready", "addr", b.Addr())
			<-ctx.Done()
			log.Info("broker stopping")
			return nil
		},
	}
}
