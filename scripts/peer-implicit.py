#!/usr/bin/env python3
"""Eddy's iALS next to the `implicit` library, on the same training matrix,
with the same hyperparameters, in one run (issue 12's peer comparison).

  pip install implicit numpy scipy
  python3 scripts/peer-implicit.py --eddy bin/eddy \
      --dataset movielens:../shared/data/ml-100k [--protocol leave-last-out|sampled]
      [--reg 10 --unobserved-weight 1 --dim 64 --epochs 16 --threads 2]

It runs `eddy eval offline --export DIR --json` (which writes the split and
the exact training matrix), trains implicit's CPU ALS with CG on that matrix,
ranks with the same rules (training items excluded, ties counted against the
held-out item), and prints both. Not part of `make test`: it needs PyPI.

The losses map exactly only with ν = 0 (implicit has no frequency-scaled
regularisation), so the comparison runs Eddy with --reg-exponent 0. Eddy's
loss is Σ_obs c(t-ŷ)² + α₀ Σ_all ŷ² + λ‖·‖²; divided by α₀ it is implicit's
with confidence c/α₀ (implicit's alpha = 1/α₀) and regularization λ/α₀, up
to one difference: implicit drops observed pairs from the every-pair term.
Explicit negatives (target 0) are passed to implicit as negative values,
which it reads as confidence |c| with preference 0.
"""
import argparse, json, os, subprocess, sys, tempfile, time

import numpy as np
import scipy.sparse as sp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eddy", default="bin/eddy")
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--protocol", default="leave-last-out")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--reg", type=float, default=10.0)
    ap.add_argument("--unobserved-weight", type=float, default=1.0)
    ap.add_argument("--cg-steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-test-users", type=int, default=0)
    ap.add_argument("--extra", default="", help="more eddy eval offline flags, e.g. '--columns ... --type click'")
    a = ap.parse_args()

    import threadpoolctl
    threadpoolctl.threadpool_limits(1, "blas")
    from implicit.cpu.als import AlternatingLeastSquares

    d = tempfile.mkdtemp(prefix="eddy-peer-")
    cmd = [a.eddy, "eval", "offline", "--dataset", a.dataset, "--protocol", a.protocol, "--models", "ials,popularity",
           "--json", "--export", d, "--dim", str(a.dim), "--epochs", str(a.epochs), "--reg", str(a.reg),
           "--reg-exponent", "0", "--unobserved-weight", str(a.unobserved_weight), "--cg-steps", str(a.cg_steps),
           "--threads", str(a.threads), "--seed", str(a.seed), "--max-test-users", str(a.max_test_users)] + a.extra.split()
    print("+", " ".join(cmd), file=sys.stderr)
    eddy = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    meta = json.load(open(os.path.join(d, "meta.json")))

    tr = np.loadtxt(os.path.join(d, "train.csv"), delimiter=",", skiprows=1, ndmin=2)
    users, items = meta["users"], meta["items"]
    conf = tr[:, 2] / a.unobserved_weight
    vals = np.where(tr[:, 3] > 0, conf, -conf).astype(np.float32)
    m = sp.csr_matrix((vals, (tr[:, 0].astype(np.int64), tr[:, 1].astype(np.int64))), shape=(users, items))
    model = AlternatingLeastSquares(factors=a.dim, regularization=a.reg / a.unobserved_weight, alpha=1.0,
                                    iterations=a.epochs, use_cg=True,
                                    num_threads=a.threads, random_state=a.seed, calculate_training_loss=False)
    model.cg_steps = a.cg_steps  # an attribute, not a constructor argument, in implicit 0.7
    t0 = time.perf_counter()
    model.fit(m, show_progress=False)
    secs = time.perf_counter() - t0
    U, V = np.asarray(model.user_factors), np.asarray(model.item_factors)

    def pairs(name):
        p = os.path.join(d, name)
        if not os.path.exists(p):
            return {}
        out = {}
        x = np.loadtxt(p, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
        for u, i in x:
            out.setdefault(int(u), []).append(int(i))
        return out

    seen, test, cands = pairs("seen.csv"), pairs("test.csv"), pairs("candidates.csv")
    k = meta["k"]
    hits = ndcg = 0.0
    for u, targets in test.items():
        s = V @ U[u]
        if cands:
            c = cands[u]
            t = s[c[0]]
            pos = int(np.sum(s[c[1:]] >= t))
            ps = [pos]
        else:
            s[seen.get(u, [])] = -np.inf
            tv = s[targets].copy()
            s[targets] = -np.inf
            order = np.argsort(-tv, kind="stable")
            ps = [0] * len(targets)
            for rank, j in enumerate(order):
                ps[j] = int(np.sum(s >= tv[j])) + rank
        if min(ps) < k:
            hits += 1
        ndcg += sum(1 / np.log2(p + 2) for p in ps if p < k) / sum(1 / np.log2(p + 2) for p in range(min(len(targets), k)))
    n = len(test)
    rows = [("eddy ials", eddy["ials"]["hr_at_10"], eddy["ials"]["ndcg_at_10"], eddy["ials"]["train_seconds"]),
            ("implicit %s" % __import__("implicit").__version__, hits / n, ndcg / n, secs),
            ("popularity", eddy["popularity"]["hr_at_10"], eddy["popularity"]["ndcg_at_10"], 0.0)]
    print(f"{a.dataset}, {a.protocol}, {n} test users, {meta['pairs']} training pairs; dim {a.dim}, {a.epochs} epochs, "
          f"λ {a.reg}, α₀ {a.unobserved_weight}, ν 0, {a.cg_steps} CG steps, {a.threads} threads")
    print(f"{'model':<16}{'HR@10':>8}{'NDCG@10':>9}{'train s':>9}")
    for name, hr, nd, s in rows:
        print(f"{name:<16}{hr:>8.4f}{nd:>9.4f}{s:>9.2f}")
    print(f"eddy / implicit: HR@10 {rows[0][1] / rows[1][1]:.3f}×, train time {rows[0][3] / rows[1][3]:.2f}×")
    print(json.dumps({"eddy": {"hr_at_10": rows[0][1], "train_seconds": rows[0][3]},
                      "implicit": {"hr_at_10": rows[1][1], "train_seconds": rows[1][3]}}))


if __name__ == "__main__":
    main()
