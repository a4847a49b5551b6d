// Package testmoto starts moto's S3-compatible server (PyPI: moto[server])
// for tests of Eddy's S3 paths: a real S3 wire protocol on loopback, no
// cloud account.
package testmoto

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
)

// Region is the region the test buckets are made in.
const Region = "us-east-1"

// Start runs moto_server on a free loopback port until the test ends and
// returns its endpoint (host:port) with bucket made. Without moto the test
// skips, or fails under EDDY_REQUIRE_REAL_PEERS=1 (CI).
func Start(t testing.TB, bucket string) string {
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
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not answer on %s: %v", endpoint, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if bucket != "" {
		if err := Client(t, endpoint).MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{Region: Region}); err != nil {
			t.Fatal(err)
		}
	}
	return endpoint
}

// Client is an S3 client for the server at endpoint (moto takes any
// credentials; these are "test"/"test").
func Client(t testing.TB, endpoint string) *minio.Client {
	t.Helper()
	mc, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4("test", "test", ""), Region: Region})
	if err != nil {
		t.Fatal(err)
	}
	return mc
}
