//go:build linux

package archive

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/eddyrec/eddy/internal/testkafka"
)

// TestRoleDiskFull archives to a 64 KiB tmpfs: the role must stop the
// partitions it cannot write, say why (readiness), keep their records, and
// archive every event exactly once after the disk is made larger. It needs
// root to mount the tmpfs; elsewhere it skips (CI runs as root).
func TestRoleDiskFull(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		msg := "cannot mount a tmpfs (needs root): " + strings.TrimSpace(string(out))
		if os.Getenv("EDDY_REQUIRE_REAL_PEERS") == "1" && os.Geteuid() == 0 {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED: " + msg)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	st, err := OpenStore(context.Background(), dir, S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	k := testkafka.Start(t, 2)
	want := produceSynthetic(t, k, 5, 30_000)
	cfg := testConfig()
	cfg.FlushRows = 2000
	cfg.RetryBackoff = 50 * time.Millisecond
	cfg.MaxRetryBackoff = 200 * time.Millisecond
	r, stop := runRole(t, k, st, cfg)
	deadline := time.Now().Add(60 * time.Second)
	var rerr error
	for rerr == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		rerr = r.Ready()
	}
	if rerr == nil {
		t.Fatal("the role never noticed the full disk")
	}
	t.Logf("full disk: %v", rerr)
	// More space: the same role carries on, nothing lost or doubled.
	if out, err := exec.Command("mount", "-o", "remount,size=64m", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	rows := waitRows(t, st, len(want), 60*time.Second)
	if err := r.Ready(); err != nil {
		t.Fatalf("still not ready after the disk has room: %v", err)
	}
	stop()
	checkExactlyOnce(t, rows, want)
}
