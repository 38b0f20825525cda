"""The meta-model's search order at work: one stream, full retraining on
every batch, once with every candidate cross-validated and once per budget.

For each run: how well the meta-model's estimates ranked the candidates
(Spearman correlation, top-1 hits, CV AUC lost by taking the best
estimate, over the searches that had estimates),
the CV seconds the searches spent (sum of the candidates' fold fits), the
wall time of `update --all`, and the hold-out AUC of the best version
registered on each batch, so a budget's cost in quality shows next to its
saving in time.

    python3 bench/meta_search.py --kaskad target/release/kaskad \
        --dataset data/credit_data.csv --target Status --positive bad \
        --batch-rows 500 --variants onehot,woe --budgets 0,6,3
"""

import argparse
import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

from scipy.stats import spearmanr


def run(kaskad, *args):
    out = subprocess.run([kaskad, *args], capture_output=True, text=True)
    if out.returncode not in (0, 1):
        raise SystemExit(f"kaskad {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def one(kaskad, opts, budget, root):
    home = Path(root) / f"budget-{budget}"
    run(kaskad, "init", "--home", str(home), "--dataset", opts.dataset,
        "--target", opts.target, "--positive", opts.positive,
        "--batch-rows", str(opts.batch_rows))
    config = home / "kaskad.toml"
    text = config.read_text()
    variants = ", ".join(f'"{v}"' for v in opts.variants.split(","))
    for old, new in [('mode = "auto"', 'mode = "full"'),
                     ("search_budget = 0", f"search_budget = {budget}")]:
        assert old in text, old
        text = text.replace(old, new, 1)
    # Whatever the default variants are, these replace them.
    text, replaced = re.subn(r"^variants = \[.*\]$", f"variants = [{variants}]", text, count=1,
                             flags=re.MULTILINE)
    assert replaced == 1, "no variants line in kaskad.toml"
    config.write_text(text)
    start = time.perf_counter()
    run(kaskad, "update", "--home", str(home), "--all")
    wall = time.perf_counter() - start
    searches = json.loads(run(kaskad, "searches", "--home", str(home), "--json"))
    models = json.loads(run(kaskad, "models", "--home", str(home), "--json"))
    rhos, hits, judged, regret = [], 0, 0, 0.0
    for s in searches:
        pairs = [(c["predicted_auc"], c["cv_auc"]) for c in s["candidates"]
                 if c["predicted_auc"] is not None and c["cv_auc"] is not None]
        if not pairs:
            continue
        judged += 1
        best_predicted = max(pairs, key=lambda p: p[0])
        hits += best_predicted[1] >= max(p[1] for p in pairs)
        regret += max(p[1] for p in pairs) - best_predicted[1]
        if len(pairs) > 1:
            rho = spearmanr([p[0] for p in pairs], [p[1] for p in pairs]).statistic
            if rho == rho:
                rhos.append(rho)
    cv_seconds = sum(c["fit_seconds"] for s in searches for c in s["candidates"])
    best_by_batch = {}
    for m in models:
        batch = max(m["trained_on"])
        best_by_batch[batch] = max(best_by_batch.get(batch, 0.0), m["metrics"]["auc"])
    return {
        "budget": budget or "all",
        "searches": len(searches),
        "evaluated": sum(c["evaluated"] for s in searches for c in s["candidates"]),
        "candidates": sum(len(s["candidates"]) for s in searches),
        "top1_hits": f"{hits}/{judged}",
        "mean_spearman": round(sum(rhos) / len(rhos), 3) if rhos else None,
        "mean_cv_auc_lost": round(regret / judged, 4) if judged else None,
        "cv_seconds": round(cv_seconds, 2),
        "wall_seconds": round(wall, 2),
        "mean_best_holdout_auc": round(sum(best_by_batch.values()) / len(best_by_batch), 4),
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kaskad", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--positive", required=True)
    p.add_argument("--batch-rows", type=int, default=500)
    p.add_argument("--variants", default="onehot")
    p.add_argument("--budgets", default="0,6,3")
    opts = p.parse_args()
    with tempfile.TemporaryDirectory() as root:
        rows = [one(opts.kaskad, opts, int(b), root) for b in opts.budgets.split(",")]
    base = rows[0]
    for r in rows:
        r["cv_seconds_vs_all"] = round(r["cv_seconds"] / base["cv_seconds"], 3)
        print(json.dumps(r))


if __name__ == "__main__":
    main()
