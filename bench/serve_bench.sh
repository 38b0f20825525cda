#!/usr/bin/env bash
# Serving benchmark of issue 4: single-application scoring over HTTP on
# 127.0.0.1, kaskad serve vs a FastAPI + scikit-learn service
# (bench/peers/fastapi_service.py), same body, same load tool (wrk), one run.
# Then kaskad's cascade overhead: chains of 1, 4 and 16 modules (each module
# the champion LR) vs the model's own route, at low concurrency.
#
# Builds nothing. Needs wrk, python3 with fastapi, uvicorn, scikit-learn, pandas.
#
#   cargo build --release -p kaskad
#   bench/serve_bench.sh [path/to/release/kaskad]
#
# Environment (defaults): DURATION=10 (s per measured run), WARMUP=2 (s, discarded),
# CONNS=32, THREADS=1 (wrk threads), PEER_WORKERS="1 2" (uvicorn worker counts),
# KASKAD_REPEATS=3 (measured runs of kaskad's single-application load; the
# table shows each and their median, which the ratios use),
# CASCADE_CONNS=1, CASCADE_REPEATS=3 (runs per cascade target; the median p50 is kept),
# CASCADE_PIN=0 (1: during the cascade runs, kaskad's threads are pinned to the
# last core and wrk to the first, with taskset; 0 leaves placement to the kernel),
# KASKAD_PORT=18080, PEER_PORT=18001, SERVE_ARGS="" (more `kaskad serve` flags).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${1:-${KASKAD_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/kaskad}}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNS="${CONNS:-32}"
THREADS="${THREADS:-1}"
PEER_WORKERS="${PEER_WORKERS-1 2}"
KASKAD_REPEATS="${KASKAD_REPEATS:-3}"
CASCADE_CONNS="${CASCADE_CONNS:-1}"
CASCADE_REPEATS="${CASCADE_REPEATS:-3}"
CASCADE_PIN="${CASCADE_PIN:-0}"
WRK_PREFIX=""
KASKAD_PORT="${KASKAD_PORT:-18080}"
PEER_PORT="${PEER_PORT:-18001}"
SERVE_ARGS="${SERVE_ARGS:-}"
DATA="$ROOT/data/credit_data.csv"
LUA="$ROOT/bench/serve/post.lua"

[ -x "$BIN" ] || { echo "no kaskad binary at $BIN (cargo build --release -p kaskad)" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk not found (apt-get install -y wrk)" >&2; exit 2; }

WORK="$(mktemp -d)"
H="$WORK/home"
KASKAD_PID=""
PEER_PID=""

stop() { # stop PID: SIGTERM, wait up to 10 s, then SIGKILL; by PID only
  local pid="$1"
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  stop "$PEER_PID"
  stop "$KASKAD_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_http() { # wait_http URL: until it answers (any status), up to 60 s
  for _ in $(seq 600); do
    curl -s -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2
  return 1
}

# --- the home, the keys, the body ----------------------------------------
echo "# home: init + update --all on data/credit_data.csv" >&2
"$BIN" init --home "$H" --dataset "$DATA" --target Status --positive bad >"$WORK/init.log" 2>&1
"$BIN" update --home "$H" --all >"$WORK/update.log" 2>&1
SCORER="$("$BIN" keys create --home "$H" --role scorer 2>/dev/null | tail -1)"
ADMIN="$("$BIN" keys create --home "$H" --role admin 2>/dev/null | tail -1)"
CHAMPION="$("$BIN" models --home "$H" | awk '/champion/ {print $1, $2}')"
echo "# champion: $CHAMPION" >&2

BODY="$WORK/application.json"
python3 - "$DATA" "$BODY" <<'EOF'
import json, sys
import pandas as pd
df = pd.read_csv(sys.argv[1], nrows=1).drop(columns=["Status"])
row = {c: (v.item() if hasattr(v, "item") else v) for c, v in df.iloc[0].items()}
json.dump(row, open(sys.argv[2], "w"))
EOF
echo "# body: $(cat "$BODY")" >&2

# --- load ----------------------------------------------------------------
# CPU accounting, so a run shared with other work on the machine shows it:
# the server's process tree (SERVER_PID and its children), wrk itself, and
# the whole machine (all cores) over the measured run, in cores busy.
TCK="$(getconf CLK_TCK)"
NCPU="$(nproc)"
SERVER_PID=""
tree_ticks() { # utime+stime of PID and its direct children
  local t=0 p
  for p in "$1" $(ps --ppid "$1" -o pid= 2>/dev/null); do
    [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$t"
}
machine_busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

# load URL KEY BODYFILE CONNS DURATION -> the WRKJSON line of the measured run,
# with cores used by the server, by wrk, and by the whole machine
load() {
  local url="$1" key="$2" body="$3" conns="$4" dur="$5" threads="$THREADS"
  [ "$conns" -lt "$threads" ] && threads="$conns"
  WRK_BODY="$body" WRK_KEY="$key" $WRK_PREFIX wrk -t"$threads" -c"$conns" -d"${WARMUP}s" -s "$LUA" "$url" >/dev/null
  local s0 m0 s1 m1 line wall
  s0="$(tree_ticks "$SERVER_PID")"; m0="$(machine_busy)"
  line="$(WRK_BODY="$body" WRK_KEY="$key" /usr/bin/time -f 'WRKCPU %U %S' -o "$WORK/wrk.time" \
    $WRK_PREFIX wrk -t"$threads" -c"$conns" -d"${dur}s" --timeout 5s -s "$LUA" "$url" | sed -n 's/^WRKJSON //p')"
  s1="$(tree_ticks "$SERVER_PID")"; m1="$(machine_busy)"
  read -r _ wu ws <"$WORK/wrk.time"
  awk -v l="$line" -v s=$((s1 - s0)) -v m=$((m1 - m0)) -v w="$wu + $ws" -v t="$TCK" -v d="$dur" -v n="$NCPU" '
    BEGIN { split(w, a, " [+] "); sub(/}$/, "", l);
            printf "%s,\"server_cores\":%.2f,\"wrk_cores\":%.2f,\"machine_cores\":%.2f,\"ncpu\":%d}\n",
              l, s / t / d, (a[1] + a[2]) / d, m / t / d, n }'
}

# row NAME JSON -> appends "name<TAB>json" to the results
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
record() { printf '%s\t%s\n' "$1" "$2" >>"$RESULTS"; echo "# $1: $2" >&2; }

# check URL KEY BODY: one request must answer 200 with a score
check() {
  local out
  out="$(curl -s -w '\n%{http_code}' -H "Authorization: Bearer $2" -H 'Content-Type: application/json' \
    --data-binary "@$3" "$1")"
  [ "$(tail -1 <<<"$out")" = 200 ] || { echo "check failed: $1: $out" >&2; exit 1; }
  echo "# $1 -> $(head -1 <<<"$out" | cut -c1-200)" >&2
}

# --- kaskad ----------------------------------------------------------------
"$BIN" serve --home "$H" --addr "127.0.0.1:$KASKAD_PORT" $SERVE_ARGS >"$WORK/kaskad.out" 2>"$WORK/kaskad.err" &
KASKAD_PID=$!
SERVER_PID=$KASKAD_PID
wait_http "http://127.0.0.1:$KASKAD_PORT/health/live"
K="http://127.0.0.1:$KASKAD_PORT"
check "$K/v1/models/default_risk/score" "$SCORER" "$BODY"
for r in $(seq "$KASKAD_REPEATS"); do
  record "kaskad#$r" "$(load "$K/v1/models/default_risk/score" "$SCORER" "$BODY" "$CONNS" "$DURATION")"
done
# The server's own view: how long requests spent inside it (parsed to
# answered), warm-ups included, against wrk's time, which adds the wait for
# a core shared with wrk.
curl -s "$K/metrics" | grep '^kaskad_http_request_duration_seconds_bucket{route="/v1/models/{name}/score"' \
  >"$WORK/server_histogram.txt"
DROPPED="$(curl -s "$K/metrics" | awk '/^kaskad_request_log_dropped_total/ {print $2}')"
WRITTEN="$(curl -s "$K/metrics" | awk '/^kaskad_request_log_written_total/ {print $2}')"
IMPORTED="$(curl -s "$K/metrics" | awk '/^kaskad_request_log_imported_total/ {print $2}')"
echo "# kaskad request log: written ${WRITTEN:-?} (to segment files), imported ${IMPORTED:-?} (into the catalog so far), dropped ${DROPPED:-?}" >&2

# --- cascade overhead (kaskad still running) -------------------------------
LR="$("$BIN" models --home "$H" | awk '/champion/ {print $1}')"
module() { printf '{"type": "module", "name": "%s", "model": "%s", "sources": ["applicant"]}' "$1" "$LR"; }
printf '{"type": "chain", "nodes": [%s], "output": {"score": "m1.score", "decision": "m1.decision"}}' \
  "$(module m1)" >"$WORK/single.json"
printf '{"type": "chain", "nodes": [%s, %s, %s, %s], "output": {"score": "m4.score", "decision": "m4.decision"}}' \
  "$(module m1)" "$(module m2)" "$(module m3)" "$(module m4)" >"$WORK/chain4.json"
nodes16="$(for i in $(seq 16); do module "m$i"; if [ "$i" -lt 16 ]; then printf ', '; fi; done)"
printf '{"type": "chain", "nodes": [%s], "output": {"score": "m16.score", "decision": "m16.decision"}}' \
  "$nodes16" >"$WORK/chain16.json"
for c in single chain4 chain16; do
  code="$(curl -s -o "$WORK/put.out" -w '%{http_code}' -X PUT -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' --data-binary "@$WORK/$c.json" "$K/v1/cascades/$c")"
  [ "$code" = 201 ] || { echo "PUT cascade $c: $code $(cat "$WORK/put.out")" >&2; exit 1; }
done
python3 -c 'import json,sys; print(json.dumps({"applicant": json.load(open(sys.argv[1]))}))' "$BODY" >"$WORK/cascade_body.json"
check "$K/v1/cascades/chain4/score" "$SCORER" "$WORK/cascade_body.json"
if [ "$CASCADE_PIN" = 1 ] && [ "$NCPU" -ge 2 ]; then
  taskset -a -p -c "$((NCPU - 1))" "$KASKAD_PID" >/dev/null
  WRK_PREFIX="taskset -c 0"
  echo "# cascade runs: kaskad pinned to cpu $((NCPU - 1)), wrk to cpu 0" >&2
fi
for r in $(seq "$CASCADE_REPEATS"); do
  record "model@c$CASCADE_CONNS#$r" "$(load "$K/v1/models/$LR/score" "$SCORER" "$BODY" "$CASCADE_CONNS" "$DURATION")"
  record "cascade1@c$CASCADE_CONNS#$r" "$(load "$K/v1/cascades/single/score" "$SCORER" "$WORK/cascade_body.json" "$CASCADE_CONNS" "$DURATION")"
  record "cascade4@c$CASCADE_CONNS#$r" "$(load "$K/v1/cascades/chain4/score" "$SCORER" "$WORK/cascade_body.json" "$CASCADE_CONNS" "$DURATION")"
  record "cascade16@c$CASCADE_CONNS#$r" "$(load "$K/v1/cascades/chain16/score" "$SCORER" "$WORK/cascade_body.json" "$CASCADE_CONNS" "$DURATION")"
done
stop "$KASKAD_PID"
KASKAD_PID=""
WRK_PREFIX=""

# --- the FastAPI peer --------------------------------------------------------
for w in $PEER_WORKERS; do
  (cd "$ROOT" && CREDIT_DATA="$DATA" exec python3 -m uvicorn --app-dir bench/peers fastapi_service:app \
    --host 127.0.0.1 --port "$PEER_PORT" --workers "$w" --no-access-log --log-level warning) \
    >"$WORK/peer.out" 2>"$WORK/peer.err" &
  PEER_PID=$!
  SERVER_PID=$PEER_PID
  wait_http "http://127.0.0.1:$PEER_PORT/health"
  # every worker fits at startup; give them time to be up
  sleep 3
  check "http://127.0.0.1:$PEER_PORT/score" "" "$BODY"
  record "fastapi-w$w" "$(load "http://127.0.0.1:$PEER_PORT/score" "" "$BODY" "$CONNS" "$DURATION")"
  stop "$PEER_PID"
  PEER_PID=""
done

# --- the tables ---------------------------------------------------------------
python3 - "$RESULTS" "$CONNS" "$DURATION" "$THREADS" "$CASCADE_CONNS" "$WORK/server_histogram.txt" <<'EOF'
import json, re, statistics, sys
rows = [l.rstrip("\n").split("\t", 1) for l in open(sys.argv[1]) if l.strip()]
res = {name: json.loads(js) for name, js in rows}
conns, dur, threads, cconns = sys.argv[2:6]
buckets = {}
for line in open(sys.argv[6]):
    m = re.search(r'le="([^"]+)"\} (\d+)', line)
    if m:
        buckets[m.group(1)] = buckets.get(m.group(1), 0) + int(m.group(2))
def rps(r): return r["requests"] / (r["duration_us"] / 1e6)
def cores(r):
    rest = r["machine_cores"] - r["server_cores"] - r["wrk_cores"]
    return f"{r['server_cores']:.2f} / {r['wrk_cores']:.2f} / {max(rest, 0):.2f} of {r['ncpu']}"
def errs(r): return sum(v for k, v in r.items() if k.startswith("err_"))
runs = [n for n in res if n.startswith("kaskad#")]
k_rps = statistics.median(rps(res[n]) for n in runs)
k_p50 = statistics.median(res[n]["p50_us"] for n in runs)
k_p99 = statistics.median(res[n]["p99_us"] for n in runs)
print(f"\nSingle-application scoring, {conns} connections, {dur} s after a warm-up, wrk -t{threads}:\n")
print("| service | req/s | p50 ms | p99 ms | errors | kaskad/peer req/s | peer/kaskad p99 | cores: server / wrk / rest of machine |")
print("|---|---|---|---|---|---|---|---|")
for name in runs:
    r = res[name]
    print(f"| kaskad serve (/v1/models/default_risk/score), run {name.split('#')[1]} | {rps(r):,.0f} | {r['p50_us'] / 1000:.3f} | {r['p99_us'] / 1000:.3f} | {errs(r)} | | | {cores(r)} |")
print(f"| **kaskad serve, median of {len(runs)} runs** | **{k_rps:,.0f}** | **{k_p50 / 1000:.3f}** | **{k_p99 / 1000:.3f}** | | — | — | |")
for name in sorted(n for n in res if n.startswith("fastapi")):
    r = res[name]
    label = f"FastAPI + scikit-learn, uvicorn --workers {name.split('-w')[1]}"
    print(f"| {label} | {rps(r):,.0f} | {r['p50_us'] / 1000:.3f} | {r['p99_us'] / 1000:.3f} | {errs(r)} | {k_rps / rps(r):.1f}× | {r['p99_us'] / k_p99:.1f}× | {cores(r)} |")
total = buckets.get("+Inf", 0)
if total:
    shares = ", ".join(f"{100 * buckets[le] / total:.2f} % within {float(le) * 1000:g} ms"
                       for le in ("0.0001", "0.0004", "0.0016") if le in buckets)
    print(f"\nInside kaskad (parsed to answered, its own histogram, {total:,} requests): {shares}.")
def med(prefix, key):
    return statistics.median(r[key] for n, r in res.items() if n.startswith(prefix))
m, c1, c4, c16 = (med(p, "p50_us") for p in (f"model@c{cconns}", f"cascade1@c{cconns}", f"cascade4@c{cconns}", f"cascade16@c{cconns}"))
print(f"\nCascade overhead, {cconns} connection(s), median p50 over the repeats (µs):\n")
print("| route | p50 µs per run | p50 µs (median) | p99 µs (median) | req/s (median) | rest of machine, cores per run |")
print("|---|---|---|---|---|---|")
for label, p in [("model route /v1/models/{lr}/score", f"model@c{cconns}"),
                 ("cascade, 1 module", f"cascade1@c{cconns}"),
                 ("cascade, chain of 4 modules (same LR model)", f"cascade4@c{cconns}"),
                 ("cascade, chain of 16 modules (same LR model)", f"cascade16@c{cconns}")]:
    sel = [r for n, r in res.items() if n.startswith(p)]
    runs = ", ".join(str(r["p50_us"]) for r in sel)
    rest = ", ".join(f"{max(r['machine_cores'] - r['server_cores'] - r['wrk_cores'], 0):.2f}" for r in sel)
    print(f"| {label} | {runs} | {med(p, 'p50_us'):.0f} | {med(p, 'p99_us'):.0f} | {statistics.median(rps(r) for r in sel):,.0f} | {rest} |")
print(f"\nPer module: (4-module − 1-module) / 3 = {(c4 - c1) / 3:.1f} µs; "
      f"(4-module − model route) / 4 = {(c4 - m) / 4:.1f} µs; "
      f"(16-module − 1-module) / 15 = {(c16 - c1) / 15:.1f} µs")
print("\nRaw wrk summaries:")
for name, r in res.items():
    print(f"  {name}: {json.dumps(r)}")
EOF
