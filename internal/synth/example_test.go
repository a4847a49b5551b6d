package synth_test

import (
	"fmt"
	"log"

	"github.com/eddyrec/eddy/event"
	"github.com/eddyrec/eddy/internal/synth"
)

func Example() {
	cfg, err := synth.ParseSpec("users=100,items=50,seed=7")
	if err != nil {
		log.Fatal(err)
	}
	g, err := synth.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	// Print the first events, then skip impressions until the first watch.
	var e event.Event
	for g.Emitted() < 3 || e.Type != event.Watch {
		g.Next(&e)
		if g.Emitted() <= 3 || e.Type != event.Impression {
			fmt.Println(e.EventID, e.Time.Format("15:04:05.000"), e.UserID, e.Type, e.ItemID, e.RequestID, e.Context["device"])
		}
	}
	fmt.Printf("watched %.1f of %.0f s\n", e.Value, e.Duration)

	// Ground truth for evaluation.
	u, _ := g.UserIndex(e.UserID)
	i, _ := g.ItemIndex(e.ItemID)
	fmt.Printf("affinity %.2f, P(click at position 0) %.2f\n", g.Affinity(u, i), g.ClickProbability(u, i, 0))
	// Output:
	// e7-0 00:00:00.021 u8 impression i30 r7-0 tv
	// e7-1 00:00:00.023 u43 impression i22 r7-1 tv
	// e7-2 00:00:00.033 u76 impression i42 r7-2 mobile
	// e7-302 00:00:05.553 u22 click i22 r7-39 mobile
	// e7-307 00:00:05.695 u58 click i15 r7-15 mobile
	// e7-313 00:00:05.916 u58 watch i15 r7-15 mobile
	// watched 106.6 of 108 s
	// affinity 2.11, P(click at position 0) 0.63
}

func ExampleParseSpec() {
	cfg, err := synth.ParseSpec("users=1000,items=500,seed=7,drift-at=50000,drift-kind=taste,dim=16")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg.Users, cfg.Items, cfg.Seed, cfg.DriftAt, cfg.DriftKind)
	fmt.Println(cfg.Spec())

	_, err = synth.ParseSpec("drift-kind=seasonal,drift-at=10")
	fmt.Println(err)
	// Output:
	// 1000 500 7 50000 taste
	// seed=7,users=1000,items=500,drift-at=50000,drift-kind=taste
	// synth: spec: drift-kind="seasonal": unknown drift kind (want none, popularity, taste or watch-ratio)
}
