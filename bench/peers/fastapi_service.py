"""FastAPI + scikit-learn scoring service: the serving peer of issue 4.

The usual Python setup: a pydantic model for the body, a scikit-learn
Pipeline fitted at startup, one application per request scored through a
one-row pandas DataFrame. Trained on the first 75 % of rows (file order) of
data/credit_data.csv, target Status, positive "bad", with the pipeline of
bench/peers/credit_data_lr_reference.py (median imputation + standard
scaling for numbers, most-frequent imputation + one-hot for categories,
LogisticRegression(C=1)).

    POST /score  {"Seniority": 9, "Home": "rent", ...}  ->  {"score": 0.12, "decision": "approve"}

Run (from the repository root):

    CREDIT_DATA=data/credit_data.csv uvicorn --app-dir bench/peers fastapi_service:app \
        --host 127.0.0.1 --port 8001 --workers 1 --no-access-log

The decision threshold is 0.5 (score >= threshold declines), overridable with
SCORE_THRESHOLD.
"""
import os
from typing import Optional

import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


class Application(BaseModel):
    Seniority: Optional[float] = None
    Home: Optional[str] = None
    Time: Optional[float] = None
    Age: Optional[float] = None
    Marital: Optional[str] = None
    Records: Optional[str] = None
    Job: Optional[str] = None
    Expenses: Optional[float] = None
    Income: Optional[float] = None
    Assets: Optional[float] = None
    Debt: Optional[float] = None
    Amount: Optional[float] = None
    Price: Optional[float] = None


class Score(BaseModel):
    score: float
    decision: str


def fit(path: str):
    df = pd.read_csv(path)
    y = (df.pop("Status") == "bad").astype(int)
    cut = int(len(df) * 0.75)
    numeric = df.select_dtypes("number").columns.tolist()
    categorical = [c for c in df.columns if c not in numeric]
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore")), categorical),
    ])
    model = make_pipeline(pre, LogisticRegression(C=1.0, max_iter=1000))
    model.fit(df.iloc[:cut], y.iloc[:cut])
    return model, list(df.columns)


MODEL, COLUMNS = fit(os.environ.get("CREDIT_DATA", "data/credit_data.csv"))
THRESHOLD = float(os.environ.get("SCORE_THRESHOLD", "0.5"))

app = FastAPI()


@app.get("/health")
def health():
    return {"status": "ok"}


@app.post("/score", response_model=Score)
def score(application: Application):
    row = pd.DataFrame([application.model_dump()], columns=COLUMNS)
    p = float(MODEL.predict_proba(row)[0, 1])
    return {"score": p, "decision": "decline" if p >= THRESHOLD else "approve"}
