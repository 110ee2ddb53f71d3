#!/usr/bin/env bash
# The real-node story's numbers, printed as one table (what the README records):
#   deploy       sparrowctl deploy until the controller is Available, its image pulled from the
#                private registry (pull policy Always, so the kubelet pulls through sparrow-registry-key)
#   admission    pod create latency at the API server, 200 pods in a namespace the webhook skips,
#                200 in a meshed one and 200 pods shaped as the webhook injects them, created where
#                it is skipped (taking turns, one kept-alive TLS connection, pods pinned to no node):
#                p50 and p99, the p50 the webhook adds, and its split between the webhook call and
#                the API server's cost of the bigger pod
#   copies       BENCH_COPIES (default 1000) meshed namespaces with a pod each: time from
#                `registry update` until every copy carries the new user
#   quickstart   wall time of a warm scripts/quickstart.sh (built binaries and images reused)
#   client-auth  admission as above twice in one run: deployed without, then with
#                --webhook-client-ca (the API server presents its client certificate): what
#                client-certificate authentication adds to the webhook's share
#
# Usage: scripts/bench-story.sh [deploy|admission|copies|quickstart|client-auth]...   (default: the first four)
# Runs on the node instance SPARROW_CLUSTER_NETNS (default sparrow-bench, ports 18543/18544),
# brought up if needed and left running. Needs built images (scripts/build-images.sh) and
# sparrowctl (cargo build -p sparrowctl); SPARROW_BIN_DIR and SPARROW_IMAGES override where.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export SPARROW_CLUSTER_NETNS=${SPARROW_CLUSTER_NETNS:-sparrow-bench}
export SPARROW_NODE_API_PORT=${SPARROW_NODE_API_PORT:-18543}
export SPARROW_NODE_REGISTRY_PORT=${SPARROW_NODE_REGISTRY_PORT:-18544}
BIN=${SPARROW_BIN_DIR:-$ROOT/target/debug}
IMAGES=${SPARROW_IMAGES:-$ROOT/target/images}
COPIES=${BENCH_COPIES:-1000}
[ -x "$BIN/sparrowctl" ] || { echo "bench-story: no sparrowctl in $BIN (cargo build -p sparrowctl)" >&2; exit 1; }
[ -f "$IMAGES/index.json" ] || { echo "bench-story: no images in $IMAGES (scripts/build-images.sh)" >&2; exit 1; }
PATH=$BIN:$PATH
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
scripts/local-cluster.sh up >/dev/null
eval "$(scripts/local-cluster.sh env)"
MESH=$SPARROW_REGISTRY/bench/mesh
results=()
result() { results+=("$(printf '%-12s %s' "$1" "$2")"); echo "$1: $2" >&2; }

password() { head -c 18 /dev/urandom | base64 | tr -d '/+=\n'; }
no_mesh() {
  if kubectl get namespace sparrow-mesh >/dev/null 2>&1; then sparrowctl remove --yes >/dev/null; fi
  while kubectl get namespace sparrow-mesh >/dev/null 2>&1; do sleep 0.5; done
}
deploy_mesh() {
  local pw
  pw=$(password)
  printf '%s\n' "$pw" | scripts/local-cluster.sh registry-user robot
  printf '%s\n' "$pw" | sparrowctl images push --from "$IMAGES" --registry-server "$MESH" \
    --registry-username robot --registry-password-stdin --registry-ca "$SPARROW_REGISTRY_CA" >/dev/null
  printf '%s\n' "$pw" | sparrowctl deploy --registry-server "$MESH" --registry-username robot \
    --registry-password-stdin --registry-ca "$SPARROW_REGISTRY_CA" --images-from "$IMAGES" \
    --pull-policy Always "$@" >/dev/null
}
now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f} s')" "$1" "$2"; }

bench_deploy() {
  no_mesh
  # The image must be pulled: drop it from containerd first.
  # shellcheck disable=SC2016 # expanded by the inner shell, in the node's environment
  scripts/local-cluster.sh exec -- sh -c 'ctr --address "$SPARROW_NODE_STATE/containerd/containerd.sock" -n k8s.io images ls -q |
    grep sparrow-controller | xargs -r ctr --address "$SPARROW_NODE_STATE/containerd/containerd.sock" -n k8s.io images rm' >/dev/null
  local t0 t1
  t0=$(now)
  deploy_mesh
  t1=$(now)
  local pod
  pod=$(kubectl -n sparrow-mesh get pods -l app.kubernetes.io/name=sparrow-controller -o 'jsonpath={.items[0].metadata.name}')
  kubectl -n sparrow-mesh get events --field-selector "involvedObject.name=$pod,reason=Pulled" -o name | grep -q . ||
    { echo "bench-story: no Pulled event for $pod" >&2; exit 1; }
  result deploy "$(elapsed "$t0" "$t1") from deploy to the controller Available (image pulled: $(kubectl -n sparrow-mesh get events --field-selector "involvedObject.name=$pod,reason=Pulled" -o 'jsonpath={.items[0].message}' | grep -o 'in [0-9.]*m\?s' | head -1))"
}

bench_admission() {
  kubectl get namespace sparrow-mesh >/dev/null 2>&1 || deploy_mesh
  kubectl -n sparrow-mesh wait --for=condition=Available deployment/sparrow-controller --timeout=300s >/dev/null
  local ns
  for ns in bench-plain bench-meshed; do
    kubectl delete namespace "$ns" --ignore-not-found --wait --timeout=300s >/dev/null
    kubectl create namespace "$ns" >/dev/null
    until kubectl -n "$ns" get serviceaccount default >/dev/null 2>&1; do sleep 0.5; done
  done
  kubectl label namespace bench-plain injector.sparrow-mesh.io/auto-inject=disabled >/dev/null
  kubectl label namespace bench-meshed injector.sparrow-mesh.io/auto-inject=enabled >/dev/null
  local line
  line=$(python3 "$ROOT/scripts/lib/bench-admission.py" "$KUBECONFIG" 200 bench-plain bench-meshed)
  result admission "$line"
  kubectl delete namespace bench-plain bench-meshed --wait=false >/dev/null
}

bench_client-auth() {
  no_mesh
  deploy_mesh
  bench_admission
  results[-1]="admission, anyone answered      ${results[-1]#admission}"
  deploy_mesh --webhook-client-ca "$SPARROW_WEBHOOK_CLIENT_CA"
  kubectl -n sparrow-mesh rollout status deployment/sparrow-controller --timeout=300s >/dev/null
  bench_admission
  results[-1]="admission, API server only      ${results[-1]#admission}"
}

bench_copies() {
  kubectl get namespace sparrow-mesh >/dev/null 2>&1 || deploy_mesh
  kubectl -n sparrow-mesh wait --for=condition=Available deployment/sparrow-controller --timeout=300s >/dev/null
  echo "creating $COPIES meshed namespaces with a pod each..." >&2
  python3 "$ROOT/scripts/lib/bench-copies.py" setup "$KUBECONFIG" "$COPIES"
  local pw t0 t1
  pw=$(password)
  printf '%s\n' "$pw" | scripts/local-cluster.sh registry-user robot-rotated
  t0=$(now)
  printf '%s\n' "$pw" | sparrowctl registry update --registry-username robot-rotated \
    --registry-password-stdin --registry-ca "$SPARROW_REGISTRY_CA" >/dev/null
  python3 "$ROOT/scripts/lib/bench-copies.py" await "$KUBECONFIG" "$COPIES" robot-rotated
  t1=$(now)
  result copies "$(elapsed "$t0" "$t1") from registry update to $COPIES copies current"
  python3 "$ROOT/scripts/lib/bench-copies.py" teardown "$KUBECONFIG" "$COPIES"
}

bench_quickstart() {
  no_mesh
  local t0 t1
  t0=$(now)
  SPARROW_BIN_DIR=$BIN SPARROW_IMAGES=$IMAGES scripts/quickstart.sh >"$WORK/quickstart.log" 2>&1 ||
    { tail -20 "$WORK/quickstart.log" >&2; exit 1; }
  t1=$(now)
  result quickstart "$(elapsed "$t0" "$t1") wall time, warm ($(grep -c '✓' "$WORK/quickstart.log") checks passed)"
}

what=("$@")
[ ${#what[@]} -gt 0 ] || what=(deploy admission copies quickstart)
for w in "${what[@]}"; do
  case $w in
    deploy | admission | copies | quickstart | client-auth) "bench_$w" ;;
    *) echo "usage: scripts/bench-story.sh [deploy|admission|copies|quickstart|client-auth]..." >&2; exit 2 ;;
  esac
done
no_mesh
printf '\n%s\n' "real-node story, $(nproc) cores, Kubernetes $(kubectl version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')"
printf '%s\n' "${results[@]}"
