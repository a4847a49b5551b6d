package drift_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/eddyrec/eddy/drift"
)

// A reference window and a live window of a numeric signal, compared with
// the method Evidently would pick for a 5,000-value reference.
func ExampleCompareSketches() {
	r := rand.New(rand.NewPCG(1, 2))
	ref, cur := &drift.Sketch{}, &drift.Sketch{}
	for range 5000 {
		ref.Insert(r.NormFloat64())
	}
	for range 2000 {
		cur.Insert(0.5 + r.NormFloat64()) // the mean moved by half a std
	}
	res, err := drift.CompareSketches(ref, cur, drift.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s drifted=%v score=%.2f threshold=%v\n", res.Method, res.Drifted, res.Score, res.Threshold)
	// Output: wasserstein drifted=true score=0.42 threshold=0.1
}

// Categorical signals use frequency tables; a category new in the window
// counts as its own column.
func ExampleCompareTables() {
	ref, cur := &drift.FreqTable{}, &drift.FreqTable{}
	for i := range 600 {
		ref.Insert([]string{"click", "watch", "skip"}[i%3])
	}
	for i := range 400 {
		cur.Insert([]string{"click", "watch", "skip", "like"}[i%4])
	}
	res, _ := drift.CompareTables(ref, cur, drift.Options{})
	fmt.Printf("%s drifted=%v p<1e-6: %v\n", res.Method, res.Drifted, res.PValue < 1e-6)
	// Output: chisquare drifted=true p<1e-6: true
}
