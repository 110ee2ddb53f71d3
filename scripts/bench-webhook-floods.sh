#!/usr/bin/env bash
# Issue 27's floods against the controller on the real node, each run from the node's network
# namespace (never the host's) by crates/sparrow-controller/examples/flood.rs, while pods are
# created through the API server in a meshed namespace (failurePolicy Fail: a webhook call that
# fails refuses the pod):
#   connections  CONN_COUNT (300) kept-alive TLS connections posting reviews back to back
#   idle         IDLE_COUNT (400) clients opening TLS connections and leaving them idle
#   forged       FORGED_COUNT (2000) reviews in FORGED_SECONDS (6.5) for pods that will never
#                exist, in a meshed namespace holding a Secret sparrow-registry-key not ours;
#                then the controller's API writes over WATCH_SECONDS (300) are counted
# Prints, per flood: pod creations refused (target 0), and at the end the controller's restarts
# (target 0) and the API writes the forged burst caused (target under 100).
#
# Every flood is bounded in connections and time (FLOOD_SECONDS, default 60). Runs on the node
# instance SPARROW_CLUSTER_NETNS (default sparrow-floods, ports 18643/18644), brought up if
# needed and left running. Needs built images (scripts/build-images.sh) and sparrowctl
# (cargo build -p sparrowctl); SPARROW_BIN_DIR and SPARROW_IMAGES override where.
#
# Usage: scripts/bench-webhook-floods.sh [connections|idle|forged]...   (default: all three)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export SPARROW_CLUSTER_NETNS=${SPARROW_CLUSTER_NETNS:-sparrow-floods}
export SPARROW_NODE_API_PORT=${SPARROW_NODE_API_PORT:-18643}
export SPARROW_NODE_REGISTRY_PORT=${SPARROW_NODE_REGISTRY_PORT:-18644}
BIN=${SPARROW_BIN_DIR:-$ROOT/target/debug}
IMAGES=${SPARROW_IMAGES:-$ROOT/target/images}
FLOOD_SECONDS=${FLOOD_SECONDS:-60}
CONN_COUNT=${CONN_COUNT:-300}
IDLE_COUNT=${IDLE_COUNT:-400}
FORGED_COUNT=${FORGED_COUNT:-2000}
FORGED_SECONDS=${FORGED_SECONDS:-6.5}
WATCH_SECONDS=${WATCH_SECONDS:-300}
PODS=${PODS:-15}
[ -x "$BIN/sparrowctl" ] || { echo "bench-floods: no sparrowctl in $BIN (cargo build -p sparrowctl)" >&2; exit 1; }
[ -f "$IMAGES/index.json" ] || { echo "bench-floods: no images in $IMAGES (scripts/build-images.sh)" >&2; exit 1; }
floods=("$@")
[ ${#floods[@]} -gt 0 ] || floods=(connections idle forged)

echo "== building the flood client" >&2
cargo build -q -p sparrow-controller --example flood
FLOOD=$ROOT/target/debug/examples/flood
PATH=$BIN:$PATH
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
scripts/local-cluster.sh up >/dev/null
eval "$(scripts/local-cluster.sh env)"
MESH=$SPARROW_REGISTRY/floods/mesh
results=()
result() { results+=("$(printf '%-34s %s' "$1" "$2")"); echo "$1: $2" >&2; }
password() { head -c 18 /dev/urandom | base64 | tr -d '/+=\n'; }

if kubectl get namespace sparrow-mesh >/dev/null 2>&1; then sparrowctl remove --yes >/dev/null; fi
while kubectl get namespace sparrow-mesh >/dev/null 2>&1; do sleep 0.5; done
pw=$(password)
printf '%s\n' "$pw" | scripts/local-cluster.sh registry-user robot
printf '%s\n' "$pw" | sparrowctl images push --from "$IMAGES" --registry-server "$MESH" \
  --registry-username robot --registry-password-stdin --registry-ca "$SPARROW_REGISTRY_CA" >/dev/null
printf '%s\n' "$pw" | sparrowctl deploy --registry-server "$MESH" --registry-username robot \
  --registry-password-stdin --registry-ca "$SPARROW_REGISTRY_CA" --images-from "$IMAGES" >/dev/null
kubectl -n sparrow-mesh rollout status deployment/sparrow-controller --timeout=300s >/dev/null

for ns in flood-pods flood-foreign; do
  kubectl delete namespace "$ns" --ignore-not-found --wait=true >/dev/null
  kubectl create namespace "$ns" >/dev/null
  kubectl label namespace "$ns" injector.sparrow-mesh.io/auto-inject=enabled >/dev/null
done
kubectl -n flood-foreign create secret generic sparrow-registry-key --from-literal=token=theirs >/dev/null
ADDR=$(kubectl -n sparrow-mesh get service sparrow-controller -o jsonpath='{.spec.clusterIP}'):443
POD=$(kubectl -n sparrow-mesh get pods -l app.kubernetes.io/name=sparrow-controller -o jsonpath='{.items[0].metadata.name}')
POD_IP=$(kubectl -n sparrow-mesh get pod "$POD" -o jsonpath='{.status.podIP}')
restarts() { kubectl -n sparrow-mesh get pod "$POD" -o jsonpath='{.status.containerStatuses[0].restartCount}'; }
# The controller's own counters, read over its plain-HTTP health port from the node's netns.
metric() {
  scripts/local-cluster.sh exec -- curl -s --max-time 5 "http://$POD_IP:9990/metrics" |
    awk -v name="$1" '$1 ~ "^"name"(\\{|$)" { sum += $2 } END { printf "%d\n", sum }'
}
restarts_before=$(restarts)

# Creates pod NAME (pinned to no node) through the API server in the meshed namespace.
create_pod() {
  kubectl -n flood-pods create -f - >/dev/null 2>"$ROOT/target/flood-$1.err" <<EOF
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"$1"},
 "spec":{"nodeSelector":{"sparrow-mesh.io/test":"no-such-node"},
         "containers":[{"name":"app","image":"registry.invalid/app:1"}]}}
EOF
}

# PODS pod creations through the API server, one every FLOOD_SECONDS / (PODS + 1) seconds
# during the flood; prints how many were refused.
create_pods() {
  local label=$1 refused=0 spacing
  spacing=$(python3 -c "print($FLOOD_SECONDS / ($PODS + 1))")
  for n in $(seq 1 "$PODS"); do
    sleep "$spacing"
    if ! create_pod "$label-$n"; then
      refused=$((refused + 1))
      echo "refused: $(head -c 400 "$ROOT/target/flood-$label-$n.err")" >&2
    fi
  done
  echo "$refused"
}

for flood in "${floods[@]}"; do
  case $flood in
    connections | idle)
      count=$CONN_COUNT
      [ "$flood" = idle ] && count=$IDLE_COUNT
      # As in a running cluster, the API server already holds a connection to the webhook
      # when the flood starts (a flood from the node shares its address: see the README).
      create_pod "$flood-before" || { echo "bench-floods: a pod was refused before any flood" >&2; exit 1; }
      echo "== $flood flood: $count from the node's netns for ${FLOOD_SECONDS}s" >&2
      scripts/local-cluster.sh exec -- "$FLOOD" "$flood" "$ADDR" --count "$count" \
        --seconds "$FLOOD_SECONDS" > "$ROOT/target/flood-$flood.out" &
      PIDS+=($!)
      refused=$(create_pods "$flood")
      wait "${PIDS[-1]}"
      result "$flood: pods refused" "$refused of $PODS"
      result "$flood: client" "$(cat "$ROOT/target/flood-$flood.out")"
      ;;
    forged)
      echo "== forged reviews: $FORGED_COUNT in ${FORGED_SECONDS}s for flood-foreign" >&2
      before=$(( $(metric sparrow_event_writes_total) + $(metric sparrow_admission_api_calls_total) ))
      scripts/local-cluster.sh exec -- "$FLOOD" forged "$ADDR" --count "$FORGED_COUNT" \
        --seconds "$FORGED_SECONDS" --namespace flood-foreign > "$ROOT/target/flood-forged.out"
      result "forged: client" "$(cat "$ROOT/target/flood-forged.out")"
      echo "== counting the controller's API writes for ${WATCH_SECONDS}s" >&2
      sleep "$WATCH_SECONDS"
      after=$(( $(metric sparrow_event_writes_total) + $(metric sparrow_admission_api_calls_total) ))
      result "forged: API writes in ${WATCH_SECONDS}s" "$((after - before)) (Events: $(metric sparrow_event_writes_total), dropped: $(metric sparrow_events_dropped_total))"
      result "forged: Events in flood-foreign" "$(kubectl -n flood-foreign get events.events.k8s.io -o name | wc -l)"
      ;;
    *) echo "bench-floods: unknown flood $flood (connections, idle, forged)" >&2; exit 2 ;;
  esac
done
result "controller restarts" "$(( $(restarts) - restarts_before ))"
printf '%s\n' "${results[@]}"
