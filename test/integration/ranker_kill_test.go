package integration

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/modelrec"
	"github.com/eddyrec/eddy/learner/ranker"
	"github.com/eddyrec/eddy/stream"
)

// rankerTraffic is n served lists of 5 items (as the scorer logs them to
// recs) and the clicks answering them (item_ctr drives the clicks), in
// event-time order, 5 s apart; then one event per user an hour later that
// closes every label window.
func rankerTraffic(k *testkafka.Kafka, seed uint64, n, users int) (recs []*kgo.Record, clicks int) {
	rng := rand.New(rand.NewPCG(seed, 5))
	t0 := time.Now().Add(-48 * time.Hour).UnixMilli()
	for i := range n {
		user := fmt.Sprint("u", rng.IntN(users))
		req := fmt.Sprint("req-", i)
		ts := t0 + int64(i)*5000
		items := ""
		var clicked []string
		for j := range 5 {
			id, ctr := fmt.Sprint("i", rng.IntN(100)), rng.Float64()
			if j > 0 {
				items += ","
			}
			items += fmt.Sprintf(`{"item_id":%q,"position":%d,"score":0.5,"features":{"mf_score":%g,"item_ctr":%g}}`, id, j, rng.NormFloat64(), ctr)
			if rng.Float64() < 1/(1+math.Exp(-(4*ctr-2))) && !slices.Contains(clicked, id) {
				clicked = append(clicked, id)
			}
		}
		v := fmt.Sprintf(`{"request_id":%q,"user_id":%q,"model_version":"1","fallback":false,"ts":%d,"items":[%s]}`, req, user, ts, items)
		recs = append(recs, &kgo.Record{Topic: k.Layout.Name(stream.TopicRecs), Key: []byte(user), Value: []byte(v)})
		for c, id := range clicked {
			ev := event.Event{EventID: fmt.Sprint(req, "-", c), UserID: user, ItemID: id, Type: event.Click, Time: time.UnixMilli(ts + 2000).UTC(), RequestID: req}
			recs = append(recs, &kgo.Record{Topic: k.Layout.Name(stream.TopicEvents), Key: []byte(user), Value: ev.AppendJSON(nil)})
			clicks++
		}
	}
	for u := range users {
		user := fmt.Sprint("u", u)
		ev := event.Event{EventID: fmt.Sprint("end-", u), UserID: user, ItemID: "x", Type: event.Impression,
			Time: time.UnixMilli(t0 + int64(n)*5000 + 3_600_000).UTC(), RequestID: "end"}
		recs = append(recs, &kgo.Record{Topic: k.Layout.Name(stream.TopicEvents), Key: []byte(user), Value: ev.AppendJSON(nil)})
	}
	return recs, clicks
}

// TestRankerKill9 kills `eddy learn --stages ranker` with SIGKILL at random
// moments while served lists and clicks arrive, then lets a last process
// finish: every served item must be labelled exactly once (examples = 5 ×
// lists, positives = clicks), and the last model.ranker record must be
// exactly what a plain FTRL learns from the committed examples in order (an
// example applied twice, or lost from the trainer's state, would change
// the weights).
func TestRankerKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes; skipped in -short")
	}
	k := testkafka.Start(t, 3)
	cl := k.NewClient(t, kgo.ProducerLinger(0))
	recs, clicks := rankerTraffic(k, 1, 6000, 200)
	data := t.TempDir() // one data directory, kept across the killed processes
	args := func() []string {
		return append(learnArgs(k, data, "rk9", freeAddr(t)), "--stages", "ranker", "--ranker-group", k.Layout.Prefix+"ranker",
			"--label-window", "1m", "--ranker-publish-every", "500", "--ranker-publish-interval", "200ms")
	}
	rng := rand.New(rand.NewPCG(9, 9))
	const kills = 8
	next, step := 0, len(recs)/(kills+2)
	produce := func(rs []*kgo.Record) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range kills {
		p := startEddy(t, nil, args()...)
		end := min(next+step, len(recs))
		for deadline := time.Now().Add(time.Duration(500+rng.IntN(1500)) * time.Millisecond); time.Now().Before(deadline); {
			if next < end {
				n := min(end-next, 100+rng.IntN(400))
				produce(recs[next : next+n])
				next += n
			}
			time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.done
		if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("child %d ended before it was killed: %v\n%s", i, p.err, p.out.String())
		}
	}
	produce(recs[next:])
	startEddy(t, nil, args()...)

	fc := ranker.DefaultConfig()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var exs []ranker.Example
		for _, r := range k.ReadAll(t, k.Layout.Name(stream.TopicRankerExamples)) {
			if len(r.Value) == 0 {
				continue // a tick
			}
			var x ranker.Example
			if err := ranker.DecodeExample(r.Value, &x); err != nil {
				t.Fatal(err)
			}
			exs = append(exs, x)
		}
		pos := 0
		for _, x := range exs {
			pos += int(x.Label)
		}
		recsN := 0
		for _, r := range recs {
			if r.Topic == k.Layout.Name(stream.TopicRecs) {
				recsN++
			}
		}
		rk := latestRanker(t, k)
		if len(exs) == 5*recsN && pos == clicks && rk != nil {
			want := plainFTRL(t, fc, exs)
			if slices.Equal(rk.Weights, want.Weights) && rk.Bias == want.Bias {
				t.Logf("exact after %d kills: %d lists → %d examples (%d positive = clicks); weights %v bias %.4f", kills, recsN, len(exs), pos, rk.Weights, rk.Bias)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d examples (want %d), %d positive (want %d clicks), latest ranker %+v", len(exs), 5*recsN, pos, clicks, rk)
		}
		time.Sleep(time.Second)
	}
}

// plainFTRL is the trainer's model over exs in order: the bias at index 0,
// the configured features at 1.., nothing else.
func plainFTRL(t *testing.T, cfg ranker.Config, exs []ranker.Example) *modelrec.Ranker {
	t.Helper()
	fc := cfg.FTRL
	fc.Dense = modelrec.MaxRankerFeatures
	f, err := learner.NewFTRL(fc)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range exs {
		fs := []learner.Feature{{Index: 0, Value: 1}}
		for _, nv := range x.Features {
			if i := slices.Index(cfg.Features, nv.Name); i >= 0 {
				fs = append(fs, learner.Feature{Index: uint32(i + 1), Value: nv.Value})
			}
		}
		f.Update(fs, float64(x.Label))
	}
	r := &modelrec.Ranker{Bias: f.Weight(0), Weights: make([]float64, len(cfg.Features))}
	for i := range cfg.Features {
		r.Weights[i] = f.Weight(uint32(i + 1))
	}
	return r
}
