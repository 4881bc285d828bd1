#!/usr/bin/env python3
"""Fits Cairn's retrieval-confidence model (crates/cairn-engine/src/confidence.rs,
`RETRIEVAL_MODEL`) on the retrieval signals of SciFact's *train* claims, picks the abstention
threshold on the same train claims, and reports both on the *dev* claims, which are never
used for fitting or choosing.

Input: two `cairn --json eval answers DIR --claims FILE --no-llm` reports (train, dev). Each
claim carries `confidence.signals` (top_cosine, cosine_margin, agree, coverage, coverage_all)
and `gold` (empty for NOT_ENOUGH_INFO). The target is "the corpus holds evidence for this
claim": 1 for SUPPORT / CONTRADICT, 0 for NOT_ENOUGH_INFO.

Usage:
    scripts/calibrate_confidence.py train.json dev.json [--max-evidence-loss 0.10]

Pure Python (no NumPy): logistic regression by Newton's method with a small L2 penalty on
standardised features, feature sets compared by 5-fold cross-validated log loss on train.
"""

import argparse
import json
import math
import random

FEATURES = ["top_cosine", "cosine_margin", "agree", "coverage", "coverage_all"]
L2 = 0.01


def load(path):
    with open(path) as f:
        report = json.load(f)
    rows = []
    for c in report["per_claim"]:
        conf = c.get("confidence")
        if conf is None:
            continue  # nothing retrieved: no signals
        s = conf["signals"]
        x = {k: float(s[k]) for k in FEATURES}
        rows.append((x, 1 if c["gold"] else 0, bool(c.get("gold_found"))))
    return rows


def solve(a, b):
    """Gaussian elimination with partial pivoting: a x = b."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for col in range(n):
        piv = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[piv] = m[piv], m[col]
        p = m[col][col]
        if abs(p) < 1e-12:
            raise ValueError("singular system")
        for r in range(n):
            if r != col:
                f = m[r][col] / p
                for k in range(col, n + 1):
                    m[r][k] -= f * m[col][k]
    return [m[i][n] / m[i][i] for i in range(n)]


def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def fit(rows, feats):
    """Returns (bias, weights) on the raw feature scale."""
    mean = [sum(r[0][f] for r in rows) / len(rows) for f in feats]
    sd = [max(1e-9, math.sqrt(sum((r[0][f] - mu) ** 2 for r in rows) / len(rows))) for f, mu in zip(feats, mean)]
    xs = [[1.0] + [(r[0][f] - mu) / s for f, mu, s in zip(feats, mean, sd)] for r in rows]
    ys = [r[1] for r in rows]
    w = [0.0] * (len(feats) + 1)
    for _ in range(50):
        grad = [0.0] * len(w)
        hess = [[0.0] * len(w) for _ in w]
        for x, y in zip(xs, ys):
            p = sigmoid(sum(wi * xi for wi, xi in zip(w, x)))
            for i in range(len(w)):
                grad[i] += (p - y) * x[i]
                for j in range(len(w)):
                    hess[i][j] += p * (1 - p) * x[i] * x[j]
        for i in range(1, len(w)):
            grad[i] += L2 * w[i] * len(rows)
            hess[i][i] += L2 * len(rows)
        step = solve(hess, grad)
        w = [wi - si for wi, si in zip(w, step)]
        if max(abs(s) for s in step) < 1e-9:
            break
    weights = [wi / s for wi, s in zip(w[1:], sd)]
    bias = w[0] - sum(wi * mu / s for wi, mu, s in zip(w[1:], mean, sd))
    return bias, dict(zip(feats, weights))


def predict(model, x):
    bias, weights = model
    return sigmoid(bias + sum(w * x[f] for f, w in weights.items()))


def log_loss(model, rows):
    eps = 1e-12
    return -sum(
        y * math.log(max(eps, predict(model, x))) + (1 - y) * math.log(max(eps, 1 - predict(model, x)))
        for x, y, _ in rows
    ) / len(rows)


def auc(model, rows):
    pos = [predict(model, x) for x, y, _ in rows if y]
    neg = [predict(model, x) for x, y, _ in rows if not y]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def cv_loss(rows, feats, folds=5):
    idx = list(range(len(rows)))
    random.Random(7).shuffle(idx)
    total = 0.0
    for k in range(folds):
        test = [rows[i] for i in idx[k::folds]]
        train = [rows[i] for n, i in enumerate(idx) if n % folds != k]
        total += log_loss(fit(train, feats), test) * len(test)
    return total / len(rows)


def shares(model, rows, t):
    nei = [r for r in rows if not r[1]]
    ev = [r for r in rows if r[1]]
    found = [r for r in ev if r[2]]
    below = lambda group: sum(predict(model, x) < t for x, _, _ in group) / max(1, len(group))
    return below(nei), below(ev), below(found), len(nei), len(ev)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train")
    ap.add_argument("dev")
    ap.add_argument("--max-evidence-loss", type=float, default=0.10)
    args = ap.parse_args()
    train, dev = load(args.train), load(args.dev)
    print(f"train: {len(train)} claims ({sum(r[1] for r in train)} with evidence); dev: {len(dev)}")

    # Feature sets: each signal alone, then growing combinations; choose by CV log loss on train.
    candidates = [[f] for f in FEATURES] + [
        ["top_cosine", "coverage"],
        ["top_cosine", "coverage", "agree"],
        ["top_cosine", "cosine_margin", "coverage", "agree"],
        FEATURES,
    ]
    scored = []
    for feats in candidates:
        loss = cv_loss(train, feats)
        scored.append((loss, feats))
        print(f"  CV log loss {loss:.4f}  {'+'.join(feats)}")
    base = -sum(
        p * math.log(p) + (1 - p) * math.log(1 - p)
        for p in [sum(r[1] for r in train) / len(train)]
    )
    print(f"  (constant model: {base:.4f})")
    best_loss, best = min(scored, key=lambda s: s[0])
    model = fit(train, best)
    print(f"chosen: {'+'.join(best)}  bias {model[0]:.4f}  weights " + ", ".join(f"{k} {v:.4f}" for k, v in model[1].items()))
    print(f"AUC train {auc(model, train):.3f}, dev {auc(model, dev):.3f}")

    # The threshold: the highest one that abstains on at most max-evidence-loss of the train
    # evidence claims (abstaining wrongly costs an answer; answering wrongly is still caught by
    # the model's own decline and by the support check).
    grid = [i / 100 for i in range(1, 100)]
    ok = [t for t in grid if shares(model, train, t)[1] <= args.max_evidence_loss]
    threshold = max(ok) if ok else grid[0]
    print(f"threshold (≤ {args.max_evidence_loss:.0%} of train evidence claims lost): {threshold:.2f}")
    print("threshold | NEI abstained train / dev | evidence lost train / dev | found evidence lost train / dev")
    for t in sorted(set([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, threshold])):
        a, b = shares(model, train, t), shares(model, dev, t)
        mark = "  <= chosen" if t == threshold else ""
        print(f"  {t:.2f}   | {a[0]:.3f} / {b[0]:.3f}               | {a[1]:.3f} / {b[1]:.3f}              | {a[2]:.3f} / {b[2]:.3f}{mark}")
    print(json.dumps({"features": best, "bias": model[0], "weights": model[1], "threshold": threshold}))


if __name__ == "__main__":
    main()
