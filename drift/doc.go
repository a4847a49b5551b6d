// Package drift owns Eddy's drift detection: the statistics (mergeable
// per-window summaries of a signal and the distances between a window and
// its reference), the signals and their configuration, per-partition
// windows, their merge across partitions, references, DriftReports,
// Prometheus gauges and the retraining trigger policy — everything of the
// drift role that does not touch Kafka.
//
// It does not own consuming eddy.events and eddy.recs, storing state or
// producing to eddy.drift and eddy.control: the stream runtime and
// cmd/eddy wire those around Partition, Merger and Monitor, whose states
// are binary-encodable for that purpose. drift/drifteval runs the same
// code offline over synthetic streams (`eddy eval drift`).
//
// # The pipeline
//
//   - Config (YAML, LoadConfig) names the signals: source (events, recs,
//     outcome), field (Fields), kind, method, threshold, min_samples;
//     DefaultSignals covers the event-type mix, watch ratio, session
//     length, events per user, popularity rank of consumed items, context
//     keys, served scores, served-item rank, fallback rate, ranker
//     features at serving time, CTR of served lists and the share of
//     engagements with items Eddy did not recommend.
//   - Partition turns one partition's records (events and ServedList
//     records, co-partitioned by user_id) into windows: event-time
//     tumbling (floor(t/size), closed when the watermark passes end +
//     lateness) or count-based. Per-user signals and the outcome join keep
//     bounded state (WindowConfig.MaxUsers, MaxRequests). Users can be
//     sampled by id hash (WindowConfig.Sample).
//   - Merger merges the k-th windows of all partitions once every
//     partition has closed through k (idle partitions Advance).
//   - Monitor captures a Reference from the first ReferenceWindows merged
//     windows (and again after Promote), judges every later window into a
//     Report (one per window, JSON for eddy.drift), feeds Policy and
//     Metrics. Policy emits a RetrainRequest when a signal drifts in K
//     consecutive judged windows, once per drift episode, subject to a
//     cooldown and a daily maximum; its decisions depend on event time
//     only, so they replay identically after a restart.
//
// # Calibration
//
// Defaults: 5-minute windows, reference of 12 windows, min 200 samples,
// normalised Wasserstein (numeric) or Jensen–Shannon (categorical, rank)
// with threshold 0.25, 0.1 for binary rates, 0.4 for per-user signals
// (DefaultSignals). Measured with drifteval on the synthetic stream
// (defaults: 10,000 users, 5,000 items, ~15,000 events per window over 4
// partitions): over full days of 288 stationary windows (seeds 11, 12, 13,
// 21) zero alerts and zero retrain requests; the largest score/threshold
// any signal reached was 0.55 (clicked_score, context_country, watch_ratio
// ≈ 0.4–0.55; the per-user signals reached 0.19, i.e. 0.47 of their 0.4);
// the popularity, taste and watch-ratio shifts (strength 1) score 0.4–1.6
// and are detected in the first shifted window with exactly one retrain
// request in the third shifted window. Rank signals compare the current window with
// disjoint halves of the reference (ranks from one, bucket shares from
// the other): ranking and bucketing the same counts showed a systematic
// JS ≈ 0.1 on stationary data. With a catalogue larger than the table
// capacity the Misra–Gries tables still leave a small bias (served-item
// rank ≈ 0.05–0.07 on the synthetic stream).
//
// # Cost
//
// Observing a record costs ~35 ns per numeric value inserted plus map
// lookups; a served list of 10 items × 31 features dominates. Sampling
// users (WindowConfig.Sample) divides the cost; see
// BenchmarkObserve50Signals. Judging a window of 50 signals against its
// reference takes a few milliseconds, once per window.
//
// In the role (Role) a sampled event costs about 2.6–3.9 µs of CPU end to
// end (fetch, decode, observe, the transaction; a served list more, for its
// decode). A partition's state is a snapshot plus the input read since,
// which a restart re-reads (PartitionProcessor), so a batch writes no copy
// of its records; events are decoded into reused Events (event.DecodeInto).
// Before, a record-log copy of every record and a new Event and context map
// per event made it 5.2–6.3 µs (BENCHMARKS.md "Drift role"). How the
// sampled users' records reach the role matters more at a 1% sample: the
// role's own events forwarder reads every event a second time (~1.2 µs per
// event, ~20% of processing CPU), and its recs forwarder every served list
// (~8 µs per list of 10 items × 5 features: 4.4% of the process role's CPU
// at 44k events/s). With RoleConfig.ForwardEvents and ForwardRecs false
// (eddy up's wiring) the process role's user stage and the scorer copy the
// sampled users' records instead (a key hash per record plus the copies).
// Served lists are read with internal/recs, ~4× faster than encoding/json.
// The role keeps its state in memory, rebuilt from its changelogs at start
// (RoleConfig.StateOnDisk), because three idle Badger stores woke their
// compactors 120 times a second, ~20 ms of CPU per second, more than the
// records; and its stages fetch up to 5 s or 1 MiB of input per batch
// (RoleConfig.FetchWait), because every batch is a Kafka transaction whose
// fixed cost outweighed its records at 1 s. Measured on real-time streams
// of 20,000–51,000 events/s with their served lists the role costs ~1.7
// ms of CPU per second plus ~5.7 µs per sampled record, 0.61–0.71% of the
// process role's CPU (BENCHMARKS.md "Drift role").
//
// # Summaries
//
// Numeric signals go into a [Sketch]: a KLL quantile sketch (Karnin, Lang
// and Liberty, "Optimal Quantile Approximation in Streams", 2016) plus the
// exact count, missing count (NaN, ±Inf), min, max, mean and population
// variance (Welford; merged with Chan et al.'s formula) and exact counts of
// the first 5 distinct values. The KLL part is hand-written rather than
// taken from a library because the Go options found on the module proxy
// (github.com/caio/go-tdigest/v4 v4.1.0, github.com/influxdata/tdigest
// v0.0.1) are t-digests: their error has no distribution-free bound and
// grows under repeated merging, while drift compares merged windows against
// merged references. KLL gives a rank error bound that holds for any input
// order and survives merges, is a few hundred lines, and lets the binary layout
// (stored in Badger, sent in reports) be defined and validated here.
//
// Error bound: with accuracy parameter k, the normalised rank error — the
// largest |estimated rank − true rank|/n over all queries — is about
// 1.65% for k = 200 (DefaultK) at 99% confidence, shrinking roughly as
// 1/k (k = 400: ~0.83%); measured worst cases over 300,000 values are
// 1.0% (k = 200) and 0.53% (k = 400). The sketch retains fewer than
// 3k + 8·levels values, levels ≈ log₂(n/k) + 1 (k = 200: ~600 values,
// ≈5 KB, for a million values; ~700 for a billion). Sketches are
// exact (no compaction has happened) while they hold fewer values than
// their capacity. The compaction coin is a fixed-seed xorshift generator, so
// the same input in the same order always gives the same sketch.
//
// Categorical signals go into a [FreqTable]: exact counts for up to
// Capacity distinct keys (DefaultFreqCapacity = 1,000), then a Misra–Gries
// heavy-hitters summary whose evicted mass is kept in an "other" bucket, so
// memory stays bounded under any cardinality; see the type for its bound.
//
// # Distances
//
// Every numeric distance runs on a step CDF: the exact sample (weight 1 per
// value) for the functions taking []float64, or the retained weighted values
// of a sketch for the *Sketch functions. One implementation serves both, so
// the exact functions are checked against scipy to ~1e-12 and the sketch
// functions against the exact values within the sketch error. n_r, n_c are
// the reference and current sizes, F_r, F_c their empirical CDFs.
//
//   - PSI (PSI, PSISketch, PSIFreq, PSICounts): B bins (DefaultBins = 10)
//     (−∞, e₁], (e₁, e₂], …, (e_{B−1}, +∞) with e_i the reference value of
//     rank ceil(i·n_r/B) (numpy quantile method "inverted_cdf" at i/B, in
//     integer arithmetic). p_i, q_i are the reference and current shares;
//     an empty share is replaced by ε = 1e-4 (PSIEpsilon) with no
//     renormalisation, as Evidently does. PSI = Σ (q_i − p_i)·ln(q_i/p_i).
//     Conventions: < 0.1 stable, 0.1–0.25 moderate, > 0.25 significant.
//     For categories the bins are the categories.
//   - Jensen–Shannon distance (JS, JSBinned, JSSketch, JSFreq):
//     scipy.spatial.distance.jensenshannon with its default base e:
//     √((KL(p‖m) + KL(q‖m))/2), m = (p+q)/2, p and q normalised to sum 1;
//     in [0, √ln 2]. Numeric signals use the PSI bins.
//   - Kolmogorov–Smirnov (KS, KSSketch): D = sup_x |F_r(x) − F_c(x)|, equal
//     to scipy.stats.ks_2samp's statistic. p = Q_KS((√nₑ + 0.12 +
//     0.11/√nₑ)·D), nₑ = n_r·n_c/(n_r+n_c), Q_KS(x) = 2 Σ_{j≥1} (−1)^{j−1}
//     e^{−2j²x²} (scipy.stats.kstwobign.sf) with Stephens' correction. This
//     is within a few percent (relative) of scipy's ks_2samp(method="asymp")
//     p-value, which evaluates the exact one-sample distribution at
//     round(nₑ), for nₑ ≥ 10; the golden test bounds the difference.
//     From sketches D is off by at most the two rank errors (≤ ~3.3% at
//     k = 200).
//   - Wasserstein-1 (Wasserstein, WassersteinSketch): ∫|F_r − F_c| dx as
//     scipy.stats.wasserstein_distance. Normalised (NormalizedWasserstein*,
//     Evidently's default for large references): divided by the
//     reference's population standard deviation, floored at 0.001.
//   - Chi-square (ChiSquare, ChiSquareFreq): Pearson's test of homogeneity
//     on the 2×K contingency table of reference and current counts,
//     scipy.stats.chi2_contingency(table, correction=False): expected
//     e_ij = row_i·col_j/N, statistic Σ (o−e)²/e, dof = K−1, p from the
//     chi-square survival function (gonum). Chosen over the goodness-of-fit
//     form (scipy.stats.chisquare with reference-scaled expectations,
//     Evidently's choice) because a category new in the window would give
//     that form an infinite statistic.
//   - Z-test (ZTest, ZTestFreq): two-proportion test with pooled variance,
//     two-sided p = 2·(1 − Φ(|z|)) computed as erfc(|z|/√2).
//
// Sketch-path accuracy (k = 200, measured on the golden cases): KS D within
// 0.009 and Wasserstein within 0.2% of the range of the exact values. PSI
// and binned JS have a noise floor — two sketches of the same data in
// different orders give PSI up to 0.005 and JS up to 0.025 with 20 bins
// (0.001 and 0.01 with 10) — and PSI is sensitive to near-empty bins: at
// n ≈ 300 the sketch PSI was 18% below the exact one. These stay well under
// the 0.1 thresholds; prefer 10 bins, and exact samples for tiny windows.
//
// # Choosing a method
//
// [DefaultMethod] follows Evidently: with at most 1,000 reference values,
// KS for numeric signals with more than 5 distinct values, chi-square for
// more than 2 categories, the Z-test for binary ones, drift when p < 0.05;
// with more, normalised Wasserstein for numeric signals and Jensen–Shannon
// otherwise, drift when the distance is ≥ 0.1. [CompareSketches] and
// [CompareTables] apply a method and return a [Result].
//
// # Tests
//
// testdata/golden.py (numpy, scipy) writes the inputs (testdata/numeric.json,
// testdata/categorical.json) and the expected values (testdata/golden.json);
// the Go tests read them and need no Python.
package drift
