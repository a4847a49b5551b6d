package datasets

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eddyrec/eddy/connectors/archive"
	"github.com/eddyrec/eddy/connectors/importer"
	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/learner"
)

func TestLoadSpecErrors(t *testing.T) {
	for _, c := range []struct{ spec, want string }{
		{"", "--dataset is required"},
		{"movielens:", "the directory is missing"},
		{"parquet:", "the path is missing"},
		{"csv:x.csv", "column mapping"},
		{"hdfs:/x", "want movielens:DIR"},
		{"synthetic:events=abc", "not an integer"},
		{"synthetic:events=0", "want 1–50,000,000"},
		{"synthetic:drift-at=999999999,drift-kind=taste,events=10", "beyond"},
	} {
		_, err := Load(c.spec, Options{Events: 10}, slog.New(slog.DiscardHandler))
		if !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Load(%q) = %v, want ErrSpec containing %q", c.spec, err, c.want)
		}
	}
	// A path that does not exist is a data error, not a usage one.
	if _, err := Load("movielens:/no/such/dir", Options{}, slog.New(slog.DiscardHandler)); err == nil || errors.Is(err, ErrSpec) {
		t.Errorf("missing directory: %v", err)
	}
}

func TestLoadSyntheticAndCSV(t *testing.T) {
	ds, err := Load("synthetic:seed=3", Options{Events: 500}, slog.New(slog.DiscardHandler))
	if err != nil || len(ds.Events) != 500 || ds.Name != "synthetic" {
		t.Fatalf("synthetic: %v, %v", ds, err)
	}
	path := filepath.Join(t.TempDir(), "c.csv")
	os.WriteFile(path, []byte("u,i,ts\nu1,a,1700000000\nu2,b,1700000001\nbad,,x\n"), 0o644)
	cols, _ := importer.ParseColumns("user_id=u,item_id=i,ts=ts")
	ds, err = Load("csv:"+path, Options{CSV: importer.CSVOptions{Columns: cols, Type: event.Click}}, slog.New(slog.DiscardHandler))
	if err != nil || len(ds.Events) != 2 || ds.BadRows != 1 {
		t.Fatalf("csv: %+v, %v", ds, err)
	}
}

func TestFromArchiveEmptyRange(t *testing.T) {
	st, err := archive.OpenStore(context.Background(), t.TempDir(), archive.S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	_, _, err = FromArchive(context.Background(), st, from, from.AddDate(0, 1, 0), learner.DefaultConfidence(), nil, slog.New(slog.DiscardHandler))
	if !errors.Is(err, ErrEmptyRange) || !strings.Contains(err.Error(), "[2026-01-01T00:00:00Z, 2026-02-01T00:00:00Z)") {
		t.Fatalf("FromArchive = %v", err)
	}
}
