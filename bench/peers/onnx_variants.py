"""kaskad's scoring beside ONNX Runtime on the same model and rows.

Exports a registered version with `kaskad models export`, scores the file
with onnxruntime (one thread, batches of --batch rows, repeated for at least
a second) and with `kaskad bench --json` (the same batching, one thread),
and prints one Markdown row per model with rows/s on both sides and AUC.

    python3 bench/peers/onnx_variants.py --home H --file F [--model REF ...] [--batch 1024]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
import pandas as pd

parser = argparse.ArgumentParser()
parser.add_argument("--home", required=True)
parser.add_argument("--file", required=True)
parser.add_argument("--model", action="append", default=[])
parser.add_argument("--batch", type=int, default=1024)
parser.add_argument("--target", default="Status")
parser.add_argument("--positive", default="bad")
target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/kaskad-target"))
parser.add_argument("--kaskad", default=os.path.join(target_dir, "release", "kaskad"))
args = parser.parse_args()


def kaskad(*argv):
    out = subprocess.run([args.kaskad, *argv], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"kaskad {' '.join(argv)}: {out.stderr}")
    return out.stdout.strip().splitlines()[-1]


def auc(y, s):
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    ranks[order] = np.arange(1, len(s) + 1)
    # average ranks of ties
    _, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    ranks = (sums / counts)[inv]
    pos = y.sum()
    return (ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * (len(y) - pos))


frame = pd.read_csv(args.file)
y = (frame[args.target].astype(str) == args.positive).to_numpy().astype(int)
print("| model | kaskad rows/s | onnxruntime rows/s | ratio | kaskad AUC | onnxruntime AUC |")
print("|---|---|---|---|---|---|")
for reference in args.model or ["default_risk"]:
    ours = json.loads(kaskad("bench", "--home", args.home, "--model", reference, "--file",
                             args.file, "--batch", str(args.batch), "--json"))[0]
    onnx_path = os.path.join(tempfile.mkdtemp(), "model.onnx")
    kaskad("models", "export", "--home", args.home, "--model", reference, "--out", onnx_path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    feeds = {}
    for spec in session.get_inputs():
        column = frame[spec.name]
        if spec.type == "tensor(string)":
            values = column.astype(object).where(column.notna(), "").astype(str).to_numpy()
        else:
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
        feeds[spec.name] = values.reshape(-1, 1)
    rows = len(frame)
    batches = [{k: v[s:s + args.batch] for k, v in feeds.items()} for s in range(0, rows, args.batch)]
    scores = np.concatenate([session.run(["probabilities"], b)[0][:, 1] for b in batches])
    passes, start = 0, time.perf_counter()
    while passes == 0 or time.perf_counter() - start < 1.0:
        for b in batches:
            session.run(["probabilities"], b)
        passes += 1
    theirs = passes * rows / (time.perf_counter() - start)
    print(f"| {ours['model']} ({ours['algorithm']}) | {ours['rows_per_s']:,.0f} | {theirs:,.0f} "
          f"| {ours['rows_per_s'] / theirs:.1f}× | {ours['auc']:.4f} | {auc(y, scores):.4f} |")
