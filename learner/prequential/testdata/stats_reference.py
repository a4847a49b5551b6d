#!/usr/bin/env python3
"""Golden values for stats_test.go, from SciPy (independent reference).

Run: python3 testdata/stats_reference.py > testdata/stats_golden.json
"""
import json

import numpy as np
import scipy
from scipy import stats

cases = {
    "distinct": (
        [0.31, 0.28, 0.35, 0.40, 0.22, 0.30, 0.33, 0.29, 0.37, 0.41, 0.26, 0.34],
        [0.25, 0.27, 0.30, 0.31, 0.24, 0.26, 0.28, 0.30, 0.29, 0.33, 0.21, 0.30],
    ),
    # ties among |differences| and zero differences
    "ties_and_zeros": (
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
        [1, 1, 2, 5, 4, 6, 5, 9, 7, 8, 11, 10, 12, 15],
    ),
    "negative_shift": (
        [0.10, 0.12, 0.08, 0.11, 0.09, 0.13, 0.10, 0.07],
        [0.15, 0.14, 0.16, 0.12, 0.15, 0.17, 0.11, 0.13],
    ),
}
out = {"scipy": scipy.__version__, "cases": {}}
for name, (a, b) in cases.items():
    a, b = np.array(a, float), np.array(b, float)
    w = stats.wilcoxon(a, b, zero_method="wilcox", correction=False, method="approx")
    t = stats.ttest_rel(a, b)
    out["cases"][name] = {
        "a": a.tolist(), "b": b.tolist(),
        "wilcoxon_z": float(w.zstatistic), "wilcoxon_p": float(w.pvalue),
        "t": float(t.statistic), "t_p": float(t.pvalue),
    }
print(json.dumps(out, indent=1))
