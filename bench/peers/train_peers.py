"""kaskad beside scikit-learn and LightGBM: fit time, predict time, peak
memory and AUC, one family at a time, on the same train and test files.

Each side runs in its own fresh process so that peak memory (VmHWM /
ru_maxrss) belongs to that run alone. Both sides fit the same
hyperparameters; the peers use the usual pipeline (median imputation +
standard scaling for numbers, most-frequent imputation + one-hot for
categories), timed as Pipeline.fit / predict_proba including preprocessing,
as kaskad's figures include its own preprocessing. Prints a Markdown table.

    cargo build --release -p kaskad
    python3 bench/peers/train_peers.py --train T.csv --test S.csv --target Status --positive bad \
        [--algos lr,tree,knn,knn-equal,gbdt,mlp] [--kaskad path/to/kaskad]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

# kaskad parameters and the peer built with the same settings.
FAMILIES = {
    "lr": (["c=1.0"], "LogisticRegression(C=1.0, max_iter=1000)"),
    "tree": (["max_depth=6", "min_samples_leaf=20"],
             "DecisionTreeClassifier(max_depth=6, min_samples_leaf=20, random_state=0)"),
    "knn": (["k=25"], "KNeighborsClassifier(n_neighbors=25)"),
    # Equal work: kaskad keeps every training row (max_rows = the training
    # rows, filled in below) and one-hot encodes as the peer does, instead
    # of its default 50,000-row reservoir and variant choice.
    "knn-equal": (["k=25", "max_rows={train_rows}"], "KNeighborsClassifier(n_neighbors=25)"),
    "gbdt": (["n_trees=200", "learning_rate=0.1", "max_leaves=31", "min_samples_leaf=20"],
             "LGBMClassifier(n_estimators=200, learning_rate=0.1, num_leaves=31, "
             "min_child_samples=20, verbose=-1)"),
    "mlp": ([], "MLPClassifier(hidden_layer_sizes=(64, 32), early_stopping=True, random_state=0)"),
}
# Further kaskad flags per family.
KASKAD_FLAGS = {"knn-equal": ["--variant", "onehot"]}

PEER = r'''
import json, resource, sys, time
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier
try:
    from lightgbm import LGBMClassifier
except ImportError:
    pass
train_path, test_path, target, positives, estimator = sys.argv[1:6]
positives = json.loads(positives)
train, test = pd.read_csv(train_path), pd.read_csv(test_path)
y_train = train.pop(target).astype(str).isin(positives).astype(int)
y_test = test.pop(target).astype(str).isin(positives).astype(int)
numeric = train.select_dtypes("number").columns.tolist()
categorical = [c for c in train.columns if c not in numeric]
pre = ColumnTransformer([
    ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
    ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                          OneHotEncoder(handle_unknown="ignore")), categorical),
])
model = make_pipeline(pre, eval(estimator))
start = time.perf_counter()
model.fit(train, y_train)
fit_seconds = time.perf_counter() - start
start = time.perf_counter()
scores = model.predict_proba(test)[:, 1]
predict_seconds = time.perf_counter() - start
print(json.dumps({"fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "auc": roc_auc_score(y_test, scores)}))
'''


def run(command):
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode != 0:
        return None, out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"
    return json.loads(out.stdout.strip().splitlines()[-1]), None


def median_run(runs):
    """Every field's median over the runs (None without runs)."""
    if not runs:
        return None
    return {key: statistics.median(r[key] for r in runs) for key in
            ("fit_seconds", "predict_seconds", "peak_rss_bytes", "auc")}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--positive", action="append", required=True)
    parser.add_argument("--algos", default="lr,tree,knn")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run kaskad and the peer alternately this many times; report medians")
    parser.add_argument("--no-header", action="store_true")
    target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/kaskad-target"))
    parser.add_argument("--kaskad", default=os.path.join(target_dir, "release", "kaskad"))
    args = parser.parse_args()

    if not args.no_header:
        print("| family | kaskad AUC | peer AUC | Δ AUC | kaskad fit s | peer fit s | fit ratio (peer/kaskad) "
              "| kaskad predict s | peer predict s | predict ratio | kaskad peak MiB | peer peak MiB |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    with open(args.train) as f:
        train_rows = sum(1 for _ in f) - 1
    for algo in args.algos.split(","):
        params, estimator = FAMILIES[algo]
        command = [args.kaskad, "bench", "train", "--train", args.train, "--test", args.test,
                   "--target", args.target, "--algo", algo.split("-")[0], "--json"]
        command += KASKAD_FLAGS.get(algo, [])
        for p in args.positive:
            command += ["--positive", p]
        for p in params:
            command += ["--param", p.format(train_rows=train_rows)]
        peer = [sys.executable, "-c", PEER, args.train, args.test, args.target,
                json.dumps(args.positive), estimator]
        our_runs, their_runs, our_error, their_error = [], [], None, None
        for _ in range(args.repeats):
            ours, our_error = run(command)
            theirs, their_error = run(peer)
            if ours is None or theirs is None:
                break
            our_runs.append(ours)
            their_runs.append(theirs)
        ours, theirs = median_run(our_runs), median_run(their_runs)
        peer_name = estimator.split("(")[0]
        if ours is None or theirs is None:
            print(f"| {algo} vs {peer_name} | {our_error or ''} | {their_error or ''} |")
            continue
        mib = 1024 * 1024
        print(f"| {algo} vs {peer_name} | {ours['auc']:.4f} | {theirs['auc']:.4f} "
              f"| {ours['auc'] - theirs['auc']:+.4f} "
              f"| {ours['fit_seconds']:.3f} | {theirs['fit_seconds']:.3f} "
              f"| {theirs['fit_seconds'] / ours['fit_seconds']:.1f}× "
              f"| {ours['predict_seconds']:.3f} | {theirs['predict_seconds']:.3f} "
              f"| {theirs['predict_seconds'] / ours['predict_seconds']:.1f}× "
              f"| {ours['peak_rss_bytes'] / mib:.0f} | {theirs['peak_rss_bytes'] / mib:.0f} |")


if __name__ == "__main__":
    main()
