#!/usr/bin/env bash
# A/B of two kaskad binaries on the serving load of bench/serve_bench.sh
# (single application, wrk -t1 -c32, same body), alternated in the same
# minutes, so that a machine shared with other work treats both alike.
# Each run: a fresh copy of one home (init + update --all on
# data/credit_data.csv, made once with the first binary), WARMUP s
# discarded, DURATION s measured; prints req/s, p50/p90/p99, the load
# average, and the server's CPU per request from its threads' ticks over
# the measured run (tokio workers, request-log writer, request-log import).
#
#   bench/serve_ab.sh OLD_BIN NEW_BIN [ROUNDS]      # ROUNDS=3
# Environment: DURATION=8 WARMUP=2 PORT=18090 EXTRA_A= EXTRA_B= (extra
# `kaskad serve` flags per binary, e.g. EXTRA_B="--log-import-seconds 3").
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
A="$1"; B="$2"; ROUNDS="${3:-3}"
DURATION="${DURATION:-8}"; WARMUP="${WARMUP:-2}"; PORT="${PORT:-18090}"
WORK="$(mktemp -d)"; PID=""
cleanup() { [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
T="$WORK/template"
"$A" init --home "$T" --dataset "$ROOT/data/credit_data.csv" --target Status --positive bad >/dev/null 2>&1
"$A" update --home "$T" --all >/dev/null 2>&1
export WRK_KEY="$("$A" keys create --home "$T" --role scorer 2>/dev/null | tail -1)"
export WRK_BODY="$WORK/body.json"
python3 - "$ROOT/data/credit_data.csv" "$WRK_BODY" <<'PY'
import json, sys
import pandas as pd
df = pd.read_csv(sys.argv[1], nrows=1).drop(columns=["Status"])
json.dump({c: (v.item() if hasattr(v, "item") else v) for c, v in df.iloc[0].items()}, open(sys.argv[2], "w"))
PY
threads() { # "name ticks" per thread of PID, tokio workers summed
  for t in /proc/"$1"/task/*; do
    echo "$(cut -c1-15 "$t/comm" | sed 's/^tokio.*/tokio/') $(awk '{print $14 + $15}' "$t/stat" 2>/dev/null || echo 0)"
  done | awk '{s[$1] += $2} END {for (k in s) print k, s[k]}' | sort
}
run() { # run LABEL BIN EXTRA
  local h="$WORK/run" url="http://127.0.0.1:$PORT/v1/models/default_risk/score" line
  rm -rf "$h"; cp -a "$T" "$h"
  # shellcheck disable=SC2086
  "$2" serve --home "$h" --addr "127.0.0.1:$PORT" $3 >/dev/null 2>&1 &
  PID=$!
  for _ in $(seq 300); do curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/health/live" && break; sleep 0.1; done
  wrk -t1 -c32 -d"${WARMUP}s" -s "$ROOT/bench/serve/post.lua" "$url" >/dev/null
  threads "$PID" >"$WORK/t0"
  line="$(wrk -t1 -c32 -d"${DURATION}s" --timeout 5s -s "$ROOT/bench/serve/post.lua" "$url" | sed -n 's/^WRKJSON //p')"
  threads "$PID" >"$WORK/t1"
  local load dropped
  load="$(cut -d' ' -f1 /proc/loadavg)"
  dropped="$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^kaskad_request_log_dropped_total/ {print $2}')"
  kill -TERM "$PID"; for _ in $(seq 300); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done; PID=""
  python3 - "$1" "$line" "$load" "${dropped:-?}" "$WORK/t0" "$WORK/t1" "$(getconf CLK_TCK)" <<'PY'
import json, sys
label, line, load, dropped, t0, t1, tck = sys.argv[1:8]
r = json.loads(line)
rd = lambda p: {k: int(v) for k, v in (l.split() for l in open(p) if l.strip())}
a, b = rd(t0), rd(t1)
used = {k: b[k] - a.get(k, 0) for k in b if b[k] - a.get(k, 0) > 0}
us = sum(used.values()) / int(tck) * 1e6 / r["requests"]
print(f"{label}\t{r['requests'] / (r['duration_us'] / 1e6):,.0f} req/s\tp50 {r['p50_us'] / 1e3:.3f}\tp90 {r['p90_us'] / 1e3:.3f}"
      f"\tp99 {r['p99_us'] / 1e3:.3f} ms\tload {load}\tCPU {us:.1f} µs/req ({' '.join(f'{k} {v}' for k, v in used.items())} ticks)\tlog dropped {dropped}")
PY
}
for _ in $(seq "$ROUNDS"); do
  run A "$A" "${EXTRA_A:-}"
  run B "$B" "${EXTRA_B:-}"
done
