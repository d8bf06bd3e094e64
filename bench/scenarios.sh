#!/usr/bin/env bash
# The service scenarios of docs/benchmarks.md, each on a fresh `runbox serve` (embedded SQLite and
# Redis, the crun sandbox) in a throwaway data folder. Usage: bench/scenarios.sh [SCENARIO...]
# Results (the load generator's JSON and table) land in bench/results/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/bench/results"
PORT="${RUNBOX_BENCH_PORT:-18500}"
mkdir -p "$OUT"

SERVE_PID=""
DATA=""

serve() { # slots, then KEY=VALUE environment entries
  local slots="$1"; shift
  DATA="$(mktemp -d /tmp/runbox-bench-XXXXXX)"
  env "$@" ./runbox serve --port "$PORT" --data "$DATA" --slots "$slots" >"$OUT/$NAME.serve.log" 2>&1 &
  SERVE_PID=$!
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "serve did not get ready; see $OUT/$NAME.serve.log" >&2
  return 1
}

stop() {
  if [ -n "$SERVE_PID" ]; then
    kill -TERM "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
    SERVE_PID=""
  fi
  [ -n "$DATA" ] && rm -rf "$DATA"
  DATA=""
}
trap stop EXIT

bench() {
  echo "== $NAME: runbox bench $*" | tee "$OUT/$NAME.txt"
  # A run with lost or unexpected tasks still writes its report; the next scenario goes on.
  ./runbox bench --server "http://127.0.0.1:$PORT" --report "$OUT/$NAME.json" "$@" 2>/dev/null | tee -a "$OUT/$NAME.txt" || true
}

KEYS=(
  Runbox__Auth__Keys__0__Key=bench-alice-0123456789 Runbox__Auth__Keys__0__User=alice Runbox__Auth__Keys__0__Concurrency=4
  Runbox__Auth__Keys__1__Key=bench-bob-0123456789ab Runbox__Auth__Keys__1__User=bob Runbox__Auth__Keys__1__Concurrency=2
  Runbox__Auth__Keys__2__Key=bench-carol-0123456789 Runbox__Auth__Keys__2__User=carol Runbox__Auth__Keys__2__Concurrency=2
)

run() {
  NAME="$1"
  case "$NAME" in
    latency)     serve 4;    bench --tasks 200 --concurrency 1 --mix hello --warmup 20 ;;
    throughput)  serve 8;    bench --tasks 400 --concurrency 16 --mix hello --warmup 200 --baseline ;;
    # The bursts are measured on a running server: the warm-up (twice the burst, not counted) lets the
    # JIT's tier-1 recompilation finish first. The -cold variant is a burst on a server just started.
    sleep-100)   serve 100;  bench --tasks 100 --concurrency 100 --mix sleep --warmup 200 ;;
    sleep-500)   serve 500;  bench --tasks 500 --concurrency 500 --mix sleep --warmup 1000 ;;
    sleep-1000)  serve 1000; bench --tasks 1000 --concurrency 1000 --mix sleep --warmup 2000 ;;
    sleep-1000-cold) serve 1000; bench --tasks 1000 --concurrency 1000 --mix sleep ;;
    hello-10000) serve 8;    bench --tasks 10000 --concurrency 32 --mix hello-mixed ;;
    mixed)       serve 8;    bench --tasks 500 --concurrency 32 --mix mixed ;;
    fairness)    serve 8 "${KEYS[@]}"; bench --tasks 600 --concurrency 120 --mix hello --keys 'bench-alice-0123456789*8,bench-bob-0123456789ab,bench-carol-0123456789' ;;
    priority)    serve 2;    bench --tasks 450 --concurrency 90 --mix hello --priority 1-9 ;;
    *) echo "unknown scenario $NAME" >&2; return 2 ;;
  esac
  stop
}

SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(latency throughput sleep-100 sleep-500 sleep-1000 sleep-1000-cold hello-10000 mixed fairness priority)
for scenario in "${SCENARIOS[@]}"; do
  run "$scenario"
done
