# Installs what Runbox needs from Debian, idempotently. Sourced by ./runbox and scripts/test.
# Each entry: the command that proves the package is there, then the package.

runbox_need_packages() {
  local missing=() pair cmd pkg
  for pair in "$@"; do
    cmd="${pair%%:*}"
    pkg="${pair##*:}"
    if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "$cmd" ]; then
      missing+=("$pkg")
    fi
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  echo "runbox: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "runbox: need root to install ${missing[*]} (apt-get install ${missing[*]})" >&2
    return 1
  fi
  # An apt index from the image may be stale or absent; refresh it once before installing.
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# What `runbox serve` uses: the embedded Redis child, the OCI runtimes, tini as PID 1 of each run,
# and the language toolchains the sandbox offers when present.
RUNBOX_RUNTIME_PACKAGES=(
  redis-server:redis-server
  crun:crun
  runc:runc
  /usr/bin/tini:tini
  /usr/bin/python3:python3
  gcc:gcc
  g++:g++
  /usr/bin/node:nodejs
  /usr/bin/javac:openjdk-17-jdk-headless
)
