package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/drift"
	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/scorer/abtest"
	"github.com/eddyrec/eddy/stream"
)

// newReportCommand is `eddy report`, reports computed from the topics.
func newReportCommand() *ffcli.Command {
	return newGroupCommand("report", "eddy report <subcommand> [flags]", "reports computed from the topics (experiments)",
		newReportABCommand())
}

func newReportABCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy report ab", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	kf := newKafkaFlags()
	kf.register(fs)
	control := fs.String("control", "", "control variant the others are compared with (default: the first by name)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of the table")
	sinceFlag := fs.String("since", "", "count only lists served from this time on: RFC 3339, or a duration back from now such as 24h (default: all)")
	return &ffcli.Command{
		Name:       "ab",
		ShortUsage: "eddy report ab [--control NAME] [--json] [flags]",
		ShortHelp:  "per-variant impressions, CTR and watch time of an experiment (eddy serve --variants)",
		LongHelp: `Reads <prefix>recs (the served lists) and <prefix>events from the beginning
up to their end offsets at start (read_committed), joins each click and watch
event to the served list its request_id names, and prints per variant: lists
served (and how many were fallbacks), impressions (items served), clicks, CTR
with a 95% Wilson interval, watch seconds per impression with a 95% interval
clustered by list, and for every other variant the CTR difference against
the control with its 95% interval and the p-value of a pooled
two-proportion z-test.

Join rules: an event counts only if its request_id names a served list and
its item is in that list; a click counts at most once per (list, item);
events are de-duplicated by event_id; watch seconds (the event's value) add
up. Every list counts for its variant, fallback lists included. Both topics
are read whole; --since counts only the lists served from a time on (when
the experiment started).

Progress goes to stderr; the table or JSON to stdout.`,
		FlagSet:   fs,
		Options:   ffOptions(),
		UsageFunc: usage,
		Exec: func(ctx context.Context, _ []string) error {
			log, err := startKafkaCommand(&common, kf)
			if err != nil {
				return err
			}
			since, err := parseSince(*sinceFlag, time.Now())
			if err != nil {
				return usageError{err}
			}
			closeBroker, err := kf.connect(log, false)
			if err != nil {
				return err
			}
			defer closeBroker()
			return reportAB(ctx, kf.client, kf.layout, abOptions{control: *control, since: since, json: *asJSON}, os.Stdout, os.Stderr)
		},
	}
}

// abReport is the JSON of `eddy report ab --json`.
type abReport struct {
	Control  string                          `json:"control"`
	Variants map[string]abtest.VariantResult `json:"variants"`
	// Engagements counts the click and watch events with a request_id by
	// what the join did with them.
	Engagements map[string]int64 `json:"engagements"`
	// Lists counts the recs records read, invalid and duplicate.
	Lists struct {
		Read      int64 `json:"read"`
		Invalid   int64 `json:"invalid"`
		Duplicate int64 `json:"duplicate"`
		// BeforeSince were served before --since and not counted.
		BeforeSince int64 `json:"before_since"`
	} `json:"lists"`
}

// parseSince reads --since: empty (the zero time), an RFC 3339 time, or a
// positive duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time or a positive duration such as 24h", s)
}

// abOptions are the settings of reportAB.
type abOptions struct {
	control string    // control variant ("": the first by name)
	since   time.Time // count lists served at or after it (zero: all)
	json    bool      // one JSON object instead of the table
}

// reportAB reads the recs and events topics and writes the report to out,
// progress and the summary to errOut.
func reportAB(ctx context.Context, cc stream.ClientConfig, layout stream.TopicLayout, opt abOptions, out, errOut io.Writer) error {
	exp := abtest.New()
	var rep abReport
	recsTopic, eventsTopic := layout.Name(stream.TopicRecs), layout.Name(stream.TopicEvents)
	var items []string
	_, err := readTopicToEnd(ctx, cc, recsTopic, errOut, func(r *kgo.Record) {
		rep.Lists.Read++
		if !readableSchema(r, drift.ServedListSchemaHeaderValue) {
			rep.Lists.Invalid++
			return
		}
		l, err := drift.DecodeServedList(r.Value)
		if err != nil {
			rep.Lists.Invalid++
			return
		}
		if l.Time.Before(opt.since) {
			rep.Lists.BeforeSince++
			return
		}
		items = items[:0]
		for _, it := range l.Items {
			items = append(items, it.ItemID)
		}
		if !exp.AddList(l.RequestID, l.Variant, l.Fallback, items) {
			rep.Lists.Duplicate++
		}
	})
	if err != nil {
		return err
	}
	var events, invalid int64
	opts := event.DecodeOptions{}
	_, err = readTopicToEnd(ctx, cc, eventsTopic, errOut, func(r *kgo.Record) {
		events++
		if !readableSchema(r, event.SchemaHeaderValue) {
			invalid++
			return
		}
		e, err := event.Decode(r.Value, opts)
		if err != nil {
			invalid++
			return
		}
		if e.RequestID == "" {
			return
		}
		g := abtest.Engagement{EventID: e.EventID, RequestID: e.RequestID, ItemID: e.ItemID}
		switch e.Type {
		case event.Click:
			g.Kind = abtest.Click
		case event.Watch:
			g.Kind, g.Seconds = abtest.Watch, e.Value
		default:
			return
		}
		exp.AddEngagement(g)
	})
	if err != nil {
		return err
	}
	r, err := exp.Report(opt.control)
	if err != nil {
		return usageError{err}
	}
	rep.Control, rep.Variants, rep.Engagements = r.Control, r.Variants, exp.Outcomes()
	delete(rep.Engagements, "duplicate_list")
	o := rep.Engagements
	fmt.Fprintf(errOut, "report ab: %d served lists read from %s (%d invalid, %d duplicate, %d before --since), %d events from %s (%d invalid); clicks and watches answering a list: %d counted, %d duplicate events, %d repeat clicks, %d of unknown requests, %d of items not in their list\n",
		rep.Lists.Read, recsTopic, rep.Lists.Invalid, rep.Lists.Duplicate, rep.Lists.BeforeSince, events, eventsTopic, invalid,
		o["counted"], o["duplicate_event"], o["repeat_click"], o["unknown_request"], o["unknown_item"])
	if opt.json {
		if rep.Variants == nil {
			rep.Variants = map[string]abtest.VariantResult{}
		}
		b, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		_, err = out.Write(append(b, '\n'))
		return err
	}
	return writeABTable(out, r)
}

// readableSchema reports whether r's eddy-schema header, if any, is want.
func readableSchema(r *kgo.Record, want string) bool {
	for _, h := range r.Headers {
		if h.Key == event.SchemaHeader {
			return string(h.Value) == want
		}
	}
	return true
}

// writeABTable prints the report as an aligned table.
func writeABTable(w io.Writer, r abtest.Report) error {
	if len(r.Order) == 0 {
		_, err := fmt.Fprintln(w, "no served lists")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "variant\tlists\tfallback\timpressions\tclicks\tCTR\tCTR 95%% CI\twatch s/imp\t95%% CI\tΔCTR vs %s\t95%% CI\tp\n", r.Control)
	pct := func(x float64) string { return fmt.Sprintf("%.3f%%", 100*x) }
	pp := func(x float64) string { return fmt.Sprintf("%+.3fpp", 100*x) }
	for _, name := range r.Order {
		v := r.Variants[name]
		ctrCI, watchCI := "-", "-"
		if v.CTRCI != nil {
			ctrCI = "[" + pct(v.CTRCI[0]) + ", " + pct(v.CTRCI[1]) + "]"
		}
		if v.WatchCI != nil {
			watchCI = fmt.Sprintf("[%.2f, %.2f]", v.WatchCI[0], v.WatchCI[1])
		}
		diff, diffCI, p := "-", "-", "-"
		switch {
		case name == r.Control:
			diff = "(control)"
		case v.VsControl != nil:
			c := v.VsControl
			diff, diffCI, p = pp(c.CTRDiff), "["+pp(c.CTRDiffCI[0])+", "+pp(c.CTRDiffCI[1])+"]", fmt.Sprintf("%.3g", c.P)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%.2f\t%s\t%s\t%s\t%s\n", name, v.Lists, v.FallbackLists, v.Impressions, v.Clicks,
			pct(v.CTR), ctrCI, v.WatchPerImpression, watchCI, diff, diffCI, p)
	}
	return tw.Flush()
}

// readTopicToEnd reads topic from its first offsets up to the last stable
// offsets it has when called (read_committed: an open transaction does not
// hold it up), and calls each for every data record. Transaction markers
// take offsets too, so progress is tracked over them as well. Every
// 2 seconds it writes its progress to progress. It returns the data
// records read.
func readTopicToEnd(ctx context.Context, cc stream.ClientConfig, topic string, progress io.Writer, each func(*kgo.Record)) (int64, error) {
	cl, err := cc.NewClient(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	starts, err := adm.ListStartOffsets(lctx, topic)
	if err == nil {
		err = starts.Error()
	}
	var ends kadm.ListedOffsets
	if err == nil {
		ends, err = adm.ListCommittedOffsets(lctx, topic)
	}
	if err == nil {
		err = ends.Error()
	}
	cancel()
	if err != nil {
		return 0, fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	want := map[int32]int64{} // partition → end offset, until reached
	pos := map[int32]int64{}  // partition → next offset to read
	var total int64
	ends.Each(func(o kadm.ListedOffset) {
		s, _ := starts.Lookup(topic, o.Partition)
		if o.Offset > s.Offset {
			want[o.Partition], pos[o.Partition] = o.Offset, s.Offset
			total += o.Offset - s.Offset
		}
	})
	remaining := func() (n int64) {
		for p, end := range want {
			n += end - pos[p]
		}
		return n
	}
	var n int64
	start, last := time.Now(), time.Now()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return n, fmt.Errorf("read %s: %w", topic, ctx.Err())
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) {
			if ferr == nil && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("read %s partition %d: %w", topic, p, err)
			}
		})
		if ferr != nil {
			return n, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			pos[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				n++
				each(r)
			}
			if r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
		if time.Since(last) >= 2*time.Second {
			last = time.Now()
			done := total - remaining()
			fmt.Fprintf(progress, "report ab: %s: %d of %d offsets read (%.0f%%) in %v\n", topic, done, total,
				100*float64(done)/float64(max(total, 1)), time.Since(start).Round(time.Second))
		}
	}
	return n, nil
}
