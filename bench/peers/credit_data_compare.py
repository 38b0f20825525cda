"""kaskad against scikit-learn, family by family, on one split of credit_data.csv.

The first 75 % of rows (file order, floor) are streamed through `kaskad update
--all` in batches of 1000; the newest 25 % are scored by every family's last
version with `kaskad inference`. scikit-learn fits the same family with the
hyperparameters kaskad's search chose, on the same training rows (the stream
minus kaskad's time-ordered hold-out of the last batch), with the same
preprocessing (median imputation + standard scaling for numbers, one-hot for
categories). Prints a Markdown table for BENCHMARKS.md.

    cargo build --release -p kaskad
    python3 bench/peers/credit_data_compare.py [path/to/kaskad]
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/kaskad-target"))
KASKAD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(target_dir, "release", "kaskad")


def kaskad(*args):
    out = subprocess.run([KASKAD, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"kaskad {' '.join(args)} failed:\n{out.stderr}")
    return out.stdout


df = pd.read_csv(os.path.join(ROOT, "data", "credit_data.csv"))
cut = int(len(df) * 0.75)
work = tempfile.mkdtemp()
stream, newest = os.path.join(work, "stream.csv"), os.path.join(work, "newest.csv")
df.iloc[:cut].to_csv(stream, index=False)
df.iloc[cut:].to_csv(newest, index=False)
home = os.path.join(work, "home")
kaskad("init", "--home", home, "--dataset", stream, "--target", "Status", "--positive", "bad")
start = time.perf_counter()
kaskad("update", "--home", home, "--all")
update_seconds = time.perf_counter() - start
versions = json.loads(kaskad("models", "--home", home, "--json"))
last = {}
for v in versions:
    last[v["algorithm"]] = v  # versions are listed in order; the last per family wins

y_new = (df.iloc[cut:]["Status"] == "bad").astype(int)
features = df.drop(columns=["Status"])
y = (df["Status"] == "bad").astype(int)
numeric = features.select_dtypes("number").columns.tolist()
categorical = [c for c in features.columns if c not in numeric]


def preprocessing():
    return ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore")), categorical),
    ])


def peer(params):
    if params["algorithm"] == "lr":
        return LogisticRegression(C=params["c"], max_iter=1000)
    if params["algorithm"] == "tree":
        return DecisionTreeClassifier(max_depth=params["max_depth"],
                                      min_samples_leaf=params["min_samples_leaf"], random_state=0)
    return KNeighborsClassifier(n_neighbors=params["k"])


print(f"`kaskad update --all` (4 batches; each: quality, drift, the default 11-point grid "
      f"with 3-fold time-series CV, {len(versions)} versions registered in all): "
      f"{update_seconds:.2f} s wall\n")
print("| family | params (kaskad's search) | kaskad AUC | scikit-learn AUC | Δ AUC "
      "| kaskad fit s | scikit-learn fit s | fit time ratio (sklearn / kaskad) |")
print("|---|---|---|---|---|---|---|---|")
for algorithm in ["lr", "tree", "knn"]:
    v = last[algorithm]
    holdout = v["metrics"]["rows"]
    out_csv = kaskad("inference", "--home", home, "--file", newest,
                     "--model", f"{v['name']}@{v['version']}").strip().splitlines()[-1]
    ours = roc_auc_score(y_new, pd.read_csv(out_csv)["score"])
    train_rows = slice(0, cut - holdout)
    model = make_pipeline(preprocessing(), peer(v["params"]))
    start = time.perf_counter()
    model.fit(features.iloc[train_rows], y.iloc[train_rows])
    fit_seconds = time.perf_counter() - start
    theirs = roc_auc_score(y_new, model.predict_proba(features.iloc[cut:])[:, 1])
    params = ", ".join(f"{k}={val}" for k, val in v["params"].items() if k != "algorithm")
    print(f"| {algorithm} | {params} | {ours:.4f} | {theirs:.4f} | {ours - theirs:+.4f} "
          f"| {v['train_seconds']:.4f} | {fit_seconds:.4f} | {fit_seconds / v['train_seconds']:.1f}× |")
