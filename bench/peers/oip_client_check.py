"""Checks that Triton's own Python client (tritonclient[http]) works unchanged
against `kaskad serve`'s Open Inference Protocol (KServe V2) endpoints.

    pip install 'tritonclient[http]'
    kaskad serve --home H --addr 127.0.0.1:8080 &
    python3 bench/peers/oip_client_check.py --url 127.0.0.1:8080 \
        --key "$(kaskad keys create --home H --role scorer | tail -1)" \
        --model default_risk --data data/credit_data.csv

It scores the first --rows applications of the CSV (raw columns, the target
dropped) with binary tensors (the client's default) and with JSON tensors,
checks that both agree and that the decisions follow the scores, and that a
request without a key is refused. Exits non-zero on the first failure.
"""

import argparse
import csv
import sys
from importlib.metadata import version as package_version

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException


def columns_of(path, rows, names):
    with open(path, newline="") as f:
        records = list(csv.DictReader(f))[:rows]
    return {name: [r.get(name, "") for r in records] for name in names}


def inputs_for(meta, table, binary):
    inputs = []
    for spec in meta["inputs"]:
        values = table[spec["name"]]
        if spec["datatype"] == "FP64":
            # Empty cells are missing values: NaN travels as a number.
            array = np.array([float(v) if v != "" else np.nan for v in values], dtype=np.float64)
        else:
            array = np.array(values, dtype=np.object_)
        tensor = httpclient.InferInput(spec["name"], list(array.shape), spec["datatype"])
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    return inputs


def check(condition, message):
    if not condition:
        print(f"FAIL: {message}")
        sys.exit(1)
    print(f"ok: {message}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="127.0.0.1:8080")
    parser.add_argument("--key", required=True)
    parser.add_argument("--model", default="default_risk")
    parser.add_argument("--data", default="data/credit_data.csv")
    parser.add_argument("--rows", type=int, default=200)
    args = parser.parse_args()

    # A fresh dict per call: tritonclient's infer() adds the
    # Inference-Header-Content-Length of a binary request to the dict it is
    # given, which would then be sent again with the next, JSON, request.
    def auth():
        return {"Authorization": f"Bearer {args.key}"}

    client = httpclient.InferenceServerClient(url=args.url)
    check(client.is_server_live(headers=auth()), "server live")
    check(client.is_server_ready(headers=auth()), "server ready")
    server = client.get_server_metadata(headers=auth())
    check(server["name"] == "kaskad", f"server metadata: {server}")
    check(client.is_model_ready(args.model, headers=auth()), f"model {args.model} ready")
    check(not client.is_model_ready("no_such_model", headers=auth()), "unknown model not ready")
    meta = client.get_model_metadata(args.model, headers=auth())
    check(meta["platform"] == "kaskad" and meta["inputs"], f"metadata: {len(meta['inputs'])} inputs, versions {meta['versions']}")

    table = columns_of(args.data, args.rows, [i["name"] for i in meta["inputs"]])
    n = len(next(iter(table.values())))

    # The client's defaults: binary input tensors, no outputs named (all
    # outputs come back binary).
    result = client.infer(args.model, inputs_for(meta, table, True), headers=auth())
    scores = result.as_numpy("score")
    decisions = result.as_numpy("decision")
    response = result.get_response()
    check(scores.shape == (n,) and scores.dtype == np.float64, f"binary infer: {n} FP64 scores, model version {response['model_version']}")
    check(bool(np.all((scores >= 0) & (scores <= 1))), f"scores in [0, 1] (mean {scores.mean():.4f})")
    check(decisions.shape == (n,) and set(d.decode() for d in decisions) <= {"approve", "decline"}, "decisions are approve/decline")

    # JSON tensors in, one output requested as JSON and one as binary.
    outputs = [httpclient.InferRequestedOutput("score", binary_data=False), httpclient.InferRequestedOutput("decision", binary_data=True)]
    result = client.infer(args.model, inputs_for(meta, table, False), outputs=outputs, request_id="check-1", headers=auth())
    json_scores = result.as_numpy("score")
    check(result.get_response()["id"] == "check-1", "request id echoed")
    check(np.allclose(json_scores, scores, rtol=0, atol=1e-12), f"JSON and binary tensors give the same scores (max diff {np.abs(json_scores - scores).max():.2e})")
    declined = np.array([d.decode() == "decline" for d in result.as_numpy("decision")])
    lowest_declined = json_scores[declined].min(initial=1.0)
    highest_approved = json_scores[~declined].max(initial=0.0)
    check(highest_approved < lowest_declined, f"declines are the highest scores ({declined.sum()} of {n} declined)")

    # A versioned request.
    version = meta["versions"][0]
    result = client.infer(args.model, inputs_for(meta, table, True), model_version=version, headers=auth())
    check(result.get_response()["model_version"] == version, f"model_version={version} scores with version {version}")

    try:
        client.infer(args.model, inputs_for(meta, table, True))
        check(False, "a request without a key is refused")
    except InferenceServerException as e:
        check("Authorization" in str(e), f"a request without a key is refused: {e}")
    try:
        bad = httpclient.InferInput("Income", [1], "BYTES")
        bad.set_data_from_numpy(np.array(["abc"], dtype=np.object_))
        client.infer(args.model, [bad], headers=auth())
        check(False, "a non-number in a numeric column is refused")
    except InferenceServerException as e:
        check("expected a number" in str(e), f"a non-number in a numeric column is refused: {e}")
    print(f"tritonclient {package_version('tritonclient')} works unchanged against kaskad serve at {args.url}")


if __name__ == "__main__":
    main()
