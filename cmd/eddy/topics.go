package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/eddyrec/eddy/stream"
)

func newTopicsCommand() *ffcli.Command {
	return newGroupCommand("topics", "eddy topics <create|list> [flags]", "create or list Eddy's Kafka topics",
		newTopicsCreateCommand(), newTopicsListCommand())
}

func newTopicsCreateCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy topics create", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	kf := newKafkaFlags()
	kf.register(fs)
	return &ffcli.Command{
		Name:       "create",
		ShortUsage: "eddy topics create [flags]",
		ShortHelp:  "create Eddy's topics where missing (idempotent)",
		LongHelp: `Creates every topic Eddy uses, with the partition count, replication factor
and cleanup.policy of the layout (compacted where the value is the latest
state of a key). Existing topics are left as they are; a difference from the
layout is reported. Running it twice creates nothing the second time.`,
		FlagSet:   fs,
		Options:   ffOptions(),
		UsageFunc: usage,
		Exec: func(ctx context.Context, _ []string) error {
			log, err := startKafkaCommand(&common, kf)
			if err != nil {
				return err
			}
			closeBroker, err := kf.connect(log, false)
			if err != nil {
				return err
			}
			defer closeBroker()
			st, err := kf.ensureTopics(ctx, log)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tPOLICY\tACTION\tNOTE")
			for _, s := range st {
				action := "exists"
				if s.Created {
					action = "created"
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", s.Spec.Name, s.Partitions, s.Spec.CleanupPolicy(), action, s.Mismatch)
			}
			return tw.Flush()
		},
	}
}

func newTopicsListCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy topics list", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	kf := newKafkaFlags()
	kf.register(fs)
	var asJSON bool
	fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return &ffcli.Command{
		Name:       "list",
		ShortUsage: "eddy topics list [flags]",
		ShortHelp:  "list Eddy's topics with partitions, policy and record counts",
		FlagSet:    fs,
		Options:    ffOptions(),
		UsageFunc:  usage,
		Exec: func(ctx context.Context, _ []string) error {
			log, err := startKafkaCommand(&common, kf)
			if err != nil {
				return err
			}
			closeBroker, err := kf.connect(log, false)
			if err != nil {
				return err
			}
			defer closeBroker()
			cl, err := kf.client.NewClient()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			infos, err := stream.ListTopics(ctx, kadm.NewClient(cl), kf.client.TopicPrefix)
			if err != nil {
				return err
			}
			if asJSON {
				if infos == nil {
					infos = []stream.TopicInfo{}
				}
				return json.NewEncoder(os.Stdout).Encode(infos)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tRF\tPOLICY\tRECORDS")
			for _, t := range infos {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\n", t.Name, t.Partitions, t.ReplicationFactor, t.CleanupPolicy, t.Records)
			}
			return tw.Flush()
		},
	}
}
