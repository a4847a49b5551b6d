package task_test

import (
	"context"
	"encoding/binary"
	"log/slog"
	"os"
	"os/signal"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/stream/task"
)

// clickCounter keeps a click count per user and emits the new count.
type clickCounter struct{ out string }

func (c clickCounter) Process(_ context.Context, recs []*kgo.Record, b *task.Batch) error {
	var buf [8]byte
	for _, r := range recs {
		v, ok, err := b.Get(r.Key)
		if err != nil {
			return err
		}
		var n uint64
		if ok && len(v) == 8 {
			n = binary.LittleEndian.Uint64(v)
		}
		binary.LittleEndian.PutUint64(buf[:], n+1)
		if err := b.Put(r.Key, buf[:]); err != nil {
			return err
		}
		b.Emit(c.out, r.Key, buf[:])
	}
	return nil
}

// Example runs a counting processor over eddy.events. The state lives in
// /var/lib/eddy/clicks-counts; its changelog is clicks-counts-changelog.
// Starting a second process with the same Group moves half the partitions
// to it; killing either at any moment loses and repeats nothing.
func Example() {
	cfg := task.DefaultConfig()
	cfg.Client.Brokers = []string{"127.0.0.1:9092"}
	cfg.Group, cfg.Store, cfg.Topic = "clicks", "counts", "eddy.events"
	cfg.DataDir = "/var/lib/eddy"
	rt, err := task.New(cfg, func(int32) (task.Processor, error) {
		return clickCounter{out: "eddy.click-counts"}, nil
	}, prometheus.DefaultRegisterer, slog.Default())
	if err != nil {
		slog.Error("start", "err", err)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// Run returns nil after a clean shutdown: batches in flight are
	// committed and the group is left.
	if err := rt.Run(ctx); err != nil {
		slog.Error("stream task runtime stopped", "err", err)
	}
}
