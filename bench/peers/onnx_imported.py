"""Imported ONNX models: kaskad's evaluator beside ONNX Runtime on the same
graphs and rows.

Creates a scratch home on --file, imports the fixture models of
`crates/kaskad-onnx/tests/fixtures` (scikit-learn via skl2onnx, LightGBM via
onnxmltools; see bench/peers/make_onnx_fixtures.py) with `kaskad models
import`, plus, when lightgbm and onnxmltools are importable, a LightGBM
model of --trees trees fitted here on --file. Each model is timed with
`kaskad bench --json` (one thread, batches of --batch rows, repeated for at
least a second) and with onnxruntime on the same batches (one thread,
sequential), and one Markdown row per model is printed: rows/s on both
sides, their ratio, and the AUC of both sides' scores.

    python3 bench/peers/onnx_imported.py --file data/credit_data.csv [--batch 1024] [--trees 200]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort
import pandas as pd

import kaskad_cli

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIXTURES = os.path.join(ROOT, "crates/kaskad-onnx/tests/fixtures")
NUMERIC = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--file", required=True, help="labelled CSV with the credit_data.csv columns")
parser.add_argument("--batch", type=int, default=1024)
parser.add_argument("--trees", type=int, default=200, help="trees of the LightGBM model fitted here")
parser.add_argument("--target", default="Status")
parser.add_argument("--positive", default="bad")
parser.add_argument("--kaskad", default=kaskad_cli.default_binary())
args = parser.parse_args()


def kaskad(*argv):
    return kaskad_cli.run(args.kaskad, *argv)


auc = kaskad_cli.auc


frame = pd.read_csv(args.file)
y = (frame[args.target].astype(str) == args.positive).to_numpy().astype(int)
scratch = tempfile.mkdtemp()
home = os.path.join(scratch, "home")
kaskad("init", "--home", home, "--dataset", args.file, "--target", args.target, "--positive", args.positive)

# name → (path, features or None for per-column inputs)
models = {
    "sk_lr_pipeline": (os.path.join(FIXTURES, "lr_pipeline.onnx"), None),
    "sk_tree": (os.path.join(FIXTURES, "tree.onnx"), NUMERIC),
    "sk_forest_5": (os.path.join(FIXTURES, "forest.onnx"), NUMERIC),
    "sk_gbdt_20": (os.path.join(FIXTURES, "sklearn_gbdt.onnx"), NUMERIC),
    "sk_mlp_16_8": (os.path.join(FIXTURES, "mlp.onnx"), NUMERIC),
    "lgbm_20": (os.path.join(FIXTURES, "lightgbm.onnx"), NUMERIC),
}
try:
    import lightgbm
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    x = frame[NUMERIC].astype(np.float32).to_numpy()
    booster = lightgbm.LGBMClassifier(n_estimators=args.trees, num_leaves=31, random_state=1, verbose=-1).fit(x, y)
    onx = onnxmltools.convert_lightgbm(
        booster, initial_types=[("input", FloatTensorType([None, len(NUMERIC)]))], zipmap=False, target_opset=15
    )
    path = os.path.join(scratch, f"lightgbm_{args.trees}.onnx")
    with open(path, "wb") as f:
        f.write(onx.SerializeToString())
    models[f"lgbm_{args.trees}"] = (path, NUMERIC)
except ImportError as e:
    print(f"(no LightGBM model of {args.trees} trees: {e})", file=sys.stderr)

print("| model | kaskad rows/s | onnxruntime rows/s | ratio | kaskad AUC | onnxruntime AUC | max abs diff |")
print("|---|---|---|---|---|---|---|")
for name, (path, features) in models.items():
    argv = ["models", "import", "--home", home, "--onnx", path, "--name", name]
    if features:
        argv += ["--features", ",".join(features)]
    kaskad(*argv)
    ours = json.loads(kaskad("bench", "--home", home, "--model", name, "--file", args.file,
                             "--batch", str(args.batch), "--json"))[0]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    (spec,) = [o for o in session.get_outputs() if o.name in ("probabilities", "output_probability")]
    if features:
        (entry,) = session.get_inputs()
        feeds = {entry.name: frame[features].astype(np.float32).to_numpy()}
    else:
        feeds = {}
        for entry in session.get_inputs():
            column = frame[entry.name]
            if entry.type == "tensor(string)":
                values = column.astype(object).where(column.notna(), "").astype(str).to_numpy()
            else:
                values = column.astype(np.float32).to_numpy()
            feeds[entry.name] = values.reshape(-1, 1)
    rows = len(frame)
    batches = [{k: v[s:s + args.batch] for k, v in feeds.items()} for s in range(0, rows, args.batch)]

    def positive(output):
        if isinstance(output, list):  # ZipMap: one {label: probability} per row
            return np.array([list(row.values())[1] for row in output])
        return np.asarray(output)[:, 1]

    theirs_scores = np.concatenate([positive(session.run([spec.name], b)[0]) for b in batches])
    theirs = rows / kaskad_cli.seconds_per_pass(lambda b: session.run([spec.name], b), batches)
    scored = kaskad("inference", "--home", home, "--model", name, "--file", args.file,
                    "--out", os.path.join(scratch, f"{name}.csv"))
    ours_scores = pd.read_csv(scored)["score"].to_numpy()
    diff = float(np.max(np.abs(ours_scores - theirs_scores)))
    print(f"| {name} | {ours['rows_per_s']:,.0f} | {theirs:,.0f} | {ours['rows_per_s'] / theirs:.1f}× "
          f"| {ours['auc']:.4f} | {auc(y, theirs_scores):.4f} | {diff:.1e} |")
