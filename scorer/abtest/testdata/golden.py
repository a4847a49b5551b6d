#!/usr/bin/env python3
"""Golden values for package abtest, computed with statsmodels.

Writes golden.json next to this file; golden_test.go reads it. The Go test
does not need Python: run this only to change the cases.

    pip install numpy scipy statsmodels
    python3 scorer/abtest/testdata/golden.py
"""
import json
import os

import numpy as np
import statsmodels.api as sm
from scipy.stats import norm
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)

ALPHA = 0.05

WILSON = [(0, 10), (1, 10), (5, 10), (10, 10), (3, 1000), (250, 1000), (1, 1), (0, 1), (12345, 1000000), (99, 100)]

# (k1, n1, k0, n0): the variant's clicks and impressions, then the control's.
ZTEST = [(30, 1000, 20, 1000), (5, 200, 9, 180), (0, 50, 3, 60), (120, 10000, 100, 10000), (7, 7, 3, 5), (412, 5120, 377, 4990)]


def ratio_case(name, rng, lists, sizes):
    """lists clusters of the given sizes; per-impression watch seconds are 0
    (not watched) or exponential, with a per-list propensity so that items of
    one list are correlated, as in real served lists."""
    ns = rng.choice(sizes, size=lists)
    ys, groups, out = [], [], []
    for g, n in enumerate(ns):
        p = rng.beta(1, 4)
        y = np.where(rng.random(n) < p, rng.exponential(60, n).round(1), 0.0)
        ys.extend(y)
        groups.extend([g] * n)
        out.append([int(n), float(y.sum())])
    y = np.array(ys)
    res = sm.OLS(y, np.ones(len(y))).fit(cov_type="cluster", cov_kwds={"groups": np.array(groups)}, use_t=False)
    lo, hi = res.conf_int(alpha=ALPHA)[0]
    case = {"name": name, "lists": out, "mean": float(res.params[0]), "se": float(res.bse[0]), "ci": [float(lo), float(hi)]}
    if len(set(ns)) == 1:
        # Lists of one size: the same as the variance of per-list means.
        means = np.array([w / n for n, w in out])
        se = means.std(ddof=1) / np.sqrt(len(means))
        assert abs(se - case["se"]) < 1e-9 * max(1, se), (se, case["se"])
    return case


def main():
    rng = np.random.default_rng(20261206)
    golden = {"z95": float(norm.ppf(1 - ALPHA / 2)), "wilson": [], "ztest": [], "ratio": []}
    for k, n in WILSON:
        lo, hi = proportion_confint(k, n, alpha=ALPHA, method="wilson")
        golden["wilson"].append({"k": k, "n": n, "ci": [float(lo), float(hi)]})
    for k1, n1, k0, n0 in ZTEST:
        z, p = proportions_ztest([k1, k0], [n1, n0], value=0, alternative="two-sided", prop_var=False)
        lo, hi = confint_proportions_2indep(k1, n1, k0, n0, method="wald", compare="diff", alpha=ALPHA)
        golden["ztest"].append({"k1": k1, "n1": n1, "k0": k0, "n0": n0, "z": float(z), "p": float(p), "diff_ci": [float(lo), float(hi)]})
    golden["ratio"].append(ratio_case("ten lists of ten", rng, 10, [10]))
    golden["ratio"].append(ratio_case("sizes 1 to 20", rng, 200, list(range(1, 21))))
    golden["ratio"].append(ratio_case("two lists", rng, 2, [3, 7]))
    golden["ratio"].append(ratio_case("many lists of 10 or 50", rng, 400, [10, 50]))
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.json")
    with open(path, "w") as f:
        # One case a line: readable diffs when a case changes.
        f.write('{"z95": %s,\n' % json.dumps(golden["z95"]))
        for i, key in enumerate(["wilson", "ztest", "ratio"]):
            f.write(' "%s": [\n  ' % key)
            f.write(",\n  ".join(json.dumps(c) for c in golden[key]))
            f.write("\n ]%s\n" % ("," if i < 2 else ""))
        f.write("}\n")


if __name__ == "__main__":
    main()
