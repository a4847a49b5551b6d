#!/usr/bin/env python3
"""Independent reference for ftrl_test.go.

Runs Algorithm 1 of McMahan et al., "Ad Click Prediction: a View from the
Trenches" (KDD 2013) -- per-coordinate FTRL-Proximal with L1 and L2 for
logistic regression -- transcribed from the paper's pseudo-code, over the
examples in ftrl_input.txt, and prints the prediction made before each update
and the final weights as JSON:

    python3 testdata/ftrl_reference.py > testdata/ftrl_golden.json

Input format, one example per line: "label idx:value idx:value ...".
"""
import json
import math

ALPHA, BETA, L1, L2 = 0.1, 1.0, 0.5, 1.0
SIZE = 16


def main():
    z = [0.0] * SIZE
    n = [0.0] * SIZE
    preds = []
    with open(__file__.replace("ftrl_reference.py", "ftrl_input.txt")) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            y = float(parts[0])
            x = [(int(i), float(v)) for i, v in (p.split(":") for p in parts[1:])]
            # For i in I: compute w_{t,i} (lazily, from z and n).
            w = {}
            for i, _ in x:
                if abs(z[i]) <= L1:
                    w[i] = 0.0
                else:
                    sgn = 1.0 if z[i] > 0 else -1.0
                    w[i] = -(z[i] - sgn * L1) / ((BETA + math.sqrt(n[i])) / ALPHA + L2)
            # Predict p_t = sigma(x_t . w) (margin clipped to +-35 as in Eddy).
            m = sum(w[i] * v for i, v in x)
            m = max(-35.0, min(35.0, m))
            p = 1.0 / (1.0 + math.exp(-m))
            preds.append(p)
            # For all i in I: update z_i and n_i.
            for i, v in x:
                g = (p - y) * v
                sigma = (math.sqrt(n[i] + g * g) - math.sqrt(n[i])) / ALPHA
                z[i] += g - sigma * w[i]
                n[i] += g * g
    weights = []
    for i in range(SIZE):
        if abs(z[i]) <= L1:
            weights.append(0.0)
        else:
            sgn = 1.0 if z[i] > 0 else -1.0
            weights.append(-(z[i] - sgn * L1) / ((BETA + math.sqrt(n[i])) / ALPHA + L2))
    print(json.dumps({
        "alpha": ALPHA, "beta": BETA, "l1": L1, "l2": L2, "size": SIZE,
        "predictions": preds, "weights": weights,
    }, indent=1))


main()
