package integration

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/connectors/archive"
	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/internal/testmoto"
	"github.com/eddyrec/eddy/stream"
)

func archiveArgs(k *testkafka.Kafka, dir, httpAddr string) []string {
	return []string{"archive", "--brokers", strings.Join(k.Brokers, ","), "--topic-prefix", k.Layout.Prefix,
		"--archive-dir", dir, "--archive-group", k.Layout.Prefix + "archive", "--http-addr", httpAddr,
		"--archive-instance-id", "archive-test", "--archive-flush-rows", "400", "--archive-flush-age", "150ms", "--log-level", "debug"}
}

// archivedEvents reads the whole archive with the reader the batch
// trainer uses.
func archivedEvents(t *testing.T, dir string) []archive.EventRow {
	t.Helper()
	st, err := archive.OpenStore(context.Background(), dir, archive.S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	var rows []archive.EventRow
	if _, err := archive.Scan(context.Background(), st, time.Time{}, time.Time{}, func(r *archive.EventRow) error {
		rows = append(rows, *r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return rows
}

// pendingFlushes counts partitions whose state names a flush in progress:
// a kill that left one landed inside a flush.
func pendingFlushes(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	states, _ := filepath.Glob(filepath.Join(dir, "_state", "events", "*.json"))
	for _, f := range states {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var s struct {
			Pending *json.RawMessage `json:"pending"`
		}
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("state %s after a kill is not whole: %v", f, err)
		}
		if s.Pending != nil {
			n++
		}
	}
	return n
}

// TestArchiveKill9ExactlyOnce runs `eddy archive` over a stream of 60k
// events and kills it with SIGKILL at 14 random moments while events keep
// arriving — during start, group join, and inside flushes — restarting it
// each time on the same archive. At the end every event is in the archive
// exactly once, and every visible file is a whole Parquet file.
func TestArchiveKill9ExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("kills eddy archive 14 times; skipped in -short")
	}
	const (
		total = 60_000
		kills = 14
	)
	k := testkafka.Start(t, 3)
	cl := k.NewClient(t, kgo.ProducerLinger(5*time.Millisecond))
	s := newFeatureStream(t, cl, k.Layout.Name(stream.TopicEvents), 2000, 1000, 11)
	dir := t.TempDir()
	httpAddr := freeAddr(t)
	args := archiveArgs(k, dir, httpAddr)
	rng := rand.New(rand.NewPCG(11, 11))
	chunk := total / (kills + 1)
	inFlush := 0
	for i := 0; i < kills || (inFlush < 2 && i < kills+10); i++ {
		s.produce(t, chunk/6, 0)
		p := startEddy(t, nil, args...)
		life := time.Duration(200+rng.IntN(1500)) * time.Millisecond
		deadline := time.Now().Add(life)
		for time.Now().Before(deadline) {
			s.produce(t, 100, 0)
			time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		}
		// A burst just before the kill: flushes follow one another, so
		// that the kill lands inside one.
		s.produce(t, chunk/2, 0)
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.done
		if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("run %d ended before it was killed: %v\n%s", i, p.err, p.out.String())
		}
		if pendingFlushes(t, dir) > 0 {
			inFlush++
		}
	}
	if rest := total - len(s.sent); rest > 0 {
		s.produce(t, rest, 0)
	}
	if inFlush < 2 {
		t.Fatalf("only %d kills landed inside a flush: the kills prove little", inFlush)
	}
	p := startEddy(t, nil, args...)
	waitReady(t, p, "http://"+httpAddr+"/readyz", 60*time.Second)
	deadline := time.Now().Add(120 * time.Second)
	var rows []archive.EventRow
	for {
		rows = archivedEvents(t, dir)
		if len(rows) >= len(s.sent) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := p.stop(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatalf("clean stop: %v", err)
	}
	rows = archivedEvents(t, dir)
	count := map[string]int{}
	for _, r := range rows {
		count[r.EventID]++
	}
	for _, e := range s.sent {
		if c := count[e.EventID]; c != 1 {
			t.Fatalf("event %s archived %d times, want 1 (%d archived of %d sent)", e.EventID, c, len(rows), len(s.sent))
		}
	}
	if len(rows) != len(s.sent) {
		t.Fatalf("%d rows archived, %d events sent", len(rows), len(s.sent))
	}
	// Every visible file is whole: it opens and its row count is in its
	// footer (a partial file would have no footer).
	st, _ := archive.OpenStore(context.Background(), dir, archive.S3Options{})
	keys, _ := archive.Files(context.Background(), st, archive.Events, time.Time{}, time.Time{})
	all, _ := filepath.Glob(filepath.Join(dir, "events", "*", "*", "*.parquet"))
	if len(all) != len(keys) {
		t.Fatalf("%d visible files, %d committed: a kill left files of an undone flush", len(all), len(keys))
	}
	for _, key := range keys {
		f, obj, err := archive.OpenFile(context.Background(), st, archive.Events, key)
		if err != nil {
			t.Fatalf("visible file %s: %v", key, err)
		}
		if f.NumRows() == 0 {
			t.Fatalf("file %s has no rows", key)
		}
		obj.Close()
	}
	// No temporary file is left beside a data file: recovery removes what
	// a kill inside a write left (a flush cut short at its last write,
	// before its state was committed, can leave none behind either).
	temps, _ := filepath.Glob(filepath.Join(dir, "events", "*", "*", ".*.tmp-*"))
	if len(temps) > 0 {
		t.Fatalf("temporary files left after the clean run: %v", temps)
	}
	t.Logf("%d kills landed inside a flush; %d events in %d files", inFlush, len(rows), len(keys))
}

// TestArchiveBadLocation: an archive directory that cannot be made is a
// clear error at start, not at the first flush.
func TestArchiveBadLocation(t *testing.T) {
	k := testkafka.Start(t, 1)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p := startEddy(t, nil, archiveArgs(k, filepath.Join(file, "archive"), freeAddr(t))...)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("eddy archive did not stop on an unusable archive directory")
	}
	if p.err == nil || !strings.Contains(p.out.String(), "not a directory") {
		t.Fatalf("exit %v, output:\n%s", p.err, p.out.String())
	}
}

// TestArchiveToS3 runs `eddy archive --archive-url s3://…` against moto's
// S3-compatible server, credentials from the AWS environment variables,
// and reads the bucket back with `eddy archive scan --archive-url`.
func TestArchiveToS3(t *testing.T) {
	endpoint := testmoto.Start(t, "eddy-archive")
	k := testkafka.Start(t, 2)
	cl := k.NewClient(t, kgo.ProducerLinger(5*time.Millisecond))
	s := newFeatureStream(t, cl, k.Layout.Name(stream.TopicEvents), 300, 200, 8)
	s.produce(t, 5000, 0)
	env := []string{"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test"}
	s3 := []string{"--archive-url", "s3://eddy-archive/prod/eddy", "--archive-s3-endpoint", endpoint, "--archive-s3-insecure", "--archive-s3-region", testmoto.Region}
	args := append([]string{}, "archive", "--brokers", strings.Join(k.Brokers, ","), "--topic-prefix", k.Layout.Prefix,
		"--archive-group", k.Layout.Prefix+"archive", "--http-addr", freeAddr(t), "--archive-flush-age", "150ms")
	p := startEddy(t, env, append(args, s3...)...)
	scan := func() (rows int) {
		cmd := exec.Command(eddyBin, append([]string{"archive", "scan", "--json"}, s3...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("eddy archive scan: %v\n%s", err, out)
		}
		var sum struct{ Rows int }
		if err := json.Unmarshal(out, &sum); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return sum.Rows
	}
	deadline := time.Now().Add(60 * time.Second)
	for scan() < len(s.sent) && time.Now().Before(deadline) {
		time.Sleep(300 * time.Millisecond)
	}
	if err := p.stop(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatalf("clean stop: %v", err)
	}
	if n := scan(); n != len(s.sent) {
		t.Fatalf("the bucket holds %d events, %d sent", n, len(s.sent))
	}
	// Under the URL's prefix, in the documented layout.
	n := 0
	for o := range testmoto.Client(t, endpoint).ListObjects(context.Background(), "eddy-archive", minio.ListObjectsOptions{Prefix: "prod/eddy/events/dt=", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no objects under prod/eddy/events/")
	}
}

// TestArchiveReadByPyarrowAndDuckDB archives a stream with `eddy archive`
// and reads the files back with pyarrow and DuckDB: row counts, column
// types and a GROUP BY type must match what was produced.
func TestArchiveReadByPyarrowAndDuckDB(t *testing.T) {
	python := requirePythonModules(t, "pyarrow", "duckdb")
	k := testkafka.Start(t, 3)
	cl := k.NewClient(t, kgo.ProducerLinger(5*time.Millisecond))
	s := newFeatureStream(t, cl, k.Layout.Name(stream.TopicEvents), 500, 300, 5)
	s.produce(t, 20_000, 0)
	dir := t.TempDir()
	httpAddr := freeAddr(t)
	p := startEddy(t, nil, archiveArgs(k, dir, httpAddr)...)
	deadline := time.Now().Add(60 * time.Second)
	for len(archivedEvents(t, dir)) < len(s.sent) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if err := p.stop(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatalf("clean stop: %v", err)
	}
	want := map[string]int{}
	for _, e := range s.sent {
		want[e.Type.String()]++
	}
	// eddy archive scan reads the same back.
	stdout, _ := runEddy(t, 60*time.Second, "archive", "scan", "--archive-dir", dir, "--json")
	var sum struct {
		Rows   int            `json:"rows"`
		ByType map[string]int `json:"by_type"`
	}
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("eddy archive scan --json: %v\n%s", err, stdout)
	}
	if sum.Rows != len(s.sent) || len(sum.ByType) != len(want) {
		t.Fatalf("eddy archive scan: %s, want %d rows by type %v", stdout, len(s.sent), want)
	}
	for typ, n := range want {
		if sum.ByType[typ] != n {
			t.Fatalf("eddy archive scan: %s rows %d, want %d", typ, sum.ByType[typ], n)
		}
	}
	wantJSON, _ := json.Marshal(map[string]any{"rows": len(s.sent), "by_type": want})
	cmd := exec.Command(python, "-c", readBackPy, dir, string(wantJSON))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python read-back: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// readBackPy checks the archive with pyarrow and DuckDB, independently of
// Eddy's reader. argv: the archive dir, the expected counts as JSON.
const readBackPy = `
import json, sys
import pyarrow as pa, pyarrow.dataset as ds, duckdb
root, want = sys.argv[1], json.loads(sys.argv[2])
glob = root + "/events/*/*/*.parquet"

t = ds.dataset(root + "/events", format="parquet", partitioning="hive").to_table()
assert t.num_rows == want["rows"], ("pyarrow rows", t.num_rows, want["rows"])
types = {f.name: f.type for f in t.schema}
assert types["ts"] == pa.timestamp("ms", tz="UTC"), types["ts"]
assert types["kafka_timestamp"] == pa.timestamp("ms", tz="UTC"), types["kafka_timestamp"]
assert pa.types.is_string(types["event_id"]) and pa.types.is_string(types["type"]), types
assert pa.types.is_map(types["context"]), types["context"]
assert types["value"] == pa.float64() and types["kafka_offset"] == pa.int64(), types
by = {}
for v in t.column("type").to_pylist():
    by[v] = by.get(v, 0) + 1
assert by == want["by_type"], ("pyarrow by type", by, want["by_type"])

con = duckdb.connect()
n = con.execute(f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true)").fetchone()[0]
assert n == want["rows"], ("duckdb rows", n)
got = dict(con.execute(f"SELECT type, count(*) FROM read_parquet('{glob}', hive_partitioning = true) GROUP BY type").fetchall())
assert got == want["by_type"], ("duckdb group by", got, want["by_type"])
dup = con.execute(f"SELECT count(*) - count(DISTINCT event_id) FROM read_parquet('{glob}')").fetchone()[0]
assert dup == 0, ("duplicate event ids", dup)
tstype = con.execute(f"SELECT typeof(ts) FROM read_parquet('{glob}') LIMIT 1").fetchone()[0]
assert tstype == "TIMESTAMP WITH TIME ZONE", tstype
print("pyarrow and duckdb: %d rows, %d types, ts %s" % (n, len(got), tstype))
`

// requirePythonModules returns a python3 that imports every module, or
// skips the test (fails it under EDDY_REQUIRE_REAL_PEERS=1, as in CI).
func requirePythonModules(t *testing.T, modules ...string) string {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err == nil {
		err = exec.Command(python, "-c", "import "+strings.Join(modules, ", ")).Run()
	}
	if err != nil {
		msg := "python3 with " + strings.Join(modules, ", ") + " not found (pip install " + strings.Join(modules, " ") + "): " + err.Error()
		if os.Getenv("EDDY_REQUIRE_REAL_PEERS") == "1" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED: " + msg)
	}
	return python
}
