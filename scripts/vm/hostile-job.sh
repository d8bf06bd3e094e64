#!/bin/bash
# The hostile suite (tests/Runbox.Hostile.Tests, published self-contained) against the installed
# package on the cgroup v2 VM. Runs inside the VM as its job (scripts/vm/hostile puts it, the .deb and
# the published suite in /host). Ends with the suite's own summary and exit code.
set -euo pipefail

# As in the smoke: emulated compilers need more than the default compile limit. A server under emulation
# takes minutes to start (RUNBOX_TEST_START_SECONDS).
# The suite's servers are started by the suite with their own environment, so it is given there too.
mkdir -p /etc/systemd/system/runbox.service.d
printf '[Service]\nEnvironment=Runbox__Sandbox__Compile__WallTime=00:03:00 Runbox__Sandbox__Compile__CpuTime=00:03:00\n' \
  >/etc/systemd/system/runbox.service.d/emulation.conf
export Runbox__Sandbox__Compile__WallTime=00:03:00 Runbox__Sandbox__Compile__CpuTime=00:03:00

start=$(date +%s)
DEBIAN_FRONTEND=noninteractive dpkg -i /host/runbox_*_amd64.deb >/dev/null
echo "hostile: package installed in $(( $(date +%s) - start )) s"
# The packaged service (started by the install) once, for its start-up time on this host.
start=$(date +%s)
until curl -fsS --max-time 10 -o /dev/null http://127.0.0.1:8080/health/ready 2>/dev/null; do
  (( $(date +%s) - start < 600 )) || break
  sleep 2
done
echo "hostile: runbox.service ready after $(( $(date +%s) - start )) s"
# The suite starts its own servers; the packaged one would only take their CPU.
systemctl disable --now runbox.service 2>/dev/null

# Each server the suite starts gets a delegated cgroup of its own, as the unit gives the service:
# a transient scope for the program's own process, which keeps its pid and its pipes to the suite.
cat >/usr/local/bin/runbox-delegated <<'WRAP'
#!/bin/sh
exec systemd-run --scope --quiet --collect -p Delegate=yes -- /usr/bin/runbox "$@"
WRAP
chmod 0755 /usr/local/bin/runbox-delegated

cp -a /host/hostile /opt/hostile
cd /opt/hostile
start=$(date +%s)
set +e
RUNBOX_TEST_START_SECONDS=900 RUNBOX_TEST_PROGRAM=/usr/local/bin/runbox-delegated ./Runbox.Hostile.Tests -noColor -failSkips -result-xml /host/hostile-results.xml 2>&1
rc=$?
set -e
echo "hostile: suite exit $rc after $(( $(date +%s) - start )) s"
exit "$rc"
