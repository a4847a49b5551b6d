// Package movielenstest locates the shared MovieLens copies for tests and
// benchmarks. The data is never part of the repository: it lives in the
// directory named by EDDY_DATA_DIR, or in ../shared/data beside the module
// root. Under CI=true a missing dataset fails the test; elsewhere it skips.
package movielenstest

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the directory of dataset name (for example "ml-100k"), or ends
// the test: Fatal under CI=true, Skip elsewhere.
func Dir(tb testing.TB, name string) string {
	tb.Helper()
	root := dataRoot()
	if root != "" {
		d := filepath.Join(root, name)
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
	}
	msg := "dataset " + name + " not found (set EDDY_DATA_DIR or place it in ../shared/data beside the module root)"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}

// dataRoot returns EDDY_DATA_DIR, or ../shared/data relative to the
// directory holding go.mod, found by walking up from the working directory
// (go test runs in the package directory).
func dataRoot() string {
	if d := os.Getenv("EDDY_DATA_DIR"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(d), "shared", "data")
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}
