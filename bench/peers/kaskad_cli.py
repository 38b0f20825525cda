"""What the peer scripts share: the kaskad binary they call, ROC-AUC
computed the same way on both sides (average ranks of ties), and how a
peer's scoring is timed."""

import os
import subprocess
import sys
import time

import numpy as np


def default_binary():
    """The release binary of CARGO_TARGET_DIR (or ~/.cache/kaskad-target)."""
    target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/kaskad-target"))
    return os.path.join(target_dir, "release", "kaskad")


def run(binary, *argv):
    """Runs kaskad; exits with its stderr on failure; returns the last stdout line."""
    out = subprocess.run([binary, *argv], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"kaskad {' '.join(argv)}: {out.stderr}")
    return out.stdout.strip().splitlines()[-1]


def auc(y, s):
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    ranks[order] = np.arange(1, len(s) + 1)
    # average ranks of ties
    _, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    ranks = (np.bincount(inv, weights=ranks) / counts)[inv]
    pos = y.sum()
    return (ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * (len(y) - pos))


def seconds_per_pass(score_batch, batches):
    """Seconds per pass of score_batch over every batch: passes repeated for
    at least one second, after one untimed pass the caller made."""
    passes, start = 0, time.perf_counter()
    while passes == 0 or time.perf_counter() - start < 1.0:
        for b in batches:
            score_batch(b)
        passes += 1
    return (time.perf_counter() - start) / passes
