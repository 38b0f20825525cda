"""Reference numbers of woe_reference.rs: optbinning's counts and WoE for
kaskad's germancredit.csv bins, given as fixed user splits. Run from the
workspace root with optbinning 1.0.0 and pandas installed."""
import numpy as np, pandas as pd
from optbinning import OptimalBinning
df = pd.read_csv("data/germancredit.csv")
y = (df["creditability"] == "bad").astype(int).values
edges = {"duration_in_month": [9.0, 15.0, 24.0, 30.0, 36.0],
         "credit_amount": [3590.0, 4716.0, 7174.0],
         "age_in_years": [23.0, 26.0, 30.0, 33.0]}
for col, e in edges.items():
    # optbinning bins are left-closed [a, b); kaskad's right-closed (a, b]:
    # the split just above each kaskad edge puts the edge value on its left.
    splits = [np.nextafter(v, np.inf) for v in e]
    ob = OptimalBinning(name=col, dtype="numerical", user_splits=splits,
                        user_splits_fixed=[True] * len(splits), monotonic_trend=None)
    ob.fit(df[col].values, y)
    t = ob.binning_table.build()
    rows = t.iloc[:len(e) + 1]
    print(col, "nonevent", list(rows["Non-event"].astype(int)), "event", list(rows["Event"].astype(int)),
          "woe", [float(w) for w in rows["WoE"]], "iv", float(t.loc["Totals", "IV"]))
levels = ["radio/television", "car (new)", "furniture/equipment", "car (used)", "business", "education"]
ob = OptimalBinning(name="purpose", dtype="categorical", user_splits=[[l] for l in levels] + [sorted(set(df["purpose"]) - set(levels))],
                    user_splits_fixed=[True] * 7, monotonic_trend=None, cat_cutoff=None)
ob.fit(df["purpose"].values, y)
t = ob.binning_table.build()
print(t[["Bin", "Non-event", "Event", "WoE"]])
for l in levels:
    r = t[t["Bin"].apply(lambda b: list(b) == [l] if not isinstance(b, str) else False)]
    print(l, int(r["Non-event"].iloc[0]), int(r["Event"].iloc[0]), float(r["WoE"].iloc[0]))
