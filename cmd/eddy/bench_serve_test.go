package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/eddyrec/eddy/scorer"
)

func smallBenchOptions() benchServeOptions {
	return benchServeOptions{Config: scorer.DefaultConfig(),
		Spec: scorer.SyntheticSpec{Items: 500, Users: 50, Dim: 8, Seen: 3, Seed: 1, Ranker: true},
		K:    5, Duration: 300 * time.Millisecond, Concurrency: 2, Log: slog.New(slog.DiscardHandler)}
}

func checkBenchResult(t *testing.T, res ServeBenchResult) {
	t.Helper()
	if res.Requests == 0 || res.Errors != 0 || res.Fallbacks != 0 || res.QPS <= 0 || res.P99Ms <= 0 || res.P50Ms > res.P99Ms ||
		res.ServedListed < int64(res.Requests) || res.SearchPasses == 0 || res.MeanBatch < 1 || res.ServerCPUSec <= 0 || res.AllocPerReq <= 0 {
		t.Fatalf("unexpected result %+v", res)
	}
}

func TestBenchServeSmall(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func(*benchServeOptions)
	}{
		{"closed loop int8", func(*benchServeOptions) {}},
		{"paced exact", func(o *benchServeOptions) { o.Rate, o.Config.Index = 200, scorer.IndexExact }},
		{"recs to kafka", func(o *benchServeOptions) { o.Recs = "kafka" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := smallBenchOptions()
			tc.opts(&o)
			res, err := benchServe(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			checkBenchResult(t, res)
			if res.LoadGen != "inproc" || res.Index != o.Config.Index || res.Recs != max(o.Recs, "discard") {
				t.Fatalf("result does not describe the run: %+v", res)
			}
			if o.Rate > 0 && (res.QPS > 1.5*o.Rate || res.TargetRate != o.Rate) {
				t.Fatalf("paced at %v/s but served %v/s", o.Rate, res.QPS)
			}
		})
	}
}

// TestBenchServeLoadProcess runs the load generator as a child process:
// this test binary, re-entering through TestBenchServeHelperProcess.
func TestBenchServeLoadProcess(t *testing.T) {
	o := smallBenchOptions()
	o.LoadCommand = []string{os.Args[0], "-test.run=^TestBenchServeHelperProcess$", "--", "bench", "serve"}
	t.Setenv("EDDY_TEST_BENCH_HELPER", "1")
	res, err := benchServe(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	checkBenchResult(t, res)
	if res.LoadGen != "process" || res.LoadGenCPUSec <= 0 {
		t.Fatalf("load process result %+v", res)
	}
}

// TestBenchServeHelperProcess is the child of TestBenchServeLoadProcess:
// it runs `eddy bench serve` with the arguments after "--", prints its
// JSON and exits before the test framework writes anything.
func TestBenchServeHelperProcess(t *testing.T) {
	if os.Getenv("EDDY_TEST_BENCH_HELPER") != "1" {
		t.Skip("helper process for TestBenchServeLoadProcess")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	if len(args) < 2 || args[0] != "bench" || args[1] != "serve" {
		fmt.Fprintf(os.Stderr, "helper: unexpected args %q\n", args)
		os.Exit(2)
	}
	if err := newBenchServeCommand().ParseAndRun(context.Background(), args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// fakeHTTPServer answers each request on a connection with the next of
// replies, then closes the connection.
func fakeHTTPServer(t *testing.T, replies ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for _, r := range replies {
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if line == "\r\n" {
							break
						}
					}
					if _, err := c.Write([]byte(r)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestRawClient(t *testing.T) {
	ok := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 17\r\n\r\n{\"fallback\":true}"
	for _, tc := range []struct {
		name    string
		replies []string
		code    int
		body    string
		err     string
	}{
		{name: "ok", replies: []string{ok, ok}, code: 200, body: `{"fallback":true}`},
		{name: "status", replies: []string{"HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\n{}"}, code: 400, body: "{}"},
		{name: "connection close", replies: []string{"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"}, code: 200},
		{name: "chunked", replies: []string{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"}, err: "without Content-Length"},
		{name: "bad status", replies: []string{"SPDY/3 200 OK\r\n\r\n"}, err: "bad status line"},
		{name: "bad length", replies: []string{"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n"}, err: "bad Content-Length"},
		{name: "short body", replies: []string{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}"}, err: "EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &rawClient{addr: fakeHTTPServer(t, tc.replies...)}
			defer c.close()
			req := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			for range len(tc.replies) {
				code, body, err := c.do(req)
				if tc.err != "" {
					if err == nil || !strings.Contains(err.Error(), tc.err) {
						t.Fatalf("err %v, want %q", err, tc.err)
					}
					return
				}
				if err != nil || code != tc.code || !bytes.Equal(body, []byte(tc.body)) {
					t.Fatalf("got %d %q %v, want %d %q", code, body, err, tc.code, tc.body)
				}
			}
		})
	}
}

func TestDriveLoadTarget(t *testing.T) {
	ok := "HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\n{\"fallback\":false}"
	replies := make([]string, 1000)
	for i := range replies {
		replies[i] = ok
	}
	l := loadSpec{Addr: fakeHTTPServer(t, replies...), Users: 10, K: 3, Concurrency: 2, Rate: 400, Duration: 200 * time.Millisecond}
	lr, err := driveLoad(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	res := lr.result(l)
	if res.Requests < 40 || res.Requests > 120 || res.Errors != 0 || res.Fallbacks != 0 || res.LoadGen != "target" {
		t.Fatalf("paced at 400/s for 0.2 s: %+v", res)
	}
	b, _ := json.Marshal(res)
	if !bytes.Contains(b, []byte(`"loadgen":"target"`)) {
		t.Fatalf("json %s", b)
	}
	if _, err := driveLoad(context.Background(), loadSpec{Addr: "127.0.0.1:1", Users: 1, K: 1, Concurrency: 1, Duration: time.Millisecond}); err == nil {
		t.Fatal("driving a closed port succeeded")
	}
}
