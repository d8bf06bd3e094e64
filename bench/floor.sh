#!/usr/bin/env bash
# The floor under `bench/scenarios.sh sleep-1000` on this machine: what N concurrent `sleep 1` tasks cost
# with no Runbox at all. Two measurements, N at once each (default 1,000):
#   programs  `bash main.sh` (main.sh holds `sleep 1`, as the bench's sleep tasks do), started from one
#             shell loop: no container, no service;
#   crun      one `crun run` per task of one bundle made by `crun spec`: the same namespaces as a Runbox
#             container (pid, network, ipc, uts, mount), tini as init, /usr bound read-only from the host,
#             and none of Runbox's cgroups, limits or seccomp filter (crun --cgroup-manager=disabled), all
#             started at once.
# Prints the wall time and the whole machine's CPU per task (/proc/stat). Run as root after scripts/host-setup.
# Usage: bench/floor.sh [N]
set -euo pipefail
N="${1:-1000}"
HZ="$(getconf CLK_TCK)"
WORK="$(mktemp -d /dev/shm/runbox-floor-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

machine_cpu() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }

report() { # label, start time (ns), start CPU, failed runs
  local end cpu
  end="$(date +%s%N)"
  cpu="$(machine_cpu)"
  awk -v label="$1" -v n="$N" -v ns=$((end - $2)) -v ticks=$((cpu - $3)) -v hz="$HZ" -v failed="$4" 'BEGIN {
    printf "%-9s %d at once: wall %6.2f s, machine CPU %5.1f ms/task, %d failed\n", label, n, ns / 1e9, ticks * 1000 / hz / n, failed }'
}

wait_all() { # sets $failed to how many of the background jobs failed
  failed=0
  for pid in $(jobs -p); do
    wait "$pid" || failed=$((failed + 1))
  done
}

echo "sleep 1" >"$WORK/main.sh"

start="$(date +%s%N)"; cpu="$(machine_cpu)"
for _ in $(seq "$N"); do
  bash "$WORK/main.sh" &
done
wait_all
report programs "$start" "$cpu" "$failed"

# A rootfs as the sandbox makes one: empty folders, /usr and the loader's cache bound read-only from the host.
BUNDLE="$WORK/bundle"
mkdir -p "$BUNDLE/rootfs"/{usr,etc,proc,dev,sys,tmp,work} "$WORK/state"
touch "$BUNDLE/rootfs/etc/ld.so.cache"
for link in bin lib lib64 sbin; do ln -s "usr/$link" "$BUNDLE/rootfs/$link"; done
(cd "$BUNDLE" && crun spec)
python3 - "$BUNDLE/config.json" "$WORK" <<'PY'
import json, sys
path, work = sys.argv[1], sys.argv[2]
config = json.load(open(path))
config["process"]["terminal"] = False
config["process"]["cwd"] = "/work"
config["process"]["args"] = ["/usr/bin/tini-static", "--", "/usr/bin/bash", "main.sh"]
# No cgroup of any kind: crun runs with its cgroup manager disabled.
config["mounts"] = [m for m in config["mounts"] if m["destination"] != "/sys/fs/cgroup"] + [
    {"destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro"]},
    {"destination": "/etc/ld.so.cache", "type": "bind", "source": "/etc/ld.so.cache", "options": ["bind", "ro"]},
    {"destination": "/work", "type": "bind", "source": work, "options": ["bind", "ro"]},
]
config["linux"].pop("resources", None)
json.dump(config, open(path, "w"))
PY
crun --cgroup-manager=disabled --root "$WORK/state" run --bundle "$BUNDLE" "floor-$$-check" </dev/null \
  || { echo "floor: a test container failed; see crun's message above" >&2; exit 1; }

start="$(date +%s%N)"; cpu="$(machine_cpu)"
for i in $(seq "$N"); do
  crun --cgroup-manager=disabled --root "$WORK/state" run --bundle "$BUNDLE" "floor-$$-$i" </dev/null &
done
wait_all
report crun "$start" "$cpu" "$failed"
