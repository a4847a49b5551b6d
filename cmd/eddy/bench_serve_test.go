package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/eddyrec/eddy/scorer"
)

func TestBenchServeSmall(t *testing.T) {
	cfg := scorer.DefaultConfig()
	res, err := benchServe(context.Background(), cfg, scorer.SyntheticSpec{Items: 500, Users: 50, Dim: 8, Seen: 3, Seed: 1, Ranker: true},
		5, 300*time.Millisecond, 2, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != 0 || res.Fallbacks != 0 || res.QPS <= 0 || res.P99Ms <= 0 || res.ServedListed < int64(res.Requests) {
		t.Fatalf("unexpected result %+v", res)
	}
}
