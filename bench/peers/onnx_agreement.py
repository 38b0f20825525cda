"""Agreement of an ONNX model with kaskad's scores of the same rows.

Checks MODEL.onnx with onnx's full checker (types and shapes inferred
against the declared opset), runs it in onnxruntime on the raw rows of
INPUTS.csv and compares the positive-class score with the `score` column of
EXPECTED.csv, row by row. The score is column 1 of the `--output` tensor
(default `probabilities`, P(default) of an exported kaskad model) when it
has two columns, its only column otherwise, or class 1 of a ZipMap output.

    pip install onnxruntime onnx numpy
    python3 bench/peers/onnx_agreement.py MODEL.onnx INPUTS.csv EXPECTED.csv \
        [--tolerance 1e-5] [--output NAME] [--features c1,c2,...]

INPUTS.csv has a header naming every column the graph reads. An empty cell
is a missing value: NaN for a numeric (float or double) input, "" for a
categorical (string) one, which is the graph's contract. Numeric cells may
be `inf`. With --features, the graph's single input is the [N, F] matrix of
those columns, in order (an imported model's binding).
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


NUMBERS = {"tensor(double)": np.float64, "tensor(float)": np.float32}


def column(spec_type, cells):
    if spec_type == "tensor(string)":
        return np.array(cells, dtype=object)
    if spec_type in NUMBERS:
        return np.array([float(c) if c != "" else np.nan for c in cells], dtype=NUMBERS[spec_type])
    sys.exit(f"input type {spec_type} is outside the contract")


def feed(session, rows, features):
    specs = session.get_inputs()
    wanted = features or [spec.name for spec in specs]
    for name in wanted:
        if name not in rows[0]:
            sys.exit(f"the model reads column `{name}`, which the inputs lack")
    if features:
        (spec,) = specs
        return {spec.name: np.stack([column(spec.type, [r[f] for r in rows]) for f in features], axis=1)}
    inputs = {}
    for spec in specs:
        values = column(spec.type, [r[spec.name] for r in rows])
        inputs[spec.name] = values.reshape(-1, 1) if len(spec.shape) == 2 else values
    return inputs


def positive_scores(output):
    """Column 1 of [N, 2], the only column of [N, 1] or [N], class 1 of ZipMap."""
    if isinstance(output, list):
        return np.array([list(row.values())[1] for row in output]), (len(output), 2)
    output = np.asarray(output)
    if output.ndim == 1:
        output = output.reshape(-1, 1)
    return output[:, -1], output.shape


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("inputs")
    parser.add_argument("expected")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    parser.add_argument("--output", default="probabilities")
    parser.add_argument("--features", default="", help="comma-separated columns of a single 2-D input")
    args = parser.parse_args()
    features = [f for f in args.features.split(",") if f]

    onnx.checker.check_model(onnx.load(args.model), full_check=True)
    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    rows = read_csv(args.inputs)
    expected = np.array([float(r["score"]) for r in read_csv(args.expected)])
    if len(expected) != len(rows):
        sys.exit(f"{len(rows)} input rows but {len(expected)} expected scores")

    (output,) = session.run([args.output], feed(session, rows, features))
    scores, shape = positive_scores(output)
    problems = []
    if shape[0] != len(rows) or shape[1:] not in [(1,), (2,)]:
        problems.append(f"output shape {shape}, expected ({len(rows)}, 2) or ({len(rows)}, 1)")
        max_diff = float("inf")
    else:
        max_diff = float(np.max(np.abs(scores - expected)))
        if not np.all(np.isfinite(scores)):
            problems.append("non-finite scores")
        if isinstance(output, np.ndarray) and shape[1:] == (2,):
            # Exported kaskad graphs compute in double; float outputs round to ~1e-7.
            slack = 1e-12 if output.dtype == np.float64 else 1e-6
            if np.max(np.abs(output.sum(axis=1) - 1.0)) > slack:
                problems.append("rows do not sum to 1")
    if not max_diff <= args.tolerance:
        problems.append(f"max |diff| {max_diff:.3g} exceeds {args.tolerance:g}")
    print(
        json.dumps(
            {
                "model": args.model,
                "rows": len(rows),
                "output": args.output,
                "output_dtype": str(getattr(output, "dtype", "zipmap")),
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
