// Package prequential replays a time-ordered event stream through Eddy's
// models in test-then-train order: for every positive event it first asks
// each model for the user's top-K (items the user already consumed
// excluded), scores the hit and NDCG, and only then lets the model learn
// from the event. It reports HR@K, NDCG@K, catalogue coverage and
// throughput per model, per-window curves, and paired significance tests
// over windows, and writes the curves as CSV and a PNG plot.
//
// The models are the online MF (learner.Model, the same update functions
// the streaming stages run), the online MF re-ranked by the FTRL ranker, a
// decayed-popularity baseline and the MF frozen after the first part of
// the stream. Given the index of a known change in the stream
// (Config.Shift, e.g. the synthetic generator's drift point) it also
// reports each model's Recovery: HR before the change, its dip, the level
// it settles at, and how many windows it takes to get back. The package
// owns evaluation only; datasets come from connectors (MovieLens) or the
// synthetic generator.
package prequential
