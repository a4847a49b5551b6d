package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/eddyrec/eddy/retrain"
	"github.com/eddyrec/eddy/stream"
)

func newModelCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy model", flag.ContinueOnError)
	return &ffcli.Command{
		Name:        "model",
		ShortUsage:  "eddy model list [--json] | eddy model show V | eddy model rollback V",
		ShortHelp:   "list, inspect and roll back the model versions the retrain role produced",
		FlagSet:     fs,
		UsageFunc:   usage,
		Subcommands: []*ffcli.Command{newModelListCommand(), newModelShowCommand(), newModelRollbackCommand()},
		Exec: func(context.Context, []string) error {
			return usageError{fmt.Errorf("a subcommand is needed: list, show or rollback")}
		},
	}
}

// readVersions connects and reads <prefix>model.versions.
func readVersions(ctx context.Context, common *commonFlags, kf *kafkaFlags) (*retrain.History, error) {
	log, err := startKafkaCommand(common, kf)
	if err != nil {
		return nil, err
	}
	closeBroker, err := kf.connect(log, false)
	if err != nil {
		return nil, err
	}
	defer closeBroker()
	opts, err := kf.client.Opts()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return retrain.ReadHistory(ctx, opts, kf.layout.Name(stream.TopicModelVersions), log)
}

func newModelListCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy model list", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	kf := newKafkaFlags()
	kf.register(fs)
	asJSON := fs.Bool("json", false, "print every version record as a JSON array")
	return &ffcli.Command{
		Name:       "list",
		ShortUsage: "eddy model list [--json]",
		ShortHelp:  "list every version: decision, trigger, gate metrics, which one is live",
		FlagSet:    fs,
		Options:    ffOptions(),
		UsageFunc:  usage,
		Exec: func(ctx context.Context, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			h, err := readVersions(ctx, &common, kf)
			if err != nil {
				return err
			}
			return printVersions(os.Stdout, h, *asJSON)
		},
	}
}

// printVersions writes the history as a table (or JSON).
func printVersions(w io.Writer, h *retrain.History, asJSON bool) error {
	if asJSON {
		all := h.All()
		if all == nil {
			all = []*retrain.Version{}
		}
		b, err := json.MarshalIndent(all, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	live := h.LiveVersion()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tLIVE\tDECISION\tTRIGGER\tPARENT\tHR@10\tCHAMPION HR@10\tHOLDOUT USERS\tFINISHED")
	if live == retrain.InitialVersion {
		fmt.Fprintf(tw, "%d\t*\t-\tonline\t-\t-\t-\t-\t-\n", retrain.InitialVersion)
	}
	for _, v := range h.All() {
		mark, hr, champ, users := "", "-", "-", "-"
		if v.Version == live {
			mark = "*"
		}
		if v.Challenger != nil {
			hr = fmt.Sprintf("%.4f", v.Challenger.HR)
		}
		if v.Champion != nil {
			champ = fmt.Sprintf("%.4f", v.Champion.HR)
		}
		if v.Data != nil {
			users = strconv.Itoa(v.Data.HoldoutUsers)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", v.Version, mark, v.Decision, v.Trigger, v.Parent, hr, champ, users,
			v.Finished.Format(time.RFC3339))
	}
	return tw.Flush()
}

func newModelShowCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy model show", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	kf := newKafkaFlags()
	kf.register(fs)
	asJSON := fs.Bool("json", false, "print the version record as JSON")
	return &ffcli.Command{
		Name:       "show",
		ShortUsage: "eddy model show V [--json]",
		ShortHelp:  "show one version: data range, hyperparameters, both models' metrics, the decision and why",
		FlagSet:    fs,
		Options:    ffOptions(),
		UsageFunc:  usage,
		Exec: func(ctx context.Context, args []string) error {
			n, err := versionArg(args)
			if err != nil {
				return err
			}
			h, err := readVersions(ctx, &common, kf)
			if err != nil {
				return err
			}
			v := h.Get(n)
			if v == nil {
				return fmt.Errorf("no version %d (eddy model list shows them)", n)
			}
			if *asJSON {
				b, err := json.MarshalIndent(v, "", "  ")
				if err != nil {
					return err
				}
				fmt.Printf("%s\n", b)
				return nil
			}
			printVersion(os.Stdout, v)
			return nil
		},
	}
}

func versionArg(args []string) (uint64, error) {
	if len(args) != 1 {
		return 0, usageError{fmt.Errorf("want one version number")}
	}
	n, err := strconv.ParseUint(args[0], 10, 64)
	if err != nil || n == 0 {
		return 0, usageError{fmt.Errorf("version %q: want a positive number", args[0])}
	}
	return n, nil
}

func newModelRollbackCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy model rollback", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	kf := newKafkaFlags()
	kf.register(fs)
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for the retrain role to publish the rollback")
	asJSON := fs.Bool("json", false, "print the new version record as JSON")
	return &ffcli.Command{
		Name:       "rollback",
		ShortUsage: "eddy model rollback V",
		ShortHelp:  "serve version V's vectors again, as a new version whose parent is V (no gate)",
		LongHelp: `Asks the retrain role to publish the snapshot of promoted version V (kept
under <archive>/models/V/) as a new version whose parent is V, through the same
path as a promotion: the stages adopt it and re-apply the events after V's
cut-off, every scorer switches at once. The gate does not judge a rollback:
the operator does.`,
		FlagSet:   fs,
		Options:   ffOptions(),
		UsageFunc: usage,
		Exec: func(ctx context.Context, args []string) error {
			n, err := versionArg(args)
			if err != nil {
				return err
			}
			return askRetrain(ctx, &common, kf, retrain.Request{Kind: retrain.KindRollback, Trigger: retrain.TriggerRollback,
				Version: n, Reason: "eddy model rollback"}, *timeout, *asJSON, os.Stdout)
		},
	}
}
