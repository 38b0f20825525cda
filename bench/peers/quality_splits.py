"""The train/test splits the quality comparison uses, written as CSV files
so that kaskad and its peers read exactly the same rows.

- credit_data: first 75 % of rows in file order / the newest 25 %;
- germancredit: stratified random 75 / 25 (seed 0; the file has no time);
- loans_full_schema: time split on issue_month (Jan+Feb-2018 / Mar-2018),
  leakage columns (balance, paid_*) and free-text emp_title dropped.

    python3 bench/peers/quality_splits.py bench/data/splits
"""
import os
import sys

import pandas as pd
from sklearn.model_selection import train_test_split

out = sys.argv[1] if len(sys.argv) > 1 else "bench/data/splits"
os.makedirs(out, exist_ok=True)

credit = pd.read_csv("data/credit_data.csv")
cut = int(len(credit) * 0.75)
credit.iloc[:cut].to_csv(f"{out}/credit_data.train.csv", index=False)
credit.iloc[cut:].to_csv(f"{out}/credit_data.test.csv", index=False)

german = pd.read_csv("data/germancredit.csv")
train, test = train_test_split(german, test_size=0.25, random_state=0,
                               stratify=german["creditability"])
train.to_csv(f"{out}/germancredit.train.csv", index=False)
test.to_csv(f"{out}/germancredit.test.csv", index=False)

loans = pd.read_csv("data/loans_full_schema.csv").drop(
    columns=["balance", "paid_total", "paid_principal", "paid_interest", "paid_late_fees",
             "emp_title"])
march = loans["issue_month"] == "Mar-2018"
loans = loans.drop(columns=["issue_month"])
loans[~march].to_csv(f"{out}/loans.train.csv", index=False)
loans[march].to_csv(f"{out}/loans.test.csv", index=False)
for name in ["credit_data", "germancredit", "loans"]:
    rows = [len(pd.read_csv(f"{out}/{name}.{part}.csv")) for part in ("train", "test")]
    print(f"{name}: {rows[0]} train rows, {rows[1]} test rows")
