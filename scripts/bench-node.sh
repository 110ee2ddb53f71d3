#!/usr/bin/env bash
# Figures of the real local node: warm `up` to node Ready, `down`, RSS of the whole running node
# (every process in its namespace and its pods' cgroups, plus the host forwarder) and the disk its
# caches use. With --cold, first a cold build of every upstream binary (an empty Go build cache and
# bin directory; the module cache is kept, so downloads are not counted).
#
#   scripts/bench-node.sh [--cold]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || PATH=/usr/local/go/bin:$PATH

cold=false
case "${1:-}" in
  --cold) cold=true ;;
  "") ;;
  *) echo "usage: scripts/bench-node.sh [--cold]" >&2; exit 2 ;;
esac

# Its own instance, so a node someone is using is never touched.
export SPARROW_CLUSTER_NETNS=sparrow-bench
export SPARROW_NODE_API_PORT=16543 SPARROW_NODE_REGISTRY_PORT=15543
node=scripts/local-cluster.sh
trap '$node down >/dev/null 2>&1 || true' EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

if $cold; then
  cache=$(mktemp -d /var/tmp/bench-node.XXXXXX)
  start=$(now)
  GOCACHE=$cache/go-build SPARROW_NODE_CACHE=$cache/node $node build
  echo "bench-node: cold build of all upstream binaries: $(elapsed "$start" "$(now)") s on $(nproc) cores"
  rm -rf "$cache"
fi

$node build >/dev/null
$node down >/dev/null
start=$(now)
$node up >/dev/null
echo "bench-node: warm up to node Ready: $(elapsed "$start" "$(now)") s"

# A little work on it: three pods of the sandbox image, so the RSS includes running pods.
eval "$($node env)"
kubectl create deployment bench --image=sparrow-mesh.local/pause:1 --replicas=3 >/dev/null
kubectl wait --for=condition=Available deployment/bench --timeout=300s >/dev/null
state=$SPARROW_NODE_STATE
pids=$(ip netns pids "$SPARROW_CLUSTER_NETNS"; cat "$state/run/forwarder.pid"
  find /sys/fs/cgroup/memory/"$SPARROW_CLUSTER_NETNS" -name cgroup.procs -exec cat {} + 2>/dev/null)
rss_kb=$(for p in $(echo "$pids" | sort -u); do awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null; done |
  awk '{ s += $1 } END { print s }')
echo "bench-node: RSS of the whole node (3 pods running): $((rss_kb / 1024)) MiB in $(echo "$pids" | sort -u | wc -l) processes"
for c in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet containerd kube-proxy registry; do
  p=$(cat "$state/run/$c.pid")
  echo "  $c: $(($(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status") / 1024)) MiB"
done

start=$(now)
$node down >/dev/null
echo "bench-node: down: $(elapsed "$start" "$(now)") s"

cache=${SPARROW_NODE_CACHE:-/var/cache/sparrow-mesh/node}
echo "bench-node: disk: node binaries $(du -sh "$cache" | cut -f1) ($cache)," \
  "Go modules $(du -sh "$(go env GOMODCACHE)" | cut -f1), Go build cache $(du -sh "$(go env GOCACHE)" | cut -f1)"
