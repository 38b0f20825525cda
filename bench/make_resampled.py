"""Synthetic benchmark data: real credit rows resampled with noise.

Draws N rows with replacement from a real data set (default
data/credit_data.csv), multiplies every present number by (1 + ε),
ε ~ Normal(0, 0.05) (integers stay integers), and with probability 0.02
replaces a category by a level drawn from the column's own distribution.
Missing values and the target are kept as drawn. The result is NOT real
data: it has the marginal shape of the source and is meant for speed and
memory measurements only. Writes TRAIN (first 80 %) and TEST (last 20 %).

    python3 bench/make_resampled.py --rows 200000 --out bench/data/credit_200k
"""
import argparse
import os

import numpy as np
import pandas as pd

parser = argparse.ArgumentParser()
parser.add_argument("--source", default="data/credit_data.csv")
parser.add_argument("--target", default="Status")
parser.add_argument("--rows", type=int, required=True)
parser.add_argument("--out", required=True, help="prefix; writes PREFIX.train.csv and PREFIX.test.csv")
parser.add_argument("--seed", type=int, default=7)
args = parser.parse_args()

rng = np.random.default_rng(args.seed)
source = pd.read_csv(args.source)
df = source.iloc[rng.integers(0, len(source), args.rows)].reset_index(drop=True)
for column in df.columns:
    if column == args.target:
        continue
    if pd.api.types.is_numeric_dtype(df[column]):
        noisy = df[column] * (1 + rng.normal(0, 0.05, len(df)))
        integral = pd.api.types.is_integer_dtype(source[column])
        df[column] = noisy.round().astype(source[column].dtype) if integral else noisy.round(2)
    else:
        swap = rng.random(len(df)) < 0.02
        levels = source[column].dropna()
        df.loc[swap & df[column].notna(), column] = rng.choice(
            levels.to_numpy(), int((swap & df[column].notna()).sum()))
os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
cut = int(len(df) * 0.8)
df.iloc[:cut].to_csv(f"{args.out}.train.csv", index=False)
df.iloc[cut:].to_csv(f"{args.out}.test.csv", index=False)
print(f"{args.out}.train.csv ({cut} rows), {args.out}.test.csv ({len(df) - cut} rows)")
