"""kaskad's gradient-boosted trees against LightGBM: AUC and fit time.

Both fit the same numeric matrix (numbers as they are, NaN kept as missing;
categories one-hot, a missing category all zeros) with 200 trees, learning
rate 0.1, 31 leaves and 20 rows per leaf. kaskad always early-stops on the
newest 10 % of its training rows and keeps the best round; LightGBM is run
both plainly (200 trees on every training row) and under the same protocol.

Data sets: data/credit_data.csv (target Status, "bad" = 1; the first 75 % of
rows train, the rest test) and, for fit time at scale, a synthetic one
(scikit-learn's make_classification, 200k rows, 40 features, 10 % NaN in a
quarter of them; first 75 % train).

    cargo build --release -p kaskad-train --example gbdt_check
    python3 bench/peers/gbdt_check.py [path/to/gbdt_check]
"""
import os
import subprocess
import sys
import tempfile
import time

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.metrics import roc_auc_score

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/kaskad-target"))
CHECK = sys.argv[1] if len(sys.argv) > 1 else os.path.join(target_dir, "release", "examples", "gbdt_check")
PARAMS = dict(objective="binary", learning_rate=0.1, num_leaves=31, min_child_samples=20, verbose=-1)
TREES = 200


def credit():
    df = pd.read_csv(os.path.join(ROOT, "data", "credit_data.csv"))
    y = (df.pop("Status") == "bad").astype(int).to_numpy()
    cut = int(len(df) * 0.75)
    numeric = df.select_dtypes("number").columns.tolist()
    parts = [df[numeric].astype(float)]
    for c in df.columns:
        if c not in numeric:
            for level in sorted(df[c].iloc[:cut].dropna().unique()):
                parts.append((df[c] == level).astype(float).rename(f"{c}={level}"))
    x = pd.concat(parts, axis=1).to_numpy()
    return x[:cut], y[:cut], x[cut:], y[cut:]


def synthetic():
    x, y = make_classification(n_samples=200_000, n_features=40, n_informative=12, n_redundant=8,
                               flip_y=0.05, class_sep=0.6, random_state=0)
    rng = np.random.default_rng(0)
    for j in range(0, 40, 4):
        x[rng.random(len(x)) < 0.1, j] = np.nan
    cut = int(len(x) * 0.75)
    return x[:cut], y[:cut], x[cut:], y[cut:]


def write(path, x, y):
    pd.DataFrame(np.column_stack([y, x])).to_csv(path, index=False, na_rep="", float_format="%.17g")


def kaskad(work, x, y, x_test, repeats):
    train, test = os.path.join(work, "train.csv"), os.path.join(work, "test.csv")
    write(train, x, y)
    write(test, x_test, np.zeros(len(x_test)))
    out = subprocess.run([CHECK, train, test, str(TREES), "0.1", "31", "20", str(repeats)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"gbdt_check failed:\n{out.stderr}")
    fields = out.stderr.split()
    p = np.array([float(v) for v in out.stdout.split()])
    return p, int(fields[fields.index("trees") + 1]), float(fields[fields.index("fit_seconds") + 1])


def lightgbm(x, y, x_test, threads, early, repeats):
    best, booster = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        params = dict(PARAMS, num_threads=threads)
        if early:
            cut = len(x) - len(x) // 10
            train = lgb.Dataset(x[:cut], y[:cut])
            valid = lgb.Dataset(x[cut:], y[cut:], reference=train)
            booster = lgb.train(params, train, TREES, valid_sets=[valid],
                                callbacks=[lgb.early_stopping(20, verbose=False)])
        else:
            booster = lgb.train(params, lgb.Dataset(x, y), TREES)
        best = min(best, time.perf_counter() - start)
    p = booster.predict(x_test, num_iteration=booster.best_iteration or None)
    return p, booster.best_iteration or booster.num_trees(), best


def main():
    print("| data | model | trees kept | test AUC | fit s |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        for name, (x, y, x_test, y_test), repeats in [("credit", credit(), 5),
                                                      ("synthetic 200k×40", synthetic(), 1)]:
            p, trees, seconds = kaskad(work, x, y, x_test, repeats)
            print(f"| {name} | kaskad gbdt (1 thread) | {trees} | {roc_auc_score(y_test, p):.4f} | {seconds:.3f} |")
            for early in (False, True):
                for threads in (1, 2):
                    p, trees, seconds = lightgbm(x, y, x_test, threads, early, repeats)
                    label = f"LightGBM {'early-stopped' if early else 'plain'} ({threads} thread{'s' * (threads > 1)})"
                    print(f"| {name} | {label} | {trees} | {roc_auc_score(y_test, p):.4f} | {seconds:.3f} |")


main()
