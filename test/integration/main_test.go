package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// eddyBin is the binary under test, built once by TestMain.
var eddyBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "eddy-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	eddyBin = filepath.Join(dir, "eddy")
	build := exec.Command("go", "build", "-o", eddyBin, "github.com/eddyrec/eddy/cmd/eddy")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build eddy:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is a running eddy child process.
type proc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startEddy runs eddy with args and stops it (SIGKILL) when the test ends if
// it is still running. Its output is shown when the test fails.
func startEddy(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(eddyBin, args...), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("eddy %s output:\n%s", strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// signal sends sig and waits up to timeout for the process to exit.
func (p *proc) stop(t *testing.T, sig syscall.Signal, timeout time.Duration) error {
	t.Helper()
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("eddy did not exit within %v of %v", timeout, sig)
		return nil
	}
}

// waitReady polls url until it answers 200.
func waitReady(t *testing.T, p *proc, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("eddy exited before %s was ready: %v", url, p.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %v (last error %v)", url, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runEddy runs eddy to completion and returns its stdout and stderr.
func runEddy(t *testing.T, timeout time.Duration, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, eddyBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("eddy %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), stderr.String()
}

// lines splits output into non-empty lines.
func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// runEddyErr runs eddy to completion and returns its stdout and how it
// exited (nil: 0), for commands expected to fail.
func runEddyErr(t *testing.T, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, eddyBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("eddy %s: timed out\nstderr:\n%s", strings.Join(args, " "), stderr.String())
	}
	return stdout.String(), err
}

// restartRealBroker stops the real broker of scripts/integration.sh
// (keeping its data), waits down, and starts it again; a test that fails
// while it is down still gets it back.
func restartRealBroker(t *testing.T, down time.Duration) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "kafka-broker.sh")
	if out, err := exec.Command("bash", script, "stop", "--keep-data").CombinedOutput(); err != nil {
		t.Fatalf("stop broker: %v\n%s", err, out)
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = exec.Command("bash", script, "start", "--reuse").Run()
		}
	}()
	time.Sleep(down)
	if out, err := exec.Command("bash", script, "start", "--reuse").CombinedOutput(); err != nil {
		t.Fatalf("start broker: %v\n%s", err, out)
	}
	restarted = true
}
