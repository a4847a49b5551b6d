// Package prometheus holds no Go code: its test checks the Prometheus
// rules and the Alertmanager example beside it with the real tools.
package prometheus

import (
	"os"
	"os/exec"
	"testing"
)

func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("EDDY_REQUIRE_REAL_PEERS") == "1" {
			t.Fatalf("%s not on PATH and EDDY_REQUIRE_REAL_PEERS=1", name)
		}
		t.Skipf("%s not on PATH", name)
	}
	return p
}

func run(t *testing.T, tool string, args ...string) {
	t.Helper()
	out, err := exec.Command(tool, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", tool, args, err, out)
	}
	t.Logf("%s", out)
}

func TestPromtoolCheckRules(t *testing.T) {
	run(t, requireTool(t, "promtool"), "check", "rules", "eddy-rules.yml")
}

func TestPromtoolTestRules(t *testing.T) {
	run(t, requireTool(t, "promtool"), "test", "rules", "eddy-rules.test.yml")
}

func TestAmtoolCheckConfig(t *testing.T) {
	if _, err := exec.LookPath("amtool"); err != nil {
		t.Skip("amtool not on PATH (Debian: prometheus-alertmanager)")
	}
	run(t, "amtool", "check-config", "alertmanager.yml")
}
