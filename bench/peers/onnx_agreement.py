"""Agreement of an exported kaskad ONNX model with kaskad's own scores.

Checks MODEL.onnx with onnx's full checker (types and shapes inferred
against the declared opset), runs it in onnxruntime on the raw rows of
INPUTS.csv and compares column 1 of `probabilities` (P(default)) with the
`score` column of EXPECTED.csv, row by row.

    pip install onnxruntime onnx numpy
    python3 bench/peers/onnx_agreement.py MODEL.onnx INPUTS.csv EXPECTED.csv [--tolerance 1e-5]

INPUTS.csv has a header naming every column the graph reads. An empty cell
is a missing value: NaN for a numeric (double) input, "" for a categorical
(string) one, which is the graph's contract. Numeric cells may be `inf`.
Prints one JSON line and exits 1 when the largest |difference| exceeds the
tolerance (or the output is malformed).
"""
import argparse
import csv
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit(f"{path}: no rows")
    return rows


def feed(session, rows):
    inputs = {}
    for spec in session.get_inputs():
        if spec.name not in rows[0]:
            sys.exit(f"the model reads column `{spec.name}`, which the inputs lack")
        cells = [r[spec.name] for r in rows]
        if spec.type == "tensor(string)":
            values = np.array(cells, dtype=object)
        elif spec.type == "tensor(double)":
            values = np.array([float(c) if c != "" else np.nan for c in cells], dtype=np.float64)
        else:
            sys.exit(f"input `{spec.name}` has type {spec.type}, outside the contract")
        inputs[spec.name] = values.reshape(-1, 1)
    return inputs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("inputs")
    parser.add_argument("expected")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    args = parser.parse_args()

    onnx.checker.check_model(onnx.load(args.model), full_check=True)
    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    rows = read_csv(args.inputs)
    expected = np.array([float(r["score"]) for r in read_csv(args.expected)])
    if len(expected) != len(rows):
        sys.exit(f"{len(rows)} input rows but {len(expected)} expected scores")

    (probabilities,) = session.run(["probabilities"], feed(session, rows))
    problems = []
    if probabilities.shape != (len(rows), 2):
        problems.append(f"output shape {probabilities.shape}, expected ({len(rows)}, 2)")
        max_diff = float("inf")
    else:
        max_diff = float(np.max(np.abs(probabilities[:, 1] - expected)))
        if not np.all(np.isfinite(probabilities)):
            problems.append("non-finite probabilities")
        if np.max(np.abs(probabilities.sum(axis=1) - 1.0)) > 1e-12:
            problems.append("rows do not sum to 1")
    if not max_diff <= args.tolerance:
        problems.append(f"max |diff| {max_diff:.3g} exceeds {args.tolerance:g}")
    print(
        json.dumps(
            {
                "model": args.model,
                "rows": len(rows),
                "output_dtype": str(probabilities.dtype),
                "max_abs_diff": max_diff,
                "tolerance": args.tolerance,
                "onnxruntime": ort.__version__,
                "passed": not problems,
                "problems": problems,
            }
        )
    )
    sys.exit(0 if not problems else 1)


if __name__ == "__main__":
    main()
