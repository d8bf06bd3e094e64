#!/bin/bash
# The smoke of the Debian package on a cgroup v2 host under systemd. Runs inside the test VM as its
# job (scripts/vm/test puts it and the .deb in /host): installs the package, starts runbox.service,
# drives the API with curl and jq, stops the service and looks for what it left behind.
# Prints one line per check (ok / FAIL with the detail) and "N passed, N failed"; exits 1 on a failure.
set -u

API=http://127.0.0.1:8080
UNIT_CGROUP=/sys/fs/cgroup/system.slice/runbox.service
SANDBOX_UID_START=$((0x70000000))
passed=0
failed=0

ok() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
note() { echo "     $*"; }
# check NAME DETAIL CONDITION...: the condition is a command; DETAIL is what a failure prints.
check() {
  local name=$1 detail=$2
  shift 2
  if "$@"; then ok "$name"; else fail "$name" "$detail"; fi
}
elapsed() { echo $(( $(date +%s) - $1 )); }

finish() {
  echo "$passed passed, $failed failed"
  [[ $failed -eq 0 ]]
  exit $?
}

# Submits a task and waits for it to settle (?wait=true holds a request for at most a minute, and
# under emulation a compile can take longer, so a task still running is polled). Sets TASK (the
# view) and V (the verdict); every task gets one attempt, so a verdict is never hidden by a retry.
submit() {
  local language=$1 source=$2 limits=${3:-'{}'} body id status deadline
  body=$(jq -nc --arg l "$language" --arg s "$source" --argjson lim "$limits" \
    '{language: $l, source: $s, limits: $lim, retry: {max_attempts: 1}}')
  TASK=$(curl -sS --max-time 90 -X POST "$API/v1/tasks?wait=true" -H 'Content-Type: application/json' -d "$body")
  id=$(jq -r '.id // empty' <<<"$TASK" 2>/dev/null)
  if [[ -z $id ]]; then
    V="(no task: $(head -c 300 <<<"$TASK"))"
    return
  fi
  deadline=$(( $(date +%s) + 600 ))
  status=$(jq -r .status <<<"$TASK")
  while [[ $status == pending || $status == running ]] && (( $(date +%s) < deadline )); do
    sleep 2
    TASK=$(curl -sS --max-time 30 "$API/v1/tasks/$id")
    status=$(jq -r .status <<<"$TASK")
  done
  V=$(jq -r '.result.verdict // ("status " + .status)' <<<"$TASK")
}
field() { jq -r "$1" <<<"$TASK"; }
summary() { jq -c '{status, verdict: .result.verdict, exit_code: .result.exit_code, wall_time_ms: .result.wall_time_ms, cpu_time_ms: .result.cpu_time_ms, memory_peak_kb: .result.memory_peak_kb, stdout: (.result.stdout // "" | .[0:200]), stderr: (.result.stderr // "" | .[0:300]), error: .result.error, compile: (.result.compile.output // null | if . then .[0:300] else . end)}' <<<"$TASK"; }

echo "smoke: $(uname -r), $(systemctl --version | head -1), $(date -u +%FT%TZ)"

# The host: the unified hierarchy alone, as Debian 12's systemd mounts it by default.
check "host-cgroup-v2-only" "$(findmnt -rn -t cgroup,cgroup2 -o TARGET,FSTYPE | tr '\n' ' ')" \
  bash -c '[[ -f /sys/fs/cgroup/cgroup.controllers && ! -e /sys/fs/cgroup/memory ]] && ! findmnt -rn -t cgroup >/dev/null'

# Software emulation makes compilers tens of times slower than on hardware: g++ and javac need more
# than the default 20 s compile limit (the attempt's deadline follows it: Runbox:Lifecycle:CompileAllowance).
# A drop-in, so the package's own files stay as shipped; it is in place before the install, which
# starts the service.
mkdir -p /etc/systemd/system/runbox.service.d
cat >/etc/systemd/system/runbox.service.d/emulation.conf <<'CONF'
[Service]
Environment=Runbox__Sandbox__Compile__WallTime=00:03:00 Runbox__Sandbox__Compile__CpuTime=00:03:00
CONF

start=$(date +%s)
deb=$(ls /host/runbox_*_amd64.deb 2>/dev/null | head -1)
if [[ -z $deb ]]; then
  fail "package-install" "no /host/runbox_*_amd64.deb"
  finish
fi
# The image has the dependencies already, so dpkg installs the package alone and refuses it if a
# dependency it declares is missing (apt would spend minutes of emulated time reading its lists).
if install_log=$(DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" 2>&1); then
  ok "package-install ($(elapsed "$start") s, $(basename "$deb"))"
else
  fail "package-install" "$(tail -5 <<<"$install_log")"
  finish
fi
check "package-layout" "$(ls -ld /usr/bin/runbox /var/lib/runbox /etc/runbox/runbox.env 2>&1 | tr '\n' ';')" \
  bash -c '[[ $(readlink -f /usr/bin/runbox) == /usr/lib/runbox/runbox && -f /lib/systemd/system/runbox.service
             && $(stat -c %a /var/lib/runbox) == 700 && $(stat -c %a /etc/runbox/runbox.env) == 600 ]] &&
           dpkg-query -W -f "\${Conffiles}" runbox | grep -q /etc/runbox/runbox.env'

# The package starts the service on install (postinst), as Debian's services do; start is then a no-op.
start=$(date +%s)
systemctl start runbox
ready=""
while (( $(elapsed "$start") < 600 )); do
  if ready=$(curl -fsS --max-time 10 "$API/health/ready" 2>/dev/null); then break; fi
  ready=""
  systemctl -q is-active runbox || systemctl -q is-activating runbox || break
  sleep 2
done
if [[ -n $ready ]]; then
  ok "service-ready ($(elapsed "$start") s)"
  note "ready: $(head -c 400 <<<"$ready")"
else
  fail "service-ready" "$(systemctl show -p ActiveState,SubState,Result,ExecMainStatus runbox | tr '\n' ' ')"
  journalctl -u runbox --no-pager -o cat | tail -40 | sed 's/^/     | /'
  finish
fi
main_pid=$(systemctl show -p MainPID --value runbox)
own_cgroup=$(cut -d: -f3 "/proc/$main_pid/cgroup")
note "service main pid $main_pid in cgroup $own_cgroup; $UNIT_CGROUP/cgroup.subtree_control: $(cat "$UNIT_CGROUP/cgroup.subtree_control" 2>/dev/null)"

languages=$(curl -fsS --max-time 30 "$API/v1/languages" | jq -r '.[].id' | sort | tr '\n' ' ')
check "languages-listed" "listed: $languages" test "$languages" == "bash c cpp java javascript python "

declare -A HELLO=(
  [python]='print("hello from python")'
  [c]=$'#include <stdio.h>\nint main(void) { puts("hello from c"); return 0; }'
  [cpp]=$'#include <iostream>\nint main() { std::cout << "hello from cpp" << std::endl; }'
  [javascript]='console.log("hello from javascript")'
  [bash]='echo "hello from bash"'
  [java]=$'public class Main { public static void main(String[] a) { System.out.println("hello from java"); } }'
)
for language in $languages; do
  start=$(date +%s)
  # Emulation makes a JVM or a compiler start tens of times slower than on hardware.
  submit "$language" "${HELLO[$language]:-echo}" '{"wall_time_ms": 60000, "cpu_time_ms": 60000}'
  if [[ $V == ok && $(field .result.stdout) == "hello from $language" ]]; then
    ok "hello-$language ($(elapsed "$start") s)"
  else
    fail "hello-$language" "$(summary)"
  fi
done

# A program that allocates past a small memory limit: the OOM kill is the verdict, and the peak the
# cgroup recorded (memory.peak on v2) is near the limit.
submit python 'b = []
while True:
    b.append(b"x" * (1 << 20))' '{"memory_mb": 32, "wall_time_ms": 30000, "cpu_time_ms": 30000}'
peak=$(field '.result.memory_peak_kb // 0')
if [[ $V == memory_limit ]] && (( peak > 16 * 1024 && peak <= 40 * 1024 )); then
  ok "memory-limit (memory_peak_kb $peak of a 32 MiB limit)"
else
  fail "memory-limit" "$(summary)"
fi

submit python 'while True: pass' '{"cpu_time_ms": 1000, "wall_time_ms": 10000}'
cpu=$(field '.result.cpu_time_ms // 0')
if [[ $V == time_limit && $(field .status) == timeout ]] && (( cpu >= 900 )); then
  ok "time-limit (cpu_time_ms $cpu of 1000, wall_time_ms $(field .result.wall_time_ms))"
else
  fail "time-limit" "$(summary)"
fi

submit python 'import sys
while True: sys.stdout.write("y" * 4096)' '{"output_bytes": 4096, "wall_time_ms": 30000, "cpu_time_ms": 30000}'
if [[ $V == output_limit && $(field .result.stdout_truncated) == true ]] && (( $(field '.result.stdout | length') <= 4096 )); then
  ok "output-limit (stdout $(field '.result.stdout | length') bytes, truncated)"
else
  fail "output-limit" "$(summary)"
fi

# Hostile cases (a few of tests/Runbox.Hostile.Tests, on this kernel).
submit python 'import errno, socket
try:
    socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    print("vsock created")
except OSError as e:
    print("vsock", errno.errorcode[e.errno])'
check "hostile-vsock-refused" "$(summary)" test "$V/$(field .result.stdout)" == $'ok/vsock EAFNOSUPPORT'

# The guest itself reaches qemu's gateway; the run's empty network namespace has no route at all.
gateway_route=$(ip route get 10.0.2.2 2>&1 | head -1)
submit python 'import errno, socket
s = socket.socket()
s.settimeout(5)
try:
    s.connect(("10.0.2.2", 80))
    print("connected")
except OSError as e:
    print("connect", errno.errorcode.get(e.errno, e.errno))'
check "hostile-no-network (guest: $gateway_route)" "$(summary)" test "$V/$(field .result.stdout)" == $'ok/connect ENETUNREACH'

submit bash 'rm -rf out && ln -s /etc out && echo linked'
check "hostile-artifacts-out-linked-to-etc" "$(summary) artifacts $(jq -c .result.artifacts <<<"$TASK")" \
  bash -c '[[ $1 == ok && $2 == 0 && $3 == *"out is not a folder"* ]]' _ "$V" "$(field '.result.artifacts | length')" "$(field '.result.error // ""')"

start=$(date +%s)
submit bash $':(){ :|:& };: \nsleep 2\necho survived' '{"processes": 32, "wall_time_ms": 15000, "cpu_time_ms": 15000}'
case $V in
  ok) check "hostile-fork-bomb ($(elapsed "$start") s, verdict ok)" "$(summary)" true ;;
  time_limit | runtime_error)
    check "hostile-fork-bomb ($(elapsed "$start") s, verdict $V)" "$(summary)" \
      bash -c '[[ $1 == *"reached its process limit (32)"* ]]' _ "$(field '.result.error // ""')" ;;
  *) fail "hostile-fork-bomb" "$(summary)" ;;
esac

submit bash 'cat /proc/self/mountinfo; cat /proc/self/cgroup; readlink /proc/self/cwd'
out=$(field .result.stdout)
check "hostile-mountinfo-hides-host-paths" "$(summary)" \
  bash -c '[[ $1 == ok && -n $2 && $2 != *"/var/lib/runbox"* && $2 != *"/sandbox/"* ]]' _ "$V" "$out"
note "the run's /proc/self/cgroup: $(grep '^0::' <<<"$out")"

# Where the runs' cgroups went: systemd delegated the unit's subtree, so they belong beneath it.
# Anything at the hierarchy's root that systemd did not make, and any run cgroup outside the unit.
strays_of_root() {
  {
    find /sys/fs/cgroup -mindepth 1 -maxdepth 1 -type d ! -name '*.slice' ! -name '*.scope' ! -name '*.mount'
    find /sys/fs/cgroup -mindepth 1 -maxdepth 6 -type d -name 'rbx-*' | grep -v "^$UNIT_CGROUP/"
  } 2>/dev/null | sort -u | tr '\n' ' '
}
outside=$(strays_of_root)
check "cgroups-only-under-the-unit" "cgroups outside $UNIT_CGROUP: $outside" test -z "$outside"
tree=$(cd "$UNIT_CGROUP" 2>/dev/null && find . -mindepth 1 -type d | sort | tr '\n' ' ')
note "the unit's cgroup tree with no task running: ${tree:-(no child cgroup)}; subtree_control $(cat "$UNIT_CGROUP/cgroup.subtree_control" 2>/dev/null)"
# Every run is over: what is left under the unit is the service's own leaf and the (empty) parent of
# the runs, as /health/ready names it; systemd removes the whole subtree after a stop, so this is the
# check that sees leftovers.
runs_parent=$(jq -r '.details.sandbox.cgroups // ""' <<<"$ready" | sed -n 's|.*runs under \([^ ,]*\).*|\1|p')
runs_parent=${runs_parent#/system.slice/runbox.service/}
leftover=$(cd "$UNIT_CGROUP" 2>/dev/null && find . -mindepth 1 -type d ! -path ./service ! -path "./$runs_parent" | sort | tr '\n' ' ')
check "no-run-cgroup-left-after-the-runs" "under the unit: $leftover" test -z "$leftover"

start=$(date +%s)
systemctl stop runbox
result=$(systemctl show -p Result --value runbox)
check "service-stop ($(elapsed "$start") s)" "result $result, state $(systemctl show -p ActiveState --value runbox)" \
  test "$result/$(systemctl show -p ActiveState --value runbox)" == success/inactive
left=$( [[ -d $UNIT_CGROUP ]] && find "$UNIT_CGROUP" -mindepth 1 -type d | tr '\n' ' ')
leftroot=$(strays_of_root)
check "no-cgroup-left" "under the unit: ${left:-none}; anywhere: ${leftroot:-none}" test -z "$left$leftroot"
strays=$(ps -eo uid=,pid=,comm= | awk -v s="$SANDBOX_UID_START" '$1 >= s' | tr '\n' ';')
check "no-sandbox-process-left" "$strays" test -z "$strays"

if [[ $failed -gt 0 ]]; then
  echo "     runbox.service journal (last 60 lines):"
  journalctl -u runbox --no-pager -o short-monotonic | tail -60 | sed 's/^/     | /'
fi
finish
