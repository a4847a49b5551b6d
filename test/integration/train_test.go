package integration

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eddyrec/eddy/connectors/archive"
	"github.com/eddyrec/eddy/connectors/movielens/movielenstest"
)

// checkTrainFromArchive trains iALS on an archive that holds ml-100k twice
// (the import and a forced re-import with the same event ids): eddy train
// must read the 1997–98 range back, drop every second copy by event_id,
// and produce the same model as training on the dataset directly.
func checkTrainFromArchive(t *testing.T, dir, ml string) {
	t.Helper()
	summary := func(out string) map[string]any {
		var s map[string]any
		ls := lines(out)
		if len(ls) == 0 || json.Unmarshal([]byte(ls[len(ls)-1]), &s) != nil {
			t.Fatalf("train summary: %q", out)
		}
		return s
	}
	out, stderr := runEddy(t, 120*time.Second, "train", "--data-dir", dir, "--from", "1997-01-01", "--to", "1999-01-01", "--json")
	arch := summary(out)
	if arch["events"].(float64) != 100_000 || arch["duplicates"].(float64) != 100_000 ||
		arch["users"].(float64) != 943 || arch["items"].(float64) != 1682 {
		t.Fatalf("train from the archive: %v", arch)
	}
	for _, want := range []string{"train: reading the archive", "train: epoch", "epoch=16", "train: done"} {
		if !strings.Contains(stderr, want) {
			t.Fatalf("progress lacks %q:\n%s", want, stderr)
		}
	}
	// By default the snapshot goes into the archive, under models/.
	snap := arch["snapshot"].(string)
	if filepath.Dir(snap) != filepath.Join(dir, "archive", "models") || filepath.Ext(snap) != ".parquet" {
		t.Fatalf("snapshot at %s, want %s/archive/models/*.parquet", snap, dir)
	}
	st, err := archive.OpenStore(t.Context(), filepath.Dir(snap), archive.S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := archive.ReadModel(t.Context(), st, filepath.Base(snap))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Dim  int    `json:"dim"`
		From string `json:"from"`
	}
	if err := json.Unmarshal(s.Meta, &meta); err != nil || len(s.Users) != 943 || len(s.Items) != 1682 || meta.Dim != 64 || meta.From != "1997-01-01T00:00:00Z" {
		t.Fatalf("snapshot: %d users, %d items, meta %s (%v)", len(s.Users), len(s.Items), s.Meta, err)
	}
	for _, r := range s.Users[:10] {
		if len(r.Vector.Vec) != 64 || len(r.Vector.Seen) == 0 || len(r.Vector.Seen) > 100 {
			t.Fatalf("user record %s: %d dims, %d seen", r.ID, len(r.Vector.Vec), len(r.Vector.Seen))
		}
	}
	// The same data straight from the files: the same pairs, and a loss
	// within rounding (the rows' order, hence initialisation, can differ
	// where events share a timestamp).
	direct := summary(func() string {
		o, _ := runEddy(t, 120*time.Second, "train", "--dataset", "movielens:"+ml, "--out", filepath.Join(t.TempDir(), "d.parquet"), "--json")
		return o
	}())
	if direct["pairs"] != arch["pairs"] || math.Abs(direct["loss"].(float64)-arch["loss"].(float64)) > 0.02*direct["loss"].(float64) {
		t.Fatalf("from the archive %v, from the files %v", arch, direct)
	}
	// A range with no events is an error that names it, and writes nothing.
	cmd := exec.Command(eddyBin, "train", "--data-dir", dir, "--from", "2030-01-01", "--to", "2030-02-01", "--out", filepath.Join(dir, "none.parquet"))
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "no events in the range [2030-01-01T00:00:00Z, 2030-02-01T00:00:00Z)") {
		t.Fatalf("empty range: %v\n%s", err, b)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "none.parquet*")); len(m) != 0 {
		t.Fatalf("an empty range left %v", m)
	}
	// An operator can audit it with DuckDB (last: it skips without it).
	py := requirePythonModules(t, "duckdb")
	q := "import duckdb,sys; print(duckdb.connect().execute(\"select count(*) filter (where kind = 'user'), count(*) filter (where kind = 'item'), max(len(vec)) from '\" + sys.argv[1] + \"'\").fetchone())"
	if b, err := exec.Command(py, "-c", q, snap).CombinedOutput(); err != nil || strings.TrimSpace(string(b)) != "(943, 1682, 64)" {
		t.Fatalf("duckdb: %v: %s", err, b)
	}
}

// TestEvalOfflineThroughTheBinary runs eddy eval offline as a user would:
// the JSON shape from stdout, progress on stderr, and --export's
// files for peer libraries.
func TestEvalOfflineThroughTheBinary(t *testing.T) {
	ml := movielenstest.Dir(t, "ml-100k")
	dir := t.TempDir()
	out, stderr := runEddy(t, 120*time.Second, "eval", "offline", "--dataset", "movielens:"+ml, "--protocol", "sampled",
		"--json", "--export", dir)
	var got map[string]map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, m := range []string{"ials", "online_mf", "popularity"} {
		for _, k := range []string{"hr_at_10", "ndcg_at_10", "recall_at_20", "coverage", "train_seconds"} {
			if _, ok := got[m][k].(float64); !ok {
				t.Fatalf("%s.%s missing:\n%s", m, k, out)
			}
		}
	}
	if got["ials"]["hr_at_10"].(float64) <= got["popularity"]["hr_at_10"].(float64) || got["split"]["test_cases"].(float64) != 942 {
		t.Fatalf("sampled ML-100K: %s", out)
	}
	if !strings.Contains(stderr, "ials: epoch") || !strings.Contains(stderr, "eval offline: model") {
		t.Fatalf("no progress on stderr:\n%s", stderr)
	}
	for _, f := range []string{"train.csv", "seen.csv", "test.csv", "candidates.csv", "meta.json"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Fatalf("export %s: %v", f, err)
		}
	}
}
