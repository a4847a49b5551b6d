// Package synth generates a seeded, reproducible stream of synthetic
// interaction events with known ground truth, for tests, demos, benchmarks,
// drift experiments and prequential evaluation.
//
// It owns the generative model and its configuration (Config, ParseSpec). It
// does not own transport: posting events over HTTP, producing them to Kafka or
// pacing them in wall-clock time is the caller's job (cmd/eddy wires that).
//
// # Model
//
// Latent factors. Every user u and item i has a latent vector of Config.Dim
// components drawn from N(0, Dim^-1/2), so the affinity a(u,i) = u·v has unit
// variance whatever the dimension. Affinity is the ground truth a recommender
// should recover; Generator.Affinity, Generator.ClickProbability and
// Generator.TopItems expose it.
//
// Popularity. Items get a random popularity rank r(i) in 1..Items and an
// impression weight proportional to r^-ZipfS (a finite Zipf law). Users get
// an activity weight proportional to rank^-UserActivityS, so a few users are
// much more active than most. Both are sampled in O(1) with alias tables.
//
// Sessions. The generator keeps ConcurrentSessions sessions open at once and
// picks one uniformly for every event, so the events of different users
// interleave as they would on a busy service. A session belongs to one user
// and one device, and serves a geometric number of requests (mean
// SessionLength); when it ends, a new user (drawn by activity) takes its slot.
//
// The funnel. A request is one served list of ImpressionsPerRequest distinct
// items: a share Explore of the slots is filled uniformly at random, the rest
// by popularity. All events of a request carry the same RequestID, so a
// joiner can match clicks to the impressions they answer. For each shown item
// at position p the user clicks with probability
//
//	sigmoid(b + AffinityWeight·a(u,i) + PopularityWeight·pop(i) − PositionDecay·p)
//
// where pop(i) = 1 − ln r(i)/ln Items lies in [0,1] and the intercept b is
// calibrated at construction so that the expected click-through rate equals
// TargetCTR. A click is followed by a watch event with probability WatchProb.
// Item lengths are log-normal (median ItemLengthMedian seconds, shape
// ItemLengthSigma) and fixed per item. The watch completes (ratio in
// [0.9,1], dense near 1) with probability
// sigmoid(CompletionBias + CompletionWeight·a); otherwise the ratio falls in
// [0,0.9) with its mass near 0 (an early abandon). After a watch the user may
// like it (more likely for long watches of good matches), dislike it (short
// watches of bad matches), skip it (ratio under 0.1), purchase (ratio at
// least 0.5) or rate it (0.5–5 in half steps, driven by affinity). The rates
// are LikeRate, DislikeRate, SkipRate, PurchaseRate and RatingRate.
//
// Time. Event time starts at Config.Start and advances by exponential gaps of
// mean MeanInterEvent, so timestamps never decrease and are a pure function
// of the seed. The clock is global: the gap between a click and its watch
// reflects how many other events interleave, not the seconds watched.
//
// # Drift
//
// With DriftKind set and a trigger (DriftAt, an event count, or DriftAtTime,
// an event time) the model changes once, abruptly, at the trigger:
//
//   - popularity: a share DriftStrength of the items get their popularity
//     ranks shuffled among themselves, so formerly cold items become hot;
//   - taste: every user vector becomes sqrt(1−s)·u + sqrt(s)·z with fresh
//     noise z (s = DriftStrength; 1 resamples tastes completely);
//   - watch-ratio: every watch ratio is multiplied by 1 − DriftStrength/2, as
//     a broken player would do.
//
// A request is decided whole when it is generated, so follow-up events of
// requests generated before the trigger keep their pre-drift outcomes.
//
// # Determinism
//
// The same Config produces the same stream, event for event, on every run:
// all randomness comes from PCG generators (math/rand/v2) seeded from
// Config.Seed, with separate streams for the model, the traffic, the
// calibration and the drift, and no map iteration or wall clock is involved.
// Floating-point results may differ in the last bit on architectures that fuse
// multiply-adds (arm64), which can in rare cases change an outcome.
package synth
