"""Builds the ONNX models that `kaskad models import` is tested on.

Small scikit-learn and LightGBM models fitted to `data/credit_data.csv`
(target: Status == "bad", as 1) and converted the way users convert theirs,
with skl2onnx 1.20 and onnxmltools 1.16. Trees are few and shallow so every
file stays a few KB. The files are committed; CI does not rerun this script
(it needs skl2onnx, which the CI venv lacks), it only scores the files.

    python3 bench/peers/make_onnx_fixtures.py [--out crates/kaskad-onnx/tests/fixtures]

Models:
- lr_pipeline.onnx: Pipeline(ColumnTransformer(SimpleImputer + StandardScaler
  on numbers, SimpleImputer + OneHotEncoder on strings), LogisticRegression),
  one [N, 1] input per raw column (float numbers, string categories),
  ZipMap output (skl2onnx's default);
- tree.onnx (DecisionTreeClassifier), forest.onnx (RandomForestClassifier),
  sklearn_gbdt.onnx (GradientBoostingClassifier), mlp.onnx (SimpleImputer +
  StandardScaler + MLPClassifier), lightgbm.onnx (LGBMClassifier via onnxmltools),
  linear_regressor.onnx (Imputer + LinearRegression on the 0/1 target) and
  gbdt_regressor.onnx (GradientBoostingRegressor): one [N, 9] float input
  `input` holding the numeric columns in NUMERIC order, probabilities
  without ZipMap (a [N, 2] tensor) except forest.onnx, which keeps ZipMap;
- svm.onnx: an RBF support vector classifier, whose SVMClassifier operator
  kaskad does not evaluate (the unsupported-operator test).

Neither converter writes the opset-5 `TreeEnsemble` operator (ai.onnx.ml 5)
yet: tree models come out as TreeEnsembleClassifier/Regressor.
"""
import argparse
import os

import lightgbm
import numpy as np
import onnxmltools
import pandas as pd
from onnxmltools.convert.common.data_types import FloatTensorType as MlFloat
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

NUMERIC = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"]
CATEGORICAL = ["Home", "Marital", "Records", "Job"]
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", default=os.path.join(ROOT, "crates/kaskad-onnx/tests/fixtures"))
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)

data = pd.read_csv(os.path.join(ROOT, "data/credit_data.csv"))
y = (data["Status"] == "bad").astype(int).to_numpy()
numbers = data[NUMERIC].astype(np.float32)
strings = data[CATEGORICAL].fillna("")
x = numbers.to_numpy()
x_filled = SimpleImputer().fit_transform(x).astype(np.float32)


def save(name, onx):
    path = os.path.join(args.out, name)
    with open(path, "wb") as f:
        f.write(onx.SerializeToString())
    print(f"{path}: {os.path.getsize(path)} bytes")


# The whole pipeline, raw columns in.
pipeline = Pipeline(
    [
        (
            "prepare",
            ColumnTransformer(
                [
                    ("numbers", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), NUMERIC),
                    ("strings", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
                ]
            ),
        ),
        ("model", LogisticRegression(max_iter=1000)),
    ]
).fit(pd.concat([numbers, strings], axis=1), y)
inputs = [(c, FloatTensorType([None, 1])) for c in NUMERIC] + [
    (c, StringTensorType([None, 1])) for c in CATEGORICAL
]
save("lr_pipeline.onnx", convert_sklearn(pipeline, initial_types=inputs, target_opset=17))

matrix_input = [("input", FloatTensorType([None, len(NUMERIC)]))]
no_zipmap = {"zipmap": False}


def sklearn_model(name, model, rows=slice(None), zipmap=False):
    model.fit(x_filled[rows], y[rows])
    options = {id(model): no_zipmap} if not zipmap else None
    onx = convert_sklearn(
        model,
        initial_types=matrix_input,
        options=options,
        target_opset=17,
    )
    save(name, onx)


sklearn_model("tree.onnx", DecisionTreeClassifier(max_depth=5, random_state=1))
sklearn_model("forest.onnx", RandomForestClassifier(n_estimators=5, max_depth=4, random_state=1), zipmap=True)
sklearn_model("sklearn_gbdt.onnx", GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=1))
sklearn_model(
    "mlp.onnx",
    Pipeline(
        [
            ("impute", SimpleImputer()),
            ("scale", StandardScaler()),
            ("mlp", MLPClassifier((16, 8), max_iter=300, random_state=1)),
        ]
    ),
)
sklearn_model("svm.onnx", SVC(probability=True, random_state=1), rows=slice(0, 200))
# Missing numbers stay NaN: the Imputer operator fills them.
regressor = Pipeline([("impute", SimpleImputer()), ("model", LinearRegression())]).fit(x, y)
save("linear_regressor.onnx", convert_sklearn(regressor, initial_types=matrix_input, target_opset=17))
gbr = GradientBoostingRegressor(n_estimators=10, max_depth=3, random_state=1).fit(x_filled, y)
save("gbdt_regressor.onnx", convert_sklearn(gbr, initial_types=matrix_input, target_opset=17))

# LightGBM handles missing numbers itself: the raw matrix, NaN included.
booster = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=8, random_state=1, verbose=-1).fit(x, y)
save(
    "lightgbm.onnx",
    onnxmltools.convert_lightgbm(
        booster, initial_types=[("input", MlFloat([None, len(NUMERIC)]))], zipmap=False, target_opset=15
    ),
)
