#!/usr/bin/env bash
# Compares checkouts on the 1,000-task `sleep 1` burst, alternating between them round by round: this
# VM's speed drifts by 10-20% over minutes, so only runs side by side compare. Each round, for each
# checkout in turn: a fresh `./runbox serve` (1,000 slots), WARM bursts not counted, then one measured
# burst. Prints the wall time, the server's own CPU per task and the whole machine's CPU per task.
#
# Usage: bench/ab.sh ROUNDS DIR [DIR...]      e.g. bench/ab.sh 4 /tmp/before /tmp/after
# (each DIR a checkout, e.g. `git worktree add /tmp/before HEAD~1`; WARM=2 by default, TASKS=1000)
set -euo pipefail
ROUNDS="${1:?usage: bench/ab.sh ROUNDS DIR [DIR...]}"
shift
[ $# -gt 0 ] || { echo "usage: bench/ab.sh ROUNDS DIR [DIR...]" >&2; exit 2; }
WARM="${WARM:-2}"
TASKS="${TASKS:-1000}"
PORT="${RUNBOX_BENCH_PORT:-18502}"
HZ="$(getconf CLK_TCK)"

process_cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
machine_cpu() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }

burst() { # checkout, then the load generator's output
  "$1/runbox" bench --server "http://127.0.0.1:$PORT" --tasks "$TASKS" --concurrency "$TASKS" --mix sleep 2>/dev/null
}

for round in $(seq "$ROUNDS"); do
  for dir in "$@"; do
    data="$(mktemp -d /tmp/runbox-ab-XXXXXX)"
    "$dir/runbox" serve --port "$PORT" --data "$data" --slots "$TASKS" >"$data.log" 2>&1 &
    serve=$!
    for _ in $(seq 300); do
      curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && break
      sleep 0.2
    done
    server="$(pgrep -f "runbox.dll serve --port $PORT" | head -n1)"
    for _ in $(seq "$WARM"); do burst "$dir" >/dev/null || true; done
    s0="$(process_cpu "$server")"; m0="$(machine_cpu)"
    out="$(burst "$dir" || true)"
    s1="$(process_cpu "$server")"; m1="$(machine_cpu)"
    wall="$(awk '/wall time/ { print $3 }' <<<"$out")"
    expected="$(awk '/as expected/ { print $3 }' <<<"$out")"
    awk -v name="$(basename "$(cd "$dir" && pwd)")" -v round="$round" -v wall="$wall" -v expected="$expected" \
      -v server=$((s1 - s0)) -v machine=$((m1 - m0)) -v hz="$HZ" -v tasks="$TASKS" 'BEGIN {
        printf "%-24s round %s  wall %6s s  as expected %s  server %5.2f ms/task  machine %5.2f ms/task\n",
          name, round, wall, expected, server * 1000 / hz / tasks, machine * 1000 / hz / tasks }'
    kill -TERM "$serve"
    wait "$serve" 2>/dev/null || true
    rm -rf "$data" "$data.log"
  done
done
