package drift

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

// A small data-driven test runner in the style of cockroachdb/datadriven
// (not imported, to keep its dependencies out of go.mod). A script is a
// sequence of cases:
//
//	command key=value key=value ...
//	optional input lines
//	----
//	expected output
//	<blank line>
//
// Lines starting with # between cases are comments. Run with -rewrite to
// regenerate the expected outputs from the code (then review the diff).

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata scripts")

type scriptCase struct {
	pos   string
	cmd   string
	args  map[string]string
	order []string
	input string
}

func (c *scriptCase) arg(key, def string) string {
	if v, ok := c.args[key]; ok {
		return v
	}
	return def
}

func runScript(t *testing.T, path string, run func(t *testing.T, c *scriptCase) string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	f.Close()
	var out strings.Builder
	for i := 0; i < len(lines); {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			out.WriteString(l + "\n")
			i++
			continue
		}
		c := &scriptCase{pos: fmt.Sprintf("%s:%d", path, i+1), args: map[string]string{}}
		fields := strings.Fields(l)
		c.cmd = fields[0]
		for _, kv := range fields[1:] {
			k, v, _ := strings.Cut(kv, "=")
			c.args[k] = v
			c.order = append(c.order, k)
		}
		out.WriteString(l + "\n")
		i++
		var in []string
		for i < len(lines) && lines[i] != "----" {
			in = append(in, lines[i])
			out.WriteString(lines[i] + "\n")
			i++
		}
		if i == len(lines) {
			t.Fatalf("%s: missing ----", c.pos)
		}
		i++ // ----
		c.input = strings.Join(in, "\n")
		var want []string
		for i < len(lines) && lines[i] != "" {
			want = append(want, lines[i])
			i++
		}
		got := strings.TrimRight(run(t, c), "\n")
		if got == "" {
			got = "ok"
		}
		out.WriteString("----\n" + got + "\n")
		if !*rewrite && got != strings.Join(want, "\n") {
			t.Errorf("%s: %s\n got:\n%s\nwant:\n%s", c.pos, l, got, strings.Join(want, "\n"))
		}
	}
	if *rewrite {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
