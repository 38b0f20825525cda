#!/usr/bin/env bash
# Issue 3's speed bars: kaskad beside scikit-learn / LightGBM on credit_data
# resampled with noise (bench/make_resampled.py: NOT real data) at 200k and
# 1M rows. kaskad and the peer run alternately, REPEATS times each, in fresh
# processes (train_peers.py); the table shows medians. kNN queries are timed
# on the first KNN_QUERIES test rows (brute-force peers at 1M rows would
# otherwise take hours).
#
#     bash bench/speed_bars.sh            # REPEATS=3 SIZES="200000 1000000"
set -euo pipefail
cd "$(dirname "$0")/.."
REPEATS=${REPEATS:-3}
SIZES=${SIZES:-"200000 1000000"}
KNN_QUERIES=${KNN_QUERIES:-10000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/kaskad-target}
cargo build --release -p kaskad >&2
for rows in $SIZES; do
    prefix=bench/data/credit_$rows
    [ -f "$prefix.train.csv" ] || python3 bench/make_resampled.py --rows "$rows" --out "$prefix" >&2
    head -n $((KNN_QUERIES + 1)) "$prefix.test.csv" > "$prefix.knnq.csv"
    echo "### $rows rows (resampled with noise, not real): medians of $REPEATS alternating runs"
    python3 bench/peers/train_peers.py --train "$prefix.train.csv" --test "$prefix.test.csv" \
        --target Status --positive bad --algos lr,tree,gbdt --repeats "$REPEATS"
    python3 bench/peers/train_peers.py --train "$prefix.train.csv" --test "$prefix.knnq.csv" \
        --target Status --positive bad --algos knn,knn-equal --repeats "$REPEATS" --no-header
done
