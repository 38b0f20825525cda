"""kaskad's scoring variants beside ONNX Runtime on the same model and rows.

For every --model REF: `kaskad bench --json` times REF and every version
derived from it (INT8, pruned, distilled) on the file; the script exports
REF with `kaskad models export` and times onnxruntime on the same rows in
the same run, fp32 (the exported graph) and INT8 (`quantize_dynamic`, after
rewriting Gemm as MatMul + Add, the form its dynamic quantizer handles).

Two scopes, both one thread, batches of --batch rows, each repeated for at
least a second:
- whole: raw columns in (kaskad: `ModelArtifact::score`; onnxruntime: the
  exported graph, string comparisons included);
- model: the encoded feature matrix in (kaskad: `Model::predict_proba` on
  the prepared matrix; onnxruntime: the exported graph cut at the feature
  matrix with `onnx.utils.extract_model`, fed the matrix the graph's own
  preprocessing computed). This is the scope of numeric-only graphs.

Prints one Markdown table: per model and variant, ms per batch and rows/s
in both scopes, artifact bytes, AUC, precision, recall and F1 at the
model's threshold, and max |Δscore| against REF's own scores.

    python3 bench/peers/onnx_variants.py --home H --file F [--model REF ...] [--batch 1024]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd

import kaskad_cli
from onnx import helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

parser = argparse.ArgumentParser()
parser.add_argument("--home", required=True)
parser.add_argument("--file", required=True)
parser.add_argument("--model", action="append", default=[])
parser.add_argument("--batch", type=int, default=1024)
parser.add_argument("--target", default="Status")
parser.add_argument("--positive", default="bad")
parser.add_argument("--kaskad", default=kaskad_cli.default_binary())
args = parser.parse_args()


def kaskad(*argv):
    return kaskad_cli.run(args.kaskad, *argv)


auc = kaskad_cli.auc


def quality(y, s, threshold):
    predicted = s >= threshold
    tp = int(np.sum(predicted & (y == 1)))
    precision = tp / max(int(predicted.sum()), 1)
    recall = tp / max(int(y.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return auc(y, s), precision, recall, f1


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def timed(sess, batches):
    """Scores of every row, and seconds per pass over all batches."""
    scores = np.concatenate([sess.run(["probabilities"], b)[0][:, 1] for b in batches])
    return scores, kaskad_cli.seconds_per_pass(lambda b: sess.run(["probabilities"], b), batches)


def gemm_as_matmul(model):
    """Gemm(x, W, b, transB=1) → MatMul(x, Wᵀ) + b: the same function in
    the operators `quantize_dynamic` quantizes (it leaves Gemm in float)."""
    weights = {t.name: t for t in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type != "Gemm" or attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 \
                or attrs.get("beta", 1.0) != 1.0 or node.input[1] not in weights:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(weights[node.input[1]])
        if attrs.get("transB", 0):
            w = w.T
        name = node.input[1] + "/matmul"
        model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w), name))
        product = node.output[0] + "/product"
        nodes.append(helper.make_node("MatMul", [node.input[0], name], [product]))
        nodes.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]]))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def feature_tensor(model):
    """The encoded feature matrix: what the model part reads first."""
    for node in model.graph.node:
        if node.output[0] in ("mlp/input", "lr/product"):
            return node.input[0]
    return None


frame = pd.read_csv(args.file)
y = (frame[args.target].astype(str) == args.positive).to_numpy().astype(int)
rows = len(frame)
print(f"{rows} rows, batches of {args.batch}, one thread; ms per batch of {args.batch} and rows/s; "
      "whole = raw columns in, model = encoded features in")
print()
print("| model | variant | runtime | whole ms/batch | whole rows/s | model ms/batch | model rows/s "
      "| bytes | AUC | precision | recall | F1 | max \\|Δscore\\| |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
work = tempfile.mkdtemp()
for reference in args.model or ["default_risk"]:
    variants = json.loads(kaskad("bench", "--home", args.home, "--model", reference, "--file",
                                 args.file, "--batch", str(args.batch), "--json"))
    root = variants[0]
    for v in variants:
        change = "—" if v["score_change_max"] is None else f"{v['score_change_max']:.4f}"
        print(f"| {v['model']} ({v['algorithm']}) | {v['variant']} | kaskad "
              f"| {v['ms_per_batch']:.3f} | {v['rows_per_s']:,.0f} "
              f"| {v['model_ms_per_batch']:.3f} | {v['model_rows_per_s']:,.0f} | {v['bytes']:,} "
              f"| {v['auc']:.4f} | {v['precision']:.4f} | {v['recall']:.4f} | {v['f1']:.4f} | {change} |")

    full_path = os.path.join(work, reference.replace("@", "-") + ".onnx")
    kaskad("models", "export", "--home", args.home, "--model", root["model"], "--out", full_path)
    full = onnx.load(full_path)
    feeds = {}
    for spec in session(full_path).get_inputs():
        column = frame[spec.name]
        if spec.type == "tensor(string)":
            values = column.astype(object).where(column.notna(), "").astype(str).to_numpy()
        else:
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
        feeds[spec.name] = values.reshape(-1, 1)
    whole = [{k: v[s:s + args.batch] for k, v in feeds.items()} for s in range(0, rows, args.batch)]

    # The model part: the graph cut at the feature matrix, fed that matrix.
    features = feature_tensor(full)
    model_batches, model_path = None, None
    if features is not None:
        pre_path = os.path.join(work, "pre.onnx")
        model_path = os.path.join(work, "model.onnx")
        onnx.utils.extract_model(full_path, pre_path, list(feeds), [features])
        onnx.utils.extract_model(full_path, model_path, [features], ["probabilities"])
        matrix = session(pre_path).run([features], feeds)[0]
        model_batches = [{features: matrix[s:s + args.batch]} for s in range(0, rows, args.batch)]

    runs = [("fp32", full_path, model_path)]
    if any(n.op_type in ("Gemm", "MatMul") and n.output[0].startswith("mlp/") for n in full.graph.node):
        int8 = []
        for path in (full_path, model_path):
            if path is None:
                int8.append(None)
                continue
            rewritten = path.replace(".onnx", ".matmul.onnx")
            onnx.save(gemm_as_matmul(onnx.load(path)), rewritten)
            quantized = path.replace(".onnx", ".int8.onnx")
            quantize_dynamic(rewritten, quantized, weight_type=QuantType.QInt8)
            int8.append(quantized)
        runs.append(("int8 (quantize_dynamic)", *int8))
    reference_scores = None
    for label, whole_path, part_path in runs:
        scores, whole_seconds = timed(session(whole_path), whole)
        model_cells = "| — | —"
        if part_path is not None:
            _, part_seconds = timed(session(part_path), model_batches)
            model_cells = (f"| {part_seconds * 1e3 / len(model_batches):.3f} "
                           f"| {rows / part_seconds:,.0f}")
        if reference_scores is None:
            reference_scores = scores
            change = "—"
        else:
            change = f"{np.max(np.abs(scores - reference_scores)):.4f}"
        a, p, r, f = quality(y, scores, root["threshold"])
        print(f"| {root['model']} ({root['algorithm']}) | {label} | onnxruntime {ort.__version__} "
              f"| {whole_seconds * 1e3 / len(whole):.3f} | {rows / whole_seconds:,.0f} {model_cells} "
              f"| {os.path.getsize(whole_path):,} | {a:.4f} | {p:.4f} | {r:.4f} | {f:.4f} | {change} |")
