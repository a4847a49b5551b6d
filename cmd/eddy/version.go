package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/peterbourgon/ff/v3/ffcli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newVersionCommand() *ffcli.Command {
	return &ffcli.Command{
		Name:       "version",
		ShortUsage: "eddy version",
		ShortHelp:  "print the version",
		FlagSet:    flag.NewFlagSet("eddy version", flag.ContinueOnError),
		UsageFunc:  usage,
		Exec: func(context.Context, []string) error {
			rev := ""
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						rev = s.Value
					}
				}
			}
			fmt.Printf("eddy %s %s %s\n", version, rev, runtime.Version())
			return nil
		},
	}
}
