package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peterbourgon/ff/v3/ffcli"
)

// TestConfigPrecedence: a flag wins over EDDY_* which wins over the YAML file.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "eddy.yaml")
	if err := os.WriteFile(cfgFile, []byte("max-body-bytes: 50\nproduce-timeout: 7s\nstrict: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  string
		args []string
		want string
	}{
		{"file only", "", []string{"--config", cfgFile}, "50"},
		{"env over file", "100", []string{"--config", cfgFile}, "100"},
		{"flag over env and file", "100", []string{"--config", cfgFile, "--max-body-bytes", "200"}, "200"},
		{"default", "", nil, "1048576"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("EDDY_MAX_BODY_BYTES", tt.env)
			}
			cmd := newIngestCommand()
			if err := cmd.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if got := cmd.FlagSet.Lookup("max-body-bytes").Value.String(); got != tt.want {
				t.Fatalf("max-body-bytes = %s, want %s", got, tt.want)
			}
			if tt.args != nil {
				if got := cmd.FlagSet.Lookup("produce-timeout").Value.String(); got != "7s" {
					t.Errorf("produce-timeout from file = %s, want 7s", got)
				}
			}
		})
	}
}

func TestConfigFileErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("no-such-flag: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := newIngestCommand().Parse([]string{"--config", bad}); err == nil {
		t.Error("unknown key in the config file was accepted")
	}
	if err := newIngestCommand().Parse([]string{"--config", filepath.Join(dir, "missing.yaml")}); err == nil {
		t.Error("missing config file was accepted")
	}
	t.Setenv("EDDY_MAX_BODY_BYTES", "lots")
	if err := newIngestCommand().Parse(nil); err == nil {
		t.Error("EDDY_MAX_BODY_BYTES=lots was accepted")
	}
}

// TestHelpListsEveryFlagWithItsEnv walks the command tree: every flag of
// every command appears in its help with its EDDY_ variable.
func TestHelpListsEveryFlagWithItsEnv(t *testing.T) {
	var walk func(c *ffcli.Command, path string)
	walk = func(c *ffcli.Command, path string) {
		help := usage(c)
		c.FlagSet.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(help, "--"+f.Name+" ") || !strings.Contains(help, envName(f.Name)) {
				t.Errorf("%s --help lacks --%s or %s", path, f.Name, envName(f.Name))
			}
			if f.Usage == "" {
				t.Errorf("%s --%s has no description", path, f.Name)
			}
		})
		for _, sc := range c.Subcommands {
			if !strings.Contains(help, sc.Name) {
				t.Errorf("%s --help does not list subcommand %s", path, sc.Name)
			}
			walk(sc, path+" "+sc.Name)
		}
	}
	walk(newRootCommand(), "eddy")
}

func TestRunExitCodes(t *testing.T) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	stderr := os.Stderr
	os.Stderr = devnull
	defer func() { os.Stderr = stderr }()
	for _, tt := range []struct {
		args []string
		want int
	}{
		{[]string{"--help"}, 0},
		{[]string{"ingest", "--help"}, 0},
		{[]string{"ingest", "--no-such-flag"}, 2},
		{[]string{"gen", "--count", "1", "--to", "ftp://x"}, 2},
		{[]string{"gen", "--drift-at", "5", "--drift-kind", "sideways"}, 2},
		{[]string{"archive", "--archive-flush-rows", "0"}, 2},
		{[]string{"archive", "--archive-flush-age", "1ms"}, 2},
		{[]string{"archive", "stray"}, 2},
		{[]string{"archive", "scan", "--kind", "clicks"}, 2},
		{[]string{"archive", "scan", "--from", "yesterday"}, 2},
		{[]string{"archive", "scan", "--archive-dir", "a", "--archive-url", "s3://b/c"}, 2},
		{[]string{"import", "movielens"}, 2},
		{[]string{"import", "movielens", "--to", "ftp://x", "dir"}, 2},
		{[]string{"import", "movielens", "--batch", "0", "dir"}, 2},
		{[]string{"import", "movielens", "--time-compress", "0.5", "dir"}, 2},
		{[]string{"import", "csv", "--columns", "user_id=u", "f.csv"}, 2},
		{[]string{"import", "csv", "--columns", "user_id=u,item_id=i,ts=t", "--type", "poke", "f.csv"}, 2},
		{[]string{"import", "csv", "--columns", "user_id=u,item_id=i,ts=t", "--comma", ";;", "f.csv"}, 2},
		{[]string{"train", "--epochs", "0"}, 2},
		{[]string{"train", "--reg", "-1"}, 2},
		{[]string{"train", "--unobserved-weight", "NaN"}, 2},
		{[]string{"train", "--dim", "2000"}, 2},
		{[]string{"train", "--window", "30x"}, 2},
		{[]string{"train", "--from", "2026-02-01", "--to", "2026-01-01"}, 2},
		{[]string{"train", "--seen-items", "5000"}, 2},
		{[]string{"train", "--dataset", "movielens:d", "--from", "2026-01-01"}, 2},
		{[]string{"train", "--dataset", "csv:f.csv"}, 2},
		{[]string{"train", "stray"}, 2},
		{[]string{"eval", "offline"}, 2},
		{[]string{"eval", "offline", "--dataset", "movielens:"}, 2},
		{[]string{"eval", "offline", "--dataset", "hdfs:x"}, 2},
		{[]string{"eval", "offline", "--dataset", "synthetic", "--protocol", "random"}, 2},
		{[]string{"eval", "offline", "--dataset", "synthetic", "--negatives", "0"}, 2},
		{[]string{"eval", "offline", "--dataset", "synthetic", "--test-frac", "1"}, 2},
		{[]string{"eval", "offline", "--dataset", "synthetic", "--models", "bpr"}, 2},
		{[]string{"eval", "offline", "--dataset", "synthetic", "--cg-steps", "0"}, 2},
		{[]string{"eval", "offline", "--dataset", "synthetic:zipf-s=banana"}, 2},
	} {
		if got := run(tt.args); got != tt.want {
			t.Errorf("eddy %s: exit %d, want %d", strings.Join(tt.args, " "), got, tt.want)
		}
	}
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{
		"max-body-bytes":       "EDDY_MAX_BODY_BYTES",
		"brokers":              "EDDY_BROKERS",
		"embedded-broker-addr": "EDDY_EMBEDDED_BROKER_ADDR",
	} {
		if got := envName(in); got != want {
			t.Errorf("envName(%q) = %q, want %q", in, got, want)
		}
	}
}
