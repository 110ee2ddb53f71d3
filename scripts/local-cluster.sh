#!/usr/bin/env bash
# The real local node: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd + runc,
# the kubelet, kube-proxy and a private registry, every one inside a network namespace this script
# creates. The host reaches the API server and the registry on 127.0.0.1 only, through a forwarder
# that opens its upstream connections inside the namespace.
#
#   scripts/local-cluster.sh up                   build if needed, start, wait for the node to be Ready
#   scripts/local-cluster.sh env                  shell exports for a running node
#   scripts/local-cluster.sh exec -- CMD...       run CMD in the node's namespace with those variables
#   scripts/local-cluster.sh registry-user NAME   add or change a registry user (password on stdin)
#   scripts/local-cluster.sh registry-user --delete NAME
#   scripts/local-cluster.sh restart COMPONENT    stop and start etcd, kube-apiserver, kube-controller-manager or kube-scheduler
#   scripts/local-cluster.sh down                 stop everything, unmount, remove the namespace and state
#   scripts/local-cluster.sh build                only build the binaries into the cache
#   scripts/local-cluster.sh install-moto         install moto (the local AWS API) into a venv in the cache
#   scripts/local-cluster.sh ecr-provider-config PORT   print a kubelet config running ecr-credential-provider against moto on PORT
#
# Opt-in: SPARROW_NODE_CREDENTIAL_PROVIDER_CONFIG=FILE (a CredentialProviderConfig) at `up` starts the
# kubelet with --image-credential-provider-config; SPARROW_NODE_CREDENTIAL_PROVIDER_BIN_DIR (default:
# the cache's plugins/, with ecr-credential-provider) is its --image-credential-provider-bin-dir.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# The machine's Go toolchain, where the official tarball puts it.
command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || PATH=/usr/local/go/bin:$PATH

# The pinned versions, as go.mod requires them (in a require block or on a require line).
pinned() { sed -n "s|^[[:space:]]*\(require[[:space:]]\+\)\?$1[[:space:]]\+\(v[^[:space:]]*\).*|\2|p" "$2" | head -1; }
K8S_VERSION=$(pinned k8s.io/kubernetes "$ROOT/cluster/go.mod")
ETCD_VERSION=$(pinned go.etcd.io/etcd/server/v3 "$ROOT/cluster/etcd/go.mod")
[ -n "$K8S_VERSION" ] && [ -n "$ETCD_VERSION" ] || { echo "node: no pinned version in cluster/go.mod" >&2; exit 1; }
CACHE=${SPARROW_NODE_CACHE:-/var/cache/sparrow-mesh/node}/$K8S_VERSION
CACHE_BIN=$CACHE/bin
# Kubelet credential-provider plugins (ecr-credential-provider), pinned in cluster/ecr-credential-provider.
CACHE_PLUGINS=$CACHE/plugins
MOTO_VERSION=$(sed -n 's/^moto\[server\]==\([^[:space:]]*\).*/\1/p' "$ROOT/cluster/moto/requirements.txt")
[ -n "$MOTO_VERSION" ] || { echo "node: no moto[server]==VERSION in cluster/moto/requirements.txt" >&2; exit 1; }
MOTO_VENV=${SPARROW_MOTO_CACHE:-/var/cache/sparrow-mesh/moto}/$MOTO_VERSION
# One instance per namespace name: its state directory and ports follow it, so `env`, `exec` and
# `down` with an exported environment always act on the node that environment describes.
NETNS=${SPARROW_CLUSTER_NETNS:-sparrow-node}
[[ $NETNS =~ ^[a-z0-9][a-z0-9-]{0,30}$ ]] || { echo "node: SPARROW_CLUSTER_NETNS=$NETNS is not a short lowercase name" >&2; exit 2; }
STATE=${SPARROW_NODE_STATE:-/var/lib/sparrow-mesh/$NETNS}
NETNS_PATH=/var/run/netns/$NETNS
API_PORT=${SPARROW_NODE_API_PORT:-16443}
REGISTRY_PORT=${SPARROW_NODE_REGISTRY_PORT:-15443}
# A running node keeps the ports it was started with.
if [ -f "$STATE/ports" ]; then
  read -r API_PORT REGISTRY_PORT <"$STATE/ports"
fi
NODE_NAME=sparrow-node
NODE_IP=10.200.0.2
SERVICE_CIDR=10.96.0.0/16
SERVICE_IP=10.96.0.1
POD_CIDR=10.244.0.0/24
# Per instance (one namespace name, one state directory): the pods' cgroup subtree and CNI network.
CGROUP_ROOT=$NETNS
PAUSE_IMAGE=sparrow-mesh.local/pause:1
# An ECR registry name (moto's default account and region) that containerd pulls from the node's own
# registry (certs.d hosts.toml): pulls of it never leave the machine.
ECR_REGISTRY=123456789012.dkr.ecr.us-east-1.amazonaws.com
PKI=$STATE/pki
KUBE=$STATE/kube
RUN=$STATE/run
LOGS=$STATE/log
CONTAINERD_SOCK=$STATE/containerd/containerd.sock

# shellcheck source=lib/node-build.sh
source "$ROOT/scripts/lib/node-build.sh"
# shellcheck source=lib/node-pki.sh
source "$ROOT/scripts/lib/node-pki.sh"
# shellcheck source=lib/node-config.sh
source "$ROOT/scripts/lib/node-config.sh"
# shellcheck source=lib/node-run.sh
source "$ROOT/scripts/lib/node-run.sh"
# shellcheck source=lib/node-up.sh
source "$ROOT/scripts/lib/node-up.sh"
# shellcheck source=lib/node-aws.sh
source "$ROOT/scripts/lib/node-aws.sh"

usage() {
  sed -n '7,16s/^#   //p' "$0" >&2
  exit 2
}

require_running() {
  if [ ! -f "$STATE/env" ] || ! node_healthy; then
    die "not running (start it: scripts/local-cluster.sh up)"
  fi
}

cmd_env() {
  require_running
  cat "$STATE/env"
}

cmd_exec() {
  [ "${1:-}" = "--" ] && shift
  [ $# -gt 0 ] || usage
  require_running
  # shellcheck source=/dev/null
  source "$STATE/env"
  exec nsenter --net="$NETNS_PATH" -- "$@"
}

# registry-user NAME (password on stdin) or registry-user --delete NAME. The registry notices a changed
# htpasswd file on the next request; the file is edited on a copy and renamed into place, under a lock,
# so a concurrent request never reads half a file.
cmd_registry_user() {
  local delete=false
  if [ "${1:-}" = "--delete" ]; then
    delete=true
    shift
  fi
  [ $# -eq 1 ] || usage
  [[ $1 =~ ^[A-Za-z0-9._-]+$ ]] || die "registry-user: $1 is not a valid user name (letters, digits, . _ -)"
  if [ ! -f "$STATE/env" ] || ! alive registry; then
    die "not running (start it: scripts/local-cluster.sh up)"
  fi
  local file=$STATE/registry/htpasswd
  exec 9>"$STATE/registry/lock"
  flock 9
  cp "$file" "$file.new"
  if $delete; then
    grep -q "^$1:" "$file" || die "registry-user: user $1 does not exist"
    htpasswd -D "$file.new" "$1" 2>/dev/null || die "registry-user: htpasswd -D failed"
  else
    local password=
    IFS= read -r password || true
    [ -n "$password" ] || die "registry-user: no password on stdin (echo PASSWORD | ... registry-user $1)"
    printf '%s\n' "$password" | htpasswd -B -i "$file.new" "$1" 2>/dev/null ||
      die "registry-user: htpasswd failed"
  fi
  mv "$file.new" "$file"
}

cmd_restart() {
  [ $# -eq 1 ] || usage
  case $1 in
    etcd | kube-apiserver | kube-controller-manager | kube-scheduler) ;;
    *) echo "node: restart takes etcd, kube-apiserver, kube-controller-manager or kube-scheduler, not $1" >&2; exit 2 ;;
  esac
  require_running
  local start=$SECONDS pid
  pid=$(cat "$RUN/$1.pid" 2>/dev/null) || die "restart: no PID file for $1 in $RUN"
  stop_pids "$pid"
  "start_${1//-/_}"
  echo "node: $1 restarted in $((SECONDS - start)) s"
}

cmd_down() {
  local start=$SECONDS
  node_down
  echo "node: down in $((SECONDS - start)) s"
}

main() {
  [ $# -gt 0 ] || usage
  local verb=$1
  shift
  case "$verb" in
    up) [ $# -eq 0 ] || usage; [ "$(id -u)" -eq 0 ] || die "up must run as root"; node_up ;;
    env) [ $# -eq 0 ] || usage; cmd_env ;;
    exec) cmd_exec "$@" ;;
    registry-user) cmd_registry_user "$@" ;;
    restart) cmd_restart "$@" ;;
    down) [ $# -eq 0 ] || usage; cmd_down ;;
    build) [ $# -eq 0 ] || usage; build_locked ;;
    install-moto) [ $# -eq 0 ] || usage; install_moto ;;
    ecr-provider-config) [ $# -eq 1 ] || usage; ecr_provider_config "$1" ;;
    -h | --help | help) usage ;;
    *) echo "node: unknown command $verb" >&2; usage ;;
  esac
}

main "$@"
