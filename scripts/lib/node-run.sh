# shellcheck shell=bash
# Starting, awaiting and stopping the node's processes. Sourced by local-cluster.sh.

die() {
  echo "node: $*" >&2
  exit 1
}

# in_netns CMD...: runs CMD in the node's network namespace, in the host's mount namespace (the kubelet's
# volume mounts must be visible to containerd and runc, so no per-process mount namespace as `ip netns exec`).
in_netns() {
  nsenter --net="$NETNS_PATH" -- "$@"
}

# start NAME CMD...: starts a component in the namespace, detached, with its log and PID file.
start() {
  local name=$1
  shift
  mkdir -p "$RUN" "$LOGS"
  setsid nsenter --net="$NETNS_PATH" -- "$@" </dev/null >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
}

# start_host NAME CMD...: the same for a process that lives in the host namespace (the forwarder).
start_host() {
  local name=$1
  shift
  mkdir -p "$RUN" "$LOGS"
  setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
}

alive() {
  local pid
  pid=$(cat "$RUN/$1.pid" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# await NAME SECONDS CHECK...: polls CHECK until it succeeds; a component that exits or stays unready
# is a one-line error naming it and its log.
await() {
  local name=$1 limit=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    alive "$name" || die "$name exited during start (log: $LOGS/$name.log)"
    [ "$SECONDS" -lt "$deadline" ] || die "$name not ready after $limit s (log: $LOGS/$name.log)"
    sleep 0.2
  done
}

# The admin's view from inside the namespace, for readiness checks that must not depend on the forwarder.
api_get() {
  in_netns curl -sf --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:$API_PORT$1"
}

port_in_use() {
  [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
}

# stop_pids PID...: TERM, then KILL what is left after a second.
stop_pids() {
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  local i
  for i in $(seq 1 10); do
    local left=()
    local p
    for p in "$@"; do kill -0 "$p" 2>/dev/null && left+=("$p"); done
    [ ${#left[@]} -gt 0 ] || return 0
    sleep 0.1
  done
  kill -KILL "$@" 2>/dev/null || true
}

# Every process the pods run lives in the node's cgroup subtree: kill them by the PIDs listed there.
kill_cgroup_tree() {
  local ctl procs=()
  for ctl in /sys/fs/cgroup/*/"$CGROUP_ROOT"; do
    [ -d "$ctl" ] || continue
    mapfile -t -O ${#procs[@]} procs < <(find "$ctl" -name cgroup.procs -exec cat {} + 2>/dev/null)
  done
  [ ${#procs[@]} -eq 0 ] || kill -KILL "${procs[@]}" 2>/dev/null || true
  for ctl in /sys/fs/cgroup/*/"$CGROUP_ROOT"; do
    [ -d "$ctl" ] || continue
    find "$ctl" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

# Unmounts everything below DIR, deepest first (overlay rootfs, pod volumes, pod network namespaces).
unmount_below() {
  local dir=$1 m
  awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}
