"""scikit-learn reference for the backbone's quality bar.

credit_data.csv (shared datasets, also in data/): the first 75 % of rows in
file order are the training stream, the newest 25 % are scored. Pipeline:
median imputation + standard scaling for numbers, most-frequent imputation +
one-hot for categories, LogisticRegression(C=1.0, lbfgs). Prints the AUC that
crates/kaskad/tests stores as SKLEARN_LR_AUC.

    python3 bench/peers/credit_data_lr_reference.py data/credit_data.csv
"""
import sys

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

path = sys.argv[1] if len(sys.argv) > 1 else "data/credit_data.csv"
df = pd.read_csv(path)
y = (df.pop("Status") == "bad").astype(int)
cut = int(len(df) * 0.75)  # floor, as the Rust tests and the demo split
numeric = df.select_dtypes("number").columns.tolist()
categorical = [c for c in df.columns if c not in numeric]
pre = ColumnTransformer([
    ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
    ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")), categorical),
])
model = make_pipeline(pre, LogisticRegression(C=1.0, max_iter=1000))
model.fit(df.iloc[:cut], y.iloc[:cut])
auc = roc_auc_score(y.iloc[cut:], model.predict_proba(df.iloc[cut:])[:, 1])
print(f"{auc:.6f}")
