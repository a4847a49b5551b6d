package offline

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/trainset"
)

func ev(id, u, i string, typ event.Type, sec int) event.Event {
	return event.Event{EventID: id, UserID: u, ItemID: i, Type: typ, Time: time.Unix(int64(1e9+sec), 0)}
}

// smallSet: users a, b, c; a's last positive is i3, b's only positive is
// its held-out one, c has an impression after its last positive.
func smallSet() *trainset.Set {
	return trainset.FromEvents([]event.Event{
		ev("1", "a", "i1", event.Click, 1),
		ev("2", "a", "i2", event.Click, 2),
		ev("3", "b", "i1", event.Click, 3),
		ev("4", "a", "i3", event.Click, 4),
		ev("5", "c", "i2", event.Click, 5),
		ev("6", "c", "i1", event.Like, 6),
		ev("7", "c", "i4", event.Impression, 7),
		ev("7", "c", "i4", event.Click, 8), // duplicate id: dropped
	}, learner.DefaultConfidence())
}

func TestLeaveLastOutSplitByHand(t *testing.T) {
	s := smallSet()
	if s.Duplicates != 1 || s.Len() != 7 {
		t.Fatalf("duplicates %d, events %d", s.Duplicates, s.Len())
	}
	sp, err := makeSplit(s, nil, splitOptions{protocol: LeaveLastOut})
	if err != nil {
		t.Fatal(err)
	}
	// Held out: a→i3 (event 3), b→i1 (event 2), c→i1 (event 5).
	want := []bool{true, true, false, false, true, false, true}
	if !slices.Equal(sp.Train, want) {
		t.Fatalf("train %v, want %v", sp.Train, want)
	}
	if sp.SkippedUsers != 1 || len(sp.Cases) != 2 {
		t.Fatalf("cases %+v skipped %d; want a and c tested, b skipped", sp.Cases, sp.SkippedUsers)
	}
	a, _ := s.Users.Lookup("a")
	i3, _ := s.Items.Lookup("i3")
	if sp.Cases[0].User != a || !slices.Equal(sp.Cases[0].Targets, []int32{i3}) {
		t.Fatalf("case 0 %+v", sp.Cases[0])
	}
	c, _ := s.Users.Lookup("c")
	i2, _ := s.Items.Lookup("i2")
	if !slices.Equal(sp.Seen[c], []int32{i2}) { // the impression consumes nothing
		t.Fatalf("c's seen %v, want [i2]", sp.Seen[c])
	}
}

func TestTimeSplitByHand(t *testing.T) {
	s := smallSet()
	sp, err := makeSplit(s, nil, splitOptions{protocol: TimeSplit, testFrac: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	// 7 events, cut at 3: train = events 0–2 (a i1, a i2, b i1).
	if !slices.Equal(sp.Train, []bool{true, true, true, false, false, false, false}) {
		t.Fatalf("train %v", sp.Train)
	}
	// a: i3 after the cut is new to it. c learnt nothing before the cut.
	if len(sp.Cases) != 1 || sp.SkippedUsers != 1 {
		t.Fatalf("cases %+v skipped %d", sp.Cases, sp.SkippedUsers)
	}
	if _, err := makeSplit(s, nil, splitOptions{protocol: TimeSplit, testFrac: 0.9}); err == nil {
		t.Fatal("a split with an empty training part was accepted")
	}
}

func TestSampledCandidates(t *testing.T) {
	var es []event.Event
	for u := range 20 {
		for i := range 30 {
			if (u+i)%3 == 0 {
				es = append(es, ev("", string(rune('A'+u)), string(rune('a'+i)), event.Click, u*100+i))
			}
		}
	}
	s := trainset.FromEvents(es, learner.DefaultConfidence())
	o := splitOptions{protocol: Sampled, negatives: 15, seed: 3}
	sp, err := makeSplit(s, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range sp.Cases {
		if len(c.Candidates) != 16 || c.Candidates[0] != c.Targets[0] {
			t.Fatalf("candidates %v", c.Candidates)
		}
		seen := map[int32]bool{}
		for _, i := range c.Candidates[1:] {
			if seen[i] {
				t.Fatal("a negative drawn twice")
			}
			seen[i] = true
			for t2 := range s.Len() {
				if s.User[t2] == c.User && s.Item[t2] == i {
					t.Fatalf("negative %d was touched by user %d", i, c.User)
				}
			}
		}
	}
	again, _ := makeSplit(s, nil, o)
	if !slices.EqualFunc(sp.Cases, again.Cases, func(a, b Case) bool { return slices.Equal(a.Candidates, b.Candidates) }) {
		t.Fatal("the same seed drew different negatives")
	}
	o.negatives = 25 // more than the 20 untouched items of each user
	short, _ := makeSplit(s, nil, o)
	if short.ShortCandidates != len(short.Cases) {
		t.Fatalf("short candidates %d of %d", short.ShortCandidates, len(short.Cases))
	}
}

func TestPositionsTiesCountAgainst(t *testing.T) {
	cases := []struct {
		name        string
		targets     []float32
		competitors []float32
		want        []int
	}{
		{"clear first", []float32{5}, []float32{1, 2, 3}, []int{0}},
		{"tie with one", []float32{2}, []float32{1, 2, 3}, []int{2}},
		{"all tie", []float32{0}, []float32{0, 0, 0, 0}, []int{4}},
		{"two targets", []float32{3, 1}, []float32{2, 0}, []int{0, 2}},
		{"-inf competitors ignored", []float32{1}, []float32{float32(math.Inf(-1)), 2}, []int{1}},
		{"-inf target misses", []float32{float32(math.Inf(-1))}, []float32{1}, []int{math.MaxInt32}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := positions(c.targets, c.competitors); !slices.Equal(got, c.want) {
				t.Fatalf("positions %v, want %v", got, c.want)
			}
		})
	}
}

// fixedScorer scores items by a table, the same for every user.
type fixedScorer []float32

func (f fixedScorer) Scores(_ int32, dst []float32) []float32 { return append(dst[:0], f...) }

func TestEvaluateByHand(t *testing.T) {
	sp := &Split{
		Seen: [][]int32{{0}, {}},
		Cases: []Case{
			{User: 0, Targets: []int32{2}},    // item 0 seen: ranks 3 (5) first, 2 second → hit at 1
			{User: 1, Targets: []int32{1, 4}}, // ranks 0, 3, 2, 4, 1: 4 at 3, 1 at 4
		},
		TrainItems: 5,
	}
	sc := fixedScorer{9, 1, 4, 5, 2}
	m := evaluate(sp, sc, 2, 4, 5)
	// k=2: user 0 hit at position 1 (dcg 1/log2 3); user 1: no hit in top 2.
	wantNDCG := (1 / math.Log2(3)) / 2
	// recall@4: user 0 1/1; user 1: 4 at position 3 → 1 of 2.
	if m.HR != 0.5 || math.Abs(m.NDCG-wantNDCG) > 1e-12 || m.Recall != 0.75 || m.Cases != 2 {
		t.Fatalf("metrics %+v, want HR 0.5 NDCG %v recall 0.75", m, wantNDCG)
	}
	// Top-2 lists: user 0 {3, 2}, user 1 {0, 3}: 3 of 5 items.
	if m.Coverage != 0.6 {
		t.Fatalf("coverage %v, want 0.6", m.Coverage)
	}
}

func TestRunOnSyntheticAndErrors(t *testing.T) {
	s := smallSet()
	cfg := DefaultConfig()
	cfg.IALS.Dim, cfg.MF.Dim = 8, 32
	if _, err := Run(context.Background(), s, cfg, slog.New(slog.DiscardHandler)); !errors.Is(err, trainset.ErrTooSmall) {
		t.Fatalf("Run on 7 events = %v, want ErrTooSmall", err)
	}
	bad := cfg
	bad.Protocol = "random"
	if _, err := Run(context.Background(), s, bad, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("an unknown protocol ran")
	}
	bad = cfg
	bad.Models = []string{"bpr"}
	if _, err := Run(context.Background(), s, bad, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("an unknown model ran")
	}
	bad = cfg
	bad.IALS.UnobservedWeight = math.NaN()
	if _, err := Run(context.Background(), s, bad, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("a NaN hyperparameter ran")
	}
}

func TestSweepNeverReadsTheTestPart(t *testing.T) {
	s := movieLensSet(t, "ml-100k")
	cfg := DefaultConfig()
	cfg.Models = []string{IALS}
	cfg.IALS.Epochs = 4
	grid := Grid{Dim: []int{32}, Epochs: []int{4}, Reg: []float64{0.003}, UnobservedWeight: []float64{0.3, 1}, RegExponent: []float64{1}}
	r, err := Sweep(context.Background(), s, cfg, grid, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Points) != 2 || r.Test == nil || r.Test.IALS.UnobservedWeight != r.Points[r.Best].Config.UnobservedWeight {
		t.Fatalf("sweep %+v", r)
	}
	// The validation split is carved from the training part: its targets
	// are training events, never the test part's held-out items.
	sp, _ := makeSplit(s, nil, cfg.splitOptions())
	vs, _ := makeSplit(s, sp.Train, cfg.splitOptions())
	test := map[[2]int32]bool{}
	for _, c := range sp.Cases {
		test[[2]int32{c.User, c.Targets[0]}] = true
	}
	for _, c := range vs.Cases {
		if test[[2]int32{c.User, c.Targets[0]}] {
			t.Fatalf("validation target of user %d is its test target", c.User)
		}
	}
	for t2, ok := range vs.Train {
		if ok && !sp.Train[t2] {
			t.Fatal("the validation split trains on a test event")
		}
	}
}
