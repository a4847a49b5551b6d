package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func runEval(t *testing.T, args ...string) (string, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var p prequentialFlags
	p.register(fs)
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	var out bytes.Buffer
	err := runPrequential(context.Background(), &p, &out, slog.New(slog.DiscardHandler))
	return out.String(), err
}

// A tiny MovieLens-format file: two taste groups of users rating two
// groups of movies, written to a temp dir (never the real dataset).
func writeTinyMovieLens(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("userId,movieId,rating,timestamp\n")
	ts := 1000
	for round := range 12 {
		for u := range 20 {
			item := 2*((round*7+u*3)%15) + u%2
			rating := "4.5"
			if (round+u)%5 == 0 {
				rating = "2.0"
			}
			b.WriteString(strings.Join([]string{strconv.Itoa(u + 1), strconv.Itoa(item + 1), rating, strconv.Itoa(ts)}, ",") + "\n")
			ts += 7
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ratings.csv"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestEvalPrequentialMovieLensOutputs(t *testing.T) {
	dir := writeTinyMovieLens(t)
	out := t.TempDir()
	csvPath, pngPath := filepath.Join(out, "w.csv"), filepath.Join(out, "p.png")
	stdout, err := runEval(t, "--dataset", "movielens:"+dir, "--json", "--window", "20",
		"--csv", csvPath, "--plot", pngPath, "--candidates", "20", "--dim", "32")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]map[string]any
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("json: %v\n%s", err, stdout)
	}
	for _, m := range []string{"online_mf", "online_mf_ranker", "popularity", "frozen_mf"} {
		for _, k := range []string{"hr_at_k", "ndcg_at_k", "coverage", "events_per_sec"} {
			v, ok := got[m][k].(float64)
			if !ok || v < 0 || (k != "events_per_sec" && v > 1) {
				t.Errorf("%s.%s = %v", m, k, got[m][k])
			}
		}
	}
	if got["run"]["events"].(float64) != 240 {
		t.Errorf("run.events = %v, want 240", got["run"]["events"])
	}
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 3 || len(rows[0]) != 4+2*4 || rows[0][3] != "end_event" || rows[0][4] != "online_mf_hr_at_k" {
		t.Errorf("csv header %v, %d rows", rows[0], len(rows))
	}
	png, err := os.ReadFile(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Error("plot is not a PNG")
	}
}

func TestEvalPrequentialSyntheticText(t *testing.T) {
	stdout, err := runEval(t, "--dataset", "synthetic:users=200,items=300,events=20000,seed=3",
		"--models", "online_mf", "--window", "200", "--dim", "32")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"online_mf", "popularity", "HR@10", "Wilcoxon"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "frozen_mf ") {
		t.Errorf("--models online_mf still ran frozen_mf:\n%s", stdout)
	}
}

// A drifting synthetic stream: the drift point found while generating
// reaches the report (recovery table, JSON) and the plot.
func TestEvalPrequentialSyntheticDrift(t *testing.T) {
	ds := "synthetic:users=200,items=300,dim=4,events=30000,seed=3,drift-at=15000,drift-kind=taste"
	stdout, err := runEval(t, "--dataset", ds, "--models", "online_mf,frozen_mf", "--window", "200", "--dim", "32")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"around the shift at event 15000", "before: windows after event 6000", "tail/before", "frozen_mf "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	png := filepath.Join(t.TempDir(), "drift.png")
	stdout, err = runEval(t, "--dataset", ds, "--models", "online_mf", "--window", "100", "--dim", "32",
		"--json", "--recovery-tail", "4", "--plot", png)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Run struct {
			Shift    int `json:"shift_at_event"`
			FrozenAt int `json:"frozen_at_event"`
		} `json:"run"`
		Online struct {
			Recovery *struct {
				Tail        float64 `json:"hr_tail"`
				TailWindows int     `json:"windows_tail"`
			} `json:"recovery"`
		} `json:"online_mf"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("json: %v\n%s", err, stdout)
	}
	if got.Run.Shift != 15000 || got.Run.FrozenAt != 0 {
		t.Errorf("run: shift %d frozen %d, want 15000 and 0 (frozen_mf not run)", got.Run.Shift, got.Run.FrozenAt)
	}
	if got.Online.Recovery == nil || got.Online.Recovery.TailWindows != 4 {
		t.Errorf("online_mf recovery %+v, want a tail of 4 windows", got.Online.Recovery)
	}
	if fi, err := os.Stat(png); err != nil || fi.Size() == 0 {
		t.Errorf("plot: %v", err)
	}
	if _, err := runEval(t, "--dataset", "synthetic:events=1000,drift-at=5000,drift-kind=taste"); err == nil ||
		!strings.Contains(err.Error(), "beyond the 1000 events") {
		t.Errorf("drift past the end: err = %v", err)
	}
}

func TestEvalPrequentialUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "--dataset is required"},
		{[]string{"--dataset", "kaggle:x"}, "want movielens:DIR or synthetic"},
		{[]string{"--dataset", "movielens:"}, "directory is missing"},
		{[]string{"--dataset", "synthetic:events=x"}, "not an integer"},
		{[]string{"--dataset", "synthetic:colour=red"}, "unknown key"},
		{[]string{"--dataset", "synthetic", "--k", "0"}, "k 0"},
		{[]string{"--dataset", "synthetic", "--dim", "16"}, "dim 16"},
		{[]string{"--dataset", "synthetic", "--models", "nope"}, "unknown model"},
	}
	for _, tt := range tests {
		_, err := runEval(t, tt.args...)
		var ue usageError
		if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err = %v, want usage error containing %q", tt.args, err, tt.want)
		}
	}
	if _, err := runEval(t, "--dataset", "movielens:"+t.TempDir()); err == nil || !strings.Contains(err.Error(), "no u.data") {
		t.Errorf("empty movielens dir: err = %v", err)
	}
}

func TestEvalCommandParses(t *testing.T) {
	cmd := newEvalCommand()
	if err := cmd.Parse([]string{"prequential", "--dataset", "synthetic", "--k", "5"}); err != nil {
		t.Fatal(err)
	}
	if cmd.Subcommands[0].Name != "prequential" {
		t.Fatalf("subcommand %q", cmd.Subcommands[0].Name)
	}
	if v := cmd.Subcommands[0].FlagSet.Lookup("k").Value.String(); v != "5" {
		t.Errorf("--k parsed as %s", v)
	}
}

// TestEvalOfflineJSON runs eddy eval offline on a synthetic stream and
// checks the JSON shape: one object per model with the metrics.
func TestEvalOfflineJSON(t *testing.T) {
	var out bytes.Buffer
	p := &offlineFlags{}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	p.register(fs)
	if err := fs.Parse([]string{"--dataset", "synthetic:users=1000,items=300,dim=4,explore=0.7,zipf-s=0.8,popularity-weight=0.5,affinity-weight=3,events=30000", "--json", "--dim", "16", "--epochs", "4"}); err != nil {
		t.Fatal(err)
	}
	if err := runEvalOffline(context.Background(), p, &out, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	var got map[string]map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, m := range []string{"ials", "online_mf", "popularity"} {
		for _, k := range []string{"hr_at_10", "ndcg_at_10", "recall_at_20", "coverage", "train_seconds"} {
			if _, ok := got[m][k].(float64); !ok {
				t.Fatalf("%s.%s missing in %s", m, k, out.String())
			}
		}
	}
	if got["ials"]["hr_at_10"].(float64) <= got["popularity"]["hr_at_10"].(float64) {
		t.Fatalf("ials does not beat popularity on a stream with taste: %s", out.String())
	}
}
