#!/usr/bin/env python3
"""Golden values for package drift, computed independently with numpy/scipy.

Run from this directory:  python3 golden.py
Writes numeric.json and categorical.json (the inputs) and golden.json (the
expected values). The Go tests read these files and need no Python.

Tested with numpy 2.4.6, scipy 1.17.1. Inputs are rounded to 4 decimals so
the committed files stay small; they are the inputs, so rounding loses
nothing.
"""

import json
import math
from collections import Counter

import numpy as np
import scipy
from scipy import stats
from scipy.spatial import distance

EPS = 1e-4  # PSI epsilon for empty bins (Evidently's)


def numeric_cases():
    rng = np.random.default_rng(20261123)
    r = lambda x: np.round(np.asarray(x, dtype=float), 4)
    ref = r(rng.normal(0, 1, 2000))
    cases = [
        ("same_sample", ref, r(rng.permutation(ref))),
        ("same_dist", ref, r(rng.normal(0, 1, 1500))),
        ("shifted_mean", ref, r(rng.normal(0.5, 1, 1500))),
        ("scaled_variance", ref, r(rng.normal(0, 2, 1500))),
        ("slight_shift", r(rng.normal(0, 1, 400)), r(rng.normal(0.2, 1, 350))),
        ("tiny", r(rng.normal(0, 1, 12)), r(rng.normal(0.3, 1, 9))),
        ("small_uniform", r(rng.uniform(0, 1, 300)), r(rng.uniform(0.1, 1.1, 200))),
        ("discrete_ties", r(rng.poisson(3.0, 3000)), r(rng.poisson(3.5, 2500))),
        ("constant_ref", r(np.full(50, 5.0)), r(rng.normal(5, 0.1, 60))),
        ("large_lognormal", r(rng.lognormal(0, 0.75, 10000)), r(rng.lognormal(0.1, 0.75, 10000))),
    ]
    return cases


def edges(ref, bins):
    """Reference value of rank ceil(i*n/bins), i = 1..bins-1 (inverted CDF)."""
    s = np.sort(ref)
    n = len(s)
    return np.array([s[-(-i * n // bins) - 1] for i in range(1, bins)])


def bin_shares(x, e, bins):
    # Bins (-inf, e1], (e1, e2], ..., (e_{B-1}, inf): index = #edges < x.
    idx = np.searchsorted(e, x, side="left")
    return np.bincount(idx, minlength=bins) / len(x)


def psi(p, q):
    total = 0.0
    for pi, qi in zip(p, q):
        pi = EPS if pi == 0 else pi
        qi = EPS if qi == 0 else qi
        total += (qi - pi) * math.log(qi / pi)
    return total


def numeric_expected(name, ref, cur):
    out = {"name": name}
    ks = stats.ks_2samp(ref, cur, method="asymp")
    n1, n2 = len(ref), len(cur)
    en = math.sqrt(n1 * n2 / (n1 + n2))
    out["ks_d"] = float(ks.statistic)
    out["ks_p_scipy_asymp"] = float(ks.pvalue)
    out["ks_p_stephens"] = float(stats.kstwobign.sf((en + 0.12 + 0.11 / en) * ks.statistic))
    w = stats.wasserstein_distance(ref, cur)
    out["wasserstein"] = float(w)
    out["wasserstein_norm"] = float(w / max(np.std(ref), 0.001))
    for bins in (10, 20):
        e = edges(ref, bins)
        p, q = bin_shares(ref, e, bins), bin_shares(cur, e, bins)
        out[f"psi_{bins}"] = psi(p, q)
        out[f"js_{bins}"] = float(distance.jensenshannon(p, q))
    out["ref_mean"] = float(np.mean(ref))
    out["ref_std"] = float(np.std(ref))
    out["cur_mean"] = float(np.mean(cur))
    out["cur_std"] = float(np.std(cur))
    return out


def categorical_cases():
    rng = np.random.default_rng(7)
    five = ["a", "b", "c", "d", "e"]
    base = [0.4, 0.3, 0.15, 0.1, 0.05]

    def draw(keys, probs, n):
        return [str(k) for k in rng.choice(keys, size=n, p=probs)]

    ref = draw(five, base, 2000)
    return [
        ("same_dist", ref, draw(five, base, 1500)),
        ("shifted", ref, draw(five, [0.25, 0.3, 0.2, 0.15, 0.1], 1500)),
        ("new_category", ref, draw(five + ["f"], [0.36, 0.27, 0.135, 0.09, 0.045, 0.1], 1500)),
        ("disjoint", draw(["a", "b", "c"], [0.5, 0.3, 0.2], 400), draw(["x", "y"], [0.6, 0.4], 300)),
        ("tiny", ["a", "b", "a", "c", "a", "b", "a", "a"], ["b", "b", "c", "a", "b", "c"]),
        ("binary_same", draw(["no", "yes"], [0.7, 0.3], 800), draw(["no", "yes"], [0.7, 0.3], 600)),
        ("binary_shift", draw(["no", "yes"], [0.7, 0.3], 800), draw(["no", "yes"], [0.6, 0.4], 600)),
    ]


def categorical_expected(name, ref, cur):
    cr, cc = Counter(ref), Counter(cur)
    keys = sorted(set(cr) | set(cc))
    r = np.array([cr[k] for k in keys], dtype=float)
    c = np.array([cc[k] for k in keys], dtype=float)
    out = {"name": name, "keys": keys}
    chi = stats.chi2_contingency(np.vstack([r, c]), correction=False)
    out["chi2_stat"] = float(chi.statistic)
    out["chi2_p"] = float(chi.pvalue)
    out["chi2_dof"] = int(chi.dof)
    out["js"] = float(distance.jensenshannon(r, c))
    out["js_base2"] = float(distance.jensenshannon(r, c, base=2))
    out["psi"] = psi(r / r.sum(), c / c.sum())
    if len(keys) == 2:
        # Two-proportion z-test, pooled variance; success = first key.
        n1, n2 = r.sum(), c.sum()
        p1, p2 = r[0] / n1, c[0] / n2
        pool = (r[0] + c[0]) / (n1 + n2)
        z = (p1 - p2) / math.sqrt(pool * (1 - pool) * (1 / n1 + 1 / n2))
        out["z"] = z
        out["z_p"] = float(2 * stats.norm.sf(abs(z)))
        # Independent cross-check: z^2 is the uncorrected 2x2 chi-square.
        assert math.isclose(z * z, chi.statistic, rel_tol=1e-9)
    return out


def functions():
    return {
        "kstwobign_sf": [[x, float(stats.kstwobign.sf(x))]
                         for x in (0.05, 0.3, 0.5, 0.8, 1.0, 1.17, 1.19, 1.36, 1.63, 2.0, 3.0, 4.0)],
        "chi2_sf": [[x, k, float(stats.chi2.sf(x, k))]
                    for x, k in ((0.5, 1), (3.84, 1), (10.0, 3), (2.0, 4), (50.0, 10), (300.0, 50))],
    }


def main():
    num = numeric_cases()
    cat = categorical_cases()
    with open("numeric.json", "w") as f:
        json.dump([{"name": n, "ref": a.tolist(), "cur": b.tolist()} for n, a, b in num], f)
    with open("categorical.json", "w") as f:
        json.dump([{"name": n, "ref": a, "cur": b} for n, a, b in cat], f)
    golden = {
        "generator": f"golden.py with numpy {np.__version__}, scipy {scipy.__version__}",
        "numeric": [numeric_expected(n, a, b) for n, a, b in num],
        "categorical": [categorical_expected(n, a, b) for n, a, b in cat],
        "functions": functions(),
    }
    with open("golden.json", "w") as f:
        json.dump(golden, f, indent=1)


if __name__ == "__main__":
    main()
