// Command eddy is the single binary of Eddy, the event-streaming online-learning
// recommender. Each role and tool is a subcommand; `eddy <cmd> --help` lists
// its flags. Every flag can also be set by the environment variable
// EDDY_<FLAG> (upper case, dashes as underscores) or in a YAML file given with
// --config; precedence is flag, then environment, then file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/peterbourgon/ff/v3/ffcli"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	root := newRootCommand()
	if err := root.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "eddy: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.Run(ctx); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "eddy: %v\n", err)
			return 2
		}
		fmt.Fprintf(os.Stderr, "eddy: %v\n", err)
		return 1
	}
	return 0
}

// newGroupCommand is a command that only holds subcommands (eddy bench,
// eddy eval, ...): called alone it prints its help.
func newGroupCommand(name, shortUsage, shortHelp string, subs ...*ffcli.Command) *ffcli.Command {
	return &ffcli.Command{
		Name:        name,
		ShortUsage:  shortUsage,
		ShortHelp:   shortHelp,
		FlagSet:     flag.NewFlagSet("eddy "+name, flag.ContinueOnError),
		UsageFunc:   usage,
		Subcommands: subs,
		Exec:        func(context.Context, []string) error { return flag.ErrHelp },
	}
}

// usageError marks errors in how the command was called (exit code 2).
type usageError struct{ error }

func newRootCommand() *ffcli.Command {
	fs := flag.NewFlagSet("eddy", flag.ContinueOnError)
	return &ffcli.Command{
		Name:       "eddy",
		ShortUsage: "eddy <command> [flags]",
		ShortHelp:  "event-streaming online-learning recommender",
		LongHelp: `Eddy turns click and watch events into fresh recommendations within
milliseconds: events go to Kafka, streaming features and embeddings are
updated with every event, and recommendations are served from hot state.

Every flag of every command can also be set with the environment variable
EDDY_<FLAG> (e.g. --max-body-bytes → EDDY_MAX_BODY_BYTES) or in a YAML file
named by --config; a flag on the command line wins over the environment,
which wins over the file.`,
		FlagSet: fs,
		Subcommands: []*ffcli.Command{
			newUpCommand(),
			newBrokerCommand(),
			newIngestCommand(),
			newServeCommand(),
			newProcessCommand(),
			newLearnCommand(),
			newDriftCommand(),
			newArchiveCommand(),
			newTrainCommand(),
			newRetrainCommand(),
			newModelCommand(),
			newImportCommand(),
			newTopicsCommand(),
			newGenCommand(),
			newTailCommand(),
			newBenchCommand(),
			newEvalCommand(),
			newReportCommand(),
			newVersionCommand(),
		},
		UsageFunc: usage,
		Exec: func(context.Context, []string) error {
			return flag.ErrHelp
		},
	}
}
