# The privileges `podman run` gives the Runbox image: the least found to work on a cgroup v1 hybrid
# host (docs/hosts.md, "The container image", says what each is for and what fails without it).
# Sourced by scripts/image-runbox and scripts/image; each option is one word, so
# `scripts/image privileges` can leave out one at a time.
RUNBOX_IMAGE_CAPS=(SYS_ADMIN SETUID SETGID CHOWN DAC_OVERRIDE NET_ADMIN KILL SETPCAP MKNOD)
RUNBOX_IMAGE_OPTIONS=(
  # The service creates its runs' cgroups: podman mounts /sys/fs/cgroup read-only otherwise.
  --volume=/sys/fs/cgroup:/sys/fs/cgroup:rw
  # The cgroup paths in /proc/self/cgroup must be those of the bound tree, which is the host's
  # (podman's default on cgroup v1; stated so that a containers.conf cannot change it).
  --cgroupns=host
  # runc 1.1 adds /dev/net/tun (c 10:200) to every container's device allowlist, and a device cgroup
  # may allow only what its parent does: the runs' cgroups nest under this container's.
  "--device-cgroup-rule=c 10:200 rwm"
)
RUNBOX_IMAGE_PRIVILEGES=(--cap-drop=all)
for cap in "${RUNBOX_IMAGE_CAPS[@]}"; do RUNBOX_IMAGE_PRIVILEGES+=("--cap-add=$cap"); done
RUNBOX_IMAGE_PRIVILEGES+=("${RUNBOX_IMAGE_OPTIONS[@]}")

# Not a privilege but a limit: podman raises the container's RLIMIT_NOFILE and RLIMIT_NPROC to its
# defaults (1048576 and 4194304), which fails ("crun: setrlimit `RLIMIT_NPROC`: Operation not
# permitted") where the caller has no CAP_SYS_RESOURCE to go above its own hard limits. The container
# keeps the caller's limits instead (its processes' limit capped at 32768, which this host's podman
# could set).
hard_files="$(ulimit -Hn)"
hard_procs="$(ulimit -Hu)"
[ "$hard_procs" = unlimited ] || [ "$hard_procs" -gt 32768 ] && hard_procs=32768
RUNBOX_IMAGE_LIMITS=("--ulimit=nofile=$hard_files:$hard_files" "--ulimit=nproc=$hard_procs:$hard_procs")
unset hard_files hard_procs
