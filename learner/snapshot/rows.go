package snapshot

import (
	"github.com/eddyrec/eddy/learner/ials"
	"github.com/eddyrec/eddy/learner/modelrec"
	"github.com/eddyrec/eddy/learner/trainset"
)

// Rows returns the records of a model trained on s, users first: one per user and item
// that had at least one weighted event, keyed by its id. A user's record
// carries its last seen consumed items (oldest first), as the online user
// stage's does, so the scorer can exclude them; an item's Popularity is its
// number of positive events in the set (not decayed: promotion keeps the
// live stage's decayed counts). Updates is the row's number of weighted
// events and TsMillis the time of its newest one.
func Rows(s *trainset.Set, f *ials.Factors, seen int, version uint64) []Record {
	return RowsOf(s, f, seen, version, nil)
}

// RowsOf is Rows over the events keep allows (all when nil): the model
// trained on part of s (the retrain role's events before its cut-off)
// carries only what that part taught it.
func RowsOf(s *trainset.Set, f *ials.Factors, seen int, version uint64, keep []bool) []Record {
	var out []Record
	users, items := s.Users.Len(), s.Items.Len()
	uCount, iCount := make([]uint64, users), make([]uint64, items)
	uTs, iTs := make([]int64, users), make([]int64, items)
	pop := make([]float32, items)
	recent := make([][]int32, users)
	for t := range s.Len() {
		if keep != nil && !keep[t] {
			continue
		}
		u, i := s.User[t], s.Item[t]
		if s.Consumes[t] && seen > 0 {
			r := recent[u]
			for k, x := range r { // move a repeat to the end
				if x == i {
					r = append(r[:k], r[k+1:]...)
					break
				}
			}
			if len(r) == seen {
				r = r[1:]
			}
			recent[u] = append(r, i)
		}
		if s.Weight[t] <= 0 {
			continue
		}
		uCount[u]++
		iCount[i]++
		uTs[u], iTs[i] = s.TsMillis[t], s.TsMillis[t]
		if s.Positive[t] {
			pop[i]++
		}
	}
	for u := range users {
		if uCount[u] == 0 {
			continue
		}
		ids := make([]string, len(recent[u]))
		for k, i := range recent[u] {
			ids[k] = s.Items.ID(i)
		}
		out = append(out, Record{Key: s.Users.ID(int32(u)), Vector: modelrec.Vector{Kind: modelrec.KindUser, ModelVersion: version,
			Updates: uCount[u], TsMillis: uTs[u], Vec: f.User(u), Seen: ids}})
	}
	for i := range items {
		if iCount[i] == 0 {
			continue
		}
		out = append(out, Record{Key: s.Items.ID(int32(i)), Vector: modelrec.Vector{Kind: modelrec.KindItem, ModelVersion: version,
			Updates: iCount[i], TsMillis: iTs[i], Popularity: pop[i], Vec: f.Item(i)}})
	}
	return out
}
