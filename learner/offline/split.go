package offline

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/eddyrec/eddy/learner/trainset"
)

// The evaluation protocols.
const (
	// LeaveLastOut holds out each user's last positive and ranks the whole
	// catalogue for it.
	LeaveLastOut = "leave-last-out"
	// TimeSplit trains on the events before a time cut and tests each
	// user's positives after it on items new to them.
	TimeSplit = "time-split"
	// Sampled holds out each user's last positive, as LeaveLastOut, but
	// ranks it against Negatives items the user never touched (He et al.,
	// "Neural Collaborative Filtering", WWW 2017).
	Sampled = "sampled"
)

// Protocols lists the protocols Run knows.
var Protocols = []string{LeaveLastOut, TimeSplit, Sampled}

// Split is one division of a set into training events and test cases.
type Split struct {
	// Train marks the events models learn from.
	Train []bool
	// Cases are the test users, in user order.
	Cases []Case
	// Seen holds, per user, the sorted items the user consumed in the
	// training part: they are never recommended to that user.
	Seen [][]int32
	// TrainItems counts the items with at least one training event, the
	// denominator of catalogue coverage.
	TrainItems int
	// SkippedUsers counts users with something to test but nothing to
	// learn from (their only positive is the held-out one).
	SkippedUsers int
	// ShortCandidates counts sampled cases with fewer negatives than
	// asked for because the user touched nearly the whole catalogue.
	ShortCandidates int
	// popularity counts each item's positive training events, for the
	// popularity bias of the lists.
	popularity []float32
}

// Case is one test user: the held-out items and, for the sampled
// protocol, the candidates to rank (the target first).
type Case struct {
	User       int32
	Targets    []int32
	Candidates []int32
}

// splitOptions are the knobs of makeSplit.
type splitOptions struct {
	protocol  string
	testFrac  float64
	negatives int
	seed      uint64
	maxUsers  int
	// train, when set, is the training part (protocol TimeSplit): the
	// caller chose the cut.
	train []bool
}

// makeSplit divides the events of s that eligible allows (all when nil).
// Events outside eligible are in neither part, so a validation split can
// be carved from a training part without touching the test part.
func makeSplit(s *trainset.Set, eligible []bool, o splitOptions) (*Split, error) {
	n := s.Len()
	in := func(t int) bool { return eligible == nil || eligible[t] }
	sp := &Split{Train: make([]bool, n)}
	users := s.Users.Len()
	heldOut := make([]int32, users) // held-out item per user, -1 none
	for u := range heldOut {
		heldOut[u] = -1
	}
	switch o.protocol {
	case LeaveLastOut, Sampled:
		for t := n - 1; t >= 0; t-- {
			if in(t) && s.Positive[t] && heldOut[s.User[t]] < 0 {
				heldOut[s.User[t]] = s.Item[t]
			}
		}
		for t := range n {
			sp.Train[t] = in(t) && heldOut[s.User[t]] != s.Item[t]
		}
	case TimeSplit:
		if o.train != nil {
			for t := range n {
				sp.Train[t] = in(t) && o.train[t]
			}
			break
		}
		var idx []int
		for t := range n {
			if in(t) {
				idx = append(idx, t)
			}
		}
		cut := int(float64(len(idx)) * (1 - o.testFrac))
		if cut < 1 || cut >= len(idx) {
			return nil, fmt.Errorf("offline: time split of %d events at %.0f %% leaves a part empty", len(idx), 100*(1-o.testFrac))
		}
		for _, t := range idx[:cut] {
			sp.Train[t] = true
		}
	default:
		return nil, fmt.Errorf("offline: protocol %q: want one of %v", o.protocol, Protocols)
	}
	// What each user learns from and consumed.
	learns := make([]bool, users)
	seen := make([][]int32, users)
	touched := make([][]int32, users)
	itemTrained := make([]bool, s.Items.Len())
	sp.popularity = make([]float32, s.Items.Len())
	for t := range n {
		if !in(t) {
			continue
		}
		u, i := s.User[t], s.Item[t]
		touched[u] = append(touched[u], i)
		if !sp.Train[t] {
			continue
		}
		if s.Weight[t] > 0 {
			learns[u] = true
			itemTrained[i] = true
		}
		if s.Positive[t] {
			sp.popularity[i]++
		}
		if s.Consumes[t] {
			seen[u] = append(seen[u], i)
		}
	}
	for u := range seen {
		seen[u] = sortedSet(seen[u])
	}
	sp.Seen = seen
	for _, ok := range itemTrained {
		if ok {
			sp.TrainItems++
		}
	}
	// The cases.
	targets := make([][]int32, users)
	switch o.protocol {
	case LeaveLastOut, Sampled:
		for u, i := range heldOut {
			if i >= 0 {
				targets[u] = []int32{i}
			}
		}
	case TimeSplit:
		for t := range n {
			u, i := s.User[t], s.Item[t]
			if in(t) && !sp.Train[t] && s.Positive[t] {
				if _, found := slices.BinarySearch(seen[u], i); !found {
					targets[u] = append(targets[u], i)
				}
			}
		}
	}
	for u, ts := range targets {
		if len(ts) == 0 {
			continue
		}
		if !learns[u] {
			sp.SkippedUsers++
			continue
		}
		sp.Cases = append(sp.Cases, Case{User: int32(u), Targets: sortedSet(ts)})
	}
	if o.maxUsers > 0 && len(sp.Cases) > o.maxUsers {
		rng := rand.New(rand.NewPCG(o.seed, 0x75736572))
		rng.Shuffle(len(sp.Cases), func(a, b int) { sp.Cases[a], sp.Cases[b] = sp.Cases[b], sp.Cases[a] })
		sp.Cases = sp.Cases[:o.maxUsers]
		slices.SortFunc(sp.Cases, func(a, b Case) int { return int(a.User) - int(b.User) })
	}
	if o.protocol == Sampled {
		items := s.Items.Len()
		for c := range sp.Cases {
			cs := &sp.Cases[c]
			tu := sortedSet(touched[cs.User])
			free := items - len(tu)
			want := o.negatives
			if free < want {
				want = free
				sp.ShortCandidates++
			}
			// Each user's negatives come from its own stream, so they do
			// not depend on which other users are tested.
			rng := rand.New(rand.NewPCG(o.seed, uint64(cs.User)))
			cand := make([]int32, 1, 1+want)
			cand[0] = cs.Targets[0]
			picked := map[int32]bool{}
			for len(cand) < 1+want {
				i := int32(rng.IntN(items))
				if _, hit := slices.BinarySearch(tu, i); hit || picked[i] {
					continue
				}
				picked[i] = true
				cand = append(cand, i)
			}
			cs.Candidates = cand
		}
	}
	return sp, nil
}

func sortedSet(v []int32) []int32 {
	slices.Sort(v)
	return slices.Compact(v)
}

// SplitAt divides s into the events train marks (the caller's cut, for
// example everything before a time) and test cases: each user's positives
// outside train on items the user did not consume in train, ranked against
// the whole catalogue minus those items — the time-split protocol at a
// given cut. maxUsers > 0 keeps a seeded sample of that many cases.
func SplitAt(s *trainset.Set, train []bool, maxUsers int, seed uint64) (*Split, error) {
	if len(train) != s.Len() {
		return nil, fmt.Errorf("offline: a training mask of %d events for a set of %d", len(train), s.Len())
	}
	return makeSplit(s, nil, splitOptions{protocol: TimeSplit, seed: seed, maxUsers: maxUsers, train: train})
}
