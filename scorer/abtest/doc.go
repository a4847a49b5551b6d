// Package abtest analyses the scorer's experiments (Config.Variants): it
// joins served lists (the recs topic) with the engagements that answer
// them (events with a request_id) and reports, per variant, lists served,
// impressions, clicks, click-through rate and watch time per impression
// with 95% intervals, and each variant's CTR against a control variant.
//
// The join (Experiment): an engagement counts when its request_id names
// a served list and its item is in that list; a click counts at most once
// per (list, item); watch seconds of distinct events add up; events are
// de-duplicated by event_id. Every list of a variant counts, fallback
// lists included (the comparison is by assignment, as users were split).
//
// The statistics, each tested against statsmodels
// (testdata/golden.py writes testdata/golden.json):
//   - CTR: Wilson score interval (Wilson), as
//     statsmodels.stats.proportion.proportion_confint(method="wilson");
//   - CTR against control: pooled two-proportion z-test (TwoProportionZ,
//     as proportions_ztest) and the unpooled Wald interval of the
//     difference (DiffCI, as confint_proportions_2indep(method="wald"));
//   - watch seconds per impression: the ratio of totals Σwatch/Σimpressions
//     with a per-list clustered standard error (Ratio), the delta-method
//     variance Σ(w_l − R·n_l)² / (Σn)² · G/(G−1) over the G lists with an
//     impression: what an OLS of per-impression watch seconds on a
//     constant reports with standard errors clustered by list (statsmodels
//     cov_type="cluster"), and, for lists of one size, the variance of the
//     per-list means. Items of one list share a user and a moment, so
//     treating impressions as independent would understate it.
//
// The CTR interval and test treat impressions as independent Bernoulli
// trials, the textbook form; when clicks cluster within lists they are
// somewhat too narrow (Ratio applied to clicks gives the clustered form).
//
// It imports the standard library only: the scorer writes what it reads,
// and cmd/eddy ("eddy report ab") reads the topics and decodes events.
package abtest
