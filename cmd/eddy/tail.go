package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/stream"
)

func newTailCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy tail", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	kf := newKafkaFlags()
	kf.register(fs)
	topic := fs.String("topic", stream.TopicEvents, "topic to read, relative to --topic-prefix")
	count := fs.Int("count", 0, "stop after this many records (0: follow until interrupted or --idle-timeout)")
	fromStart := fs.Bool("from-beginning", true, "read from the start of the topic (false: only new records)")
	idle := fs.Duration("idle-timeout", 0, "stop when no record arrives for this long (0: never)")
	return &ffcli.Command{
		Name:       "tail",
		ShortUsage: "eddy tail [--topic events] [--count N] [flags]",
		ShortHelp:  "read events from a topic the way Eddy reads them, and print them canonically",
		LongHelp: `Reads records of an events topic with Eddy's own decoder and validation
(records from any producer, such as kcat, with or without Eddy's schema
header), prints each valid event as canonical NDJSON on stdout, and reports
records that Eddy would not accept on stderr with their partition, offset and
the reason (never their content). Ends with a summary line on stderr.`,
		FlagSet:   fs,
		Options:   ffOptions(),
		UsageFunc: usage,
		Exec: func(ctx context.Context, _ []string) error {
			log, err := startKafkaCommand(&common, kf)
			if err != nil {
				return err
			}
			if *count < 0 || *idle < 0 {
				return usageError{errors.New("--count and --idle-timeout must not be negative")}
			}
			closeBroker, err := kf.connect(log, false)
			if err != nil {
				return err
			}
			defer closeBroker()
			start := kgo.NewOffset().AtEnd()
			if *fromStart {
				start = kgo.NewOffset().AtStart()
			}
			cl, err := kf.client.NewClient(
				kgo.ConsumeTopics(kf.layout.Name(*topic)),
				kgo.ConsumeResetOffset(start),
				kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			)
			if err != nil {
				return err
			}
			defer cl.Close()
			out := bufio.NewWriter(os.Stdout)
			defer out.Flush()
			var read, valid, invalid int
			var buf []byte
			opts := event.DecodeOptions{}
			for *count == 0 || read < *count {
				pctx := ctx
				var cancel context.CancelFunc = func() {}
				if *idle > 0 {
					pctx, cancel = context.WithTimeout(ctx, *idle)
				}
				fetches := cl.PollRecords(pctx, *count-read)
				timedOut := pctx.Err() != nil && ctx.Err() == nil
				cancel()
				if ctx.Err() != nil || (timedOut && fetches.NumRecords() == 0) {
					break
				}
				fetches.EachError(func(t string, p int32, err error) {
					if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
						log.Warn("fetch error", "topic", t, "partition", p, "err", err)
					}
				})
				fetches.EachRecord(func(r *kgo.Record) {
					if *count > 0 && read >= *count {
						return
					}
					read++
					var schema string
					for _, h := range r.Headers {
						if h.Key == event.SchemaHeader {
							schema = string(h.Value)
						}
					}
					if _, err := event.ParseSchemaHeader(schema); err != nil {
						invalid++
						log.Warn("record not readable", "partition", r.Partition, "offset", r.Offset, "err", err)
						return
					}
					opts.Now = time.Now
					e, err := event.Decode(r.Value, opts)
					if err != nil {
						invalid++
						log.Warn("invalid event", "partition", r.Partition, "offset", r.Offset, "err", err)
						return
					}
					valid++
					buf = e.AppendJSON(buf[:0])
					buf = append(buf, '\n')
					_, _ = out.Write(buf)
				})
				if *count == 0 {
					_ = out.Flush()
				}
			}
			if err := out.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "tail: %d records read, %d valid events, %d invalid\n", read, valid, invalid)
			return nil
		},
	}
}
