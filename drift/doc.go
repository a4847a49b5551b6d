// Package drift owns the statistics of Eddy's drift detection: mergeable
// per-window summaries of a signal and the distances between a window and
// its reference.
//
// It does not own windows over Kafka, the stream processor that fills the
// summaries, trigger policies or report outputs; those build on this
// package.
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
