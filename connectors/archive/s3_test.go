package archive

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/eddyrec/eddy/internal/testkafka"
)

// startMoto runs moto's S3-compatible server (pip install 'moto[server]')
// on a free loopback port and returns its endpoint. Without it the test
// skips, or fails under EDDY_REQUIRE_REAL_PEERS=1 (CI).
func startMoto(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		msg := "moto_server not found (pip install 'moto[server]')"
		if os.Getenv("EDDY_REQUIRE_REAL_PEERS") == "1" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED: " + msg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	endpoint := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return endpoint
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not answer on %s: %v", endpoint, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestS3ArchiveExactlyOnce(t *testing.T) {
	endpoint := startMoto(t)
	ctx := context.Background()
	opts := S3Options{Endpoint: endpoint, Insecure: true, Region: "us-east-1", AccessKey: "test", SecretKey: "test"}
	mc, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4("test", "test", ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStore(ctx, "s3://eddy-test/archive", opts); err == nil {
		t.Fatal("a missing bucket must be an error at start")
	}
	if err := mc.MakeBucket(ctx, "eddy-test", minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(ctx, "s3://eddy-test/archive", opts)
	if err != nil {
		t.Fatal(err)
	}
	k := testkafka.Start(t, 3)
	want := produceSynthetic(t, k, 3, 4000)
	_, stop := runRole(t, k, st, testConfig())
	rows := waitRows(t, st, len(want), 60*time.Second)
	stop()
	checkExactlyOnce(t, rows, want)
	// The objects are where the layout says, under the URL's prefix.
	n := 0
	for o := range mc.ListObjects(ctx, "eddy-test", minio.ListObjectsOptions{Prefix: "archive/events/dt=", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if _, ok := parseFileKey(Events, o.Key[len("archive/"):]); !ok {
			t.Fatalf("unexpected object %s", o.Key)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no event files in the bucket")
	}
	// A half-written flush left behind is undone on restart: simulate the
	// state a crash after the first file leaves.
	keys, _ := Files(ctx, st, Events, time.Time{}, time.Time{})
	s, _, err := loadState(ctx, st, Events, 0)
	if err != nil {
		t.Fatal(err)
	}
	orphan := fileKey(Events, hourOf(time.Now().UnixMilli()), 0, s.Next, s.Next+10)
	if err := st.Put(ctx, orphan, []byte("not parquet")); err != nil {
		t.Fatal(err)
	}
	s.Pending = &flush{First: s.Next, Last: s.Next + 10, Files: []string{orphan}}
	if err := saveState(ctx, st, Events, 0, s); err != nil {
		t.Fatal(err)
	}
	if got, _ := Files(ctx, st, Events, time.Time{}, time.Time{}); len(got) != len(keys) {
		t.Fatalf("a pending flush's file is listed as committed: %d files, want %d", len(got), len(keys))
	}
	if _, undone, err := recoverState(ctx, st, Events, 0); err != nil || undone != 1 {
		t.Fatalf("recover: %d undone, %v", undone, err)
	}
	if _, err := st.Get(ctx, orphan); err == nil {
		t.Fatal("the pending flush's file is still there")
	}
}
