package learner

import (
	"fmt"
	"slices"
	"testing"
)

// clusterStream returns a stream where users of group g (user index % 2)
// consume only items of group g (item index % 2), more popular items more.
func clusterStream(users, items, n int, seed uint64) (u, i []int32) {
	s := seed
	for range n {
		s += 0x9E3779B97F4A7C15
		r := splitmix(s)
		uu := int32(r % uint64(users))
		// Zipf-ish within the group: squares favour low indices.
		f := float64(r>>32) / (1 << 32)
		k := int32(f * f * float64(items/2))
		u = append(u, uu)
		i = append(i, 2*k+uu%2)
	}
	return u, i
}

func newTestModel(t testing.TB, seed uint64, users, items int) (*Model, *Catalog, *Catalog) {
	return newTestModelDim(t, seed, users, items, 32)
}

func newTestModelDim(t testing.TB, seed uint64, users, items, dim int) (*Model, *Catalog, *Catalog) {
	t.Helper()
	uc, ic := NewCatalog(), NewCatalog()
	for k := range users {
		uc.Intern(fmt.Sprintf("u%d", k))
	}
	for k := range items {
		ic.Intern(fmt.Sprintf("i%d", k))
	}
	cfg := DefaultMFConfig()
	cfg.Dim = dim
	cfg.Seed = seed
	m, err := NewModel(cfg, uc, ic)
	if err != nil {
		t.Fatal(err)
	}
	return m, uc, ic
}

func TestModelLearnsPreferences(t *testing.T) {
	const users, items = 40, 60
	m, _, _ := newTestModel(t, 1, users, items)
	us, is := clusterStream(users, items, 20000, 5)
	for k := range us {
		m.Learn(us[k], is[k], 1, 1)
	}
	own, total := 0, 0
	var list []Scored
	var scores []float32
	for u := range int32(users) {
		scores = m.Scores(u, items, scores)
		list = TopK(scores, 10, nil, list)
		for _, c := range list {
			total++
			if c.Item%2 == u%2 {
				own++
			}
		}
	}
	if frac := float64(own) / float64(total); frac < 0.95 {
		t.Errorf("%.2f of top-10 items come from the user's own group, want ≥ 0.95", frac)
	}
}

func TestModelDeterministicAndFrozen(t *testing.T) {
	run := func(seed uint64) *Model {
		m, _, _ := newTestModel(t, seed, 20, 30)
		us, is := clusterStream(20, 30, 3000, 9)
		for k := range us {
			label := float32(1)
			if k%5 == 0 {
				label = 0 // some negatives (dislikes)
			}
			m.Learn(us[k], is[k], label, 1)
		}
		return m
	}
	a, b, c := run(1), run(1), run(2)
	sa, sb, sc := a.Scores(3, 30, nil), b.Scores(3, 30, nil), c.Scores(3, 30, nil)
	if !slices.Equal(sa, sb) {
		t.Fatal("same seed, different scores")
	}
	if slices.Equal(sa, sc) {
		t.Fatal("different seeds, same scores")
	}
	a.Freeze()
	a.Learn(3, 4, 1, 1)
	if !slices.Equal(a.Scores(3, 30, nil), sb) {
		t.Fatal("frozen model changed")
	}
	// Unknown items score -Inf; an unknown user scores the item bias.
	s := a.Scores(3, 32, nil)
	if s[31] > -3.4e38 {
		t.Errorf("unknown item scored %v", s[31])
	}
	if got := a.Score(1000, 2); got != a.itemRows[2].Bias {
		t.Errorf("unknown user scored %v, want bias %v", got, a.itemRows[2].Bias)
	}
}

// TestModelEqualsStreamingStages replays a stream twice: once through the
// in-memory Model and once through a user stage and an item stage that
// exchange gradients only through the wire format, as the stream does. The
// resulting vectors must be bit-identical.
func TestModelEqualsStreamingStages(t *testing.T) {
	const users, items = 10, 25
	m, uc, ic := newTestModel(t, 3, users, items)
	cfg := m.cfg
	mf := m.MF()
	// Stage state keyed by id, as the stream keeps it.
	userRows := map[string]*Row{}
	itemRows := map[string]*Row{}
	row := func(rows map[string]*Row, salt uint64, scale float32, id string) *Row {
		r, ok := rows[id]
		if !ok {
			r = &Row{Vec: make([]float32, cfg.Dim)}
			InitRow(cfg.Seed^salt, id, scale, r.Vec)
			rows[id] = r
		}
		return r
	}
	sampler, _ := NewPopularitySampler(cfg.NegativeWindow, cfg.NegativeUniform, cfg.Seed)
	grads := make([]ItemGradient, 1+cfg.Negatives)
	for k := range grads {
		grads[k].Grad = make([]float32, cfg.Dim)
		grads[k].Partition, grads[k].Offset = 0, int64(k)
	}
	du := make([]float32, cfg.Dim)
	var wire []byte
	us, is := clusterStream(users, items, 2000, 4)
	const weight = 0.8
	for k := range us {
		m.Learn(us[k], is[k], 1, weight)

		// User stage.
		uid, iid := uc.ID(us[k]), ic.ID(is[k])
		u := row(userRows, userSeedSalt, cfg.UserInitScale, uid)
		for j := range is[k] + 1 { // items are interned in index order
			row(itemRows, itemSeedSalt, cfg.InitScale, ic.ID(j))
		}
		sampler.SetCatalogSize(len(itemRows))
		ex := []Example{{ItemID: iid, Item: itemRows[iid], Label: 1, Weight: weight}}
		idx := []int32{is[k]}
		for range cfg.Negatives {
			j, ok := sampler.Sample()
			if !ok || j == is[k] {
				continue
			}
			ex = append(ex, Example{ItemID: ic.ID(j), Item: itemRows[ic.ID(j)], Weight: cfg.NegWeight * min(weight, 1)})
			idx = append(idx, j)
		}
		for e := range ex {
			ex[e].Offset = sampler.LogitOffset(idx[e])
		}
		mf.UserStep(u, ex, grads, du)
		// Item stage: gradients cross the wire.
		for e := range ex {
			wire, _ = AppendItemGradient(wire[:0], &grads[e])
			var g ItemGradient
			if err := DecodeItemGradient(wire, &g); err != nil {
				t.Fatal(err)
			}
			if err := mf.ApplyItemGradient(itemRows[g.ItemID], &g); err != nil {
				t.Fatal(err)
			}
		}
		sampler.Observe(is[k])
	}
	for k := range m.userRows {
		if !slices.Equal(m.userRows[k].Vec, userRows[uc.ID(int32(k))].Vec) {
			t.Fatalf("user %d differs", k)
		}
	}
	for k := range m.itemRows {
		r := itemRows[ic.ID(int32(k))]
		if !slices.Equal(m.itemRows[k].Vec, r.Vec) || m.itemRows[k].Bias != r.Bias || m.itemRows[k].Count != r.Count {
			t.Fatalf("item %d differs", k)
		}
	}
}

func TestModelLearnDoesNotAllocate(t *testing.T) {
	m, _, _ := newTestModel(t, 1, 10, 50)
	us, is := clusterStream(10, 50, 500, 2)
	for k := range us {
		m.Learn(us[k], is[k], 1, 1)
	}
	k := 0
	if a := testing.AllocsPerRun(200, func() {
		m.Learn(us[k%len(us)], is[k%len(is)], 1, 1)
		k++
	}); a != 0 {
		t.Errorf("Learn allocates %v times per event", a)
	}
}

func BenchmarkModelLearn(b *testing.B) {
	m, _, _ := newTestModelDim(b, 1, 1000, 10000, 64)
	us, is := clusterStream(1000, 10000, 1<<16, 2)
	for k := range us {
		m.Learn(us[k], is[k], 1, 1)
	}
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		m.Learn(us[k&(1<<16-1)], is[k&(1<<16-1)], 1, 1)
		k++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkTopK10 is one retrieval query: score 10k items at d=64 and keep
// the best 10.
func BenchmarkTopK10(b *testing.B) {
	uc, ic := NewCatalog(), NewCatalog()
	uc.Intern("u")
	for k := range 10000 {
		ic.Intern(fmt.Sprint(k))
	}
	m, err := NewModel(DefaultMFConfig(), uc, ic)
	if err != nil {
		b.Fatal(err)
	}
	m.Learn(0, 9999, 1, 1)
	scores := make([]float32, 0, 10000)
	list := make([]Scored, 0, 10)
	b.ReportAllocs()
	for b.Loop() {
		scores = m.Scores(0, 10000, scores)
		list = TopK(scores, 10, nil, list)
	}
}
