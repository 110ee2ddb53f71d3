#!/usr/bin/env bash
# Issue 22's numbers on the real node, the controller keeping its own webhook certificates:
#   drift     the caBundle emptied DRIFT_ROUNDS (5) times by a JSON patch and as many times by a
#             server-side apply of another field manager: the time until the controller wrote it
#             back, and the pods refused meanwhile (pods are created back to back in a meshed
#             namespace during each window: failurePolicy Fail refuses a pod whose webhook call
#             cannot verify the controller)
#   rotation  deploy --webhook-cert-validity 2m (the floor: renewed at about 80 s; the CA lives
#             8m and is rolled over at about 5m20s), two replicas, the Lease holder's pod deleted
#             at ROTATION_SECONDS/2: a pod created every 0.5 s for ROTATION_SECONDS (420), and
#             every 5 s the certificate each replica serves checked (openssl, from the node's
#             network namespace) against the caBundle of that moment
# Prints: repair times (median, max), pods refused per phase (target 0 in rotation), renewals
# and CA rollovers seen, bundle checks failed (target 0).
#
# Runs on the node instance SPARROW_CLUSTER_NETNS (default sparrow-certs, ports 18653/18654),
# brought up if needed and left running. Needs built images (scripts/build-images.sh) and
# sparrowctl (cargo build -p sparrowctl); SPARROW_BIN_DIR and SPARROW_IMAGES override where.
#
# Usage: scripts/bench-webhook-certs.sh [drift|rotation]...   (default: both)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export SPARROW_CLUSTER_NETNS=${SPARROW_CLUSTER_NETNS:-sparrow-certs}
export SPARROW_NODE_API_PORT=${SPARROW_NODE_API_PORT:-18653}
export SPARROW_NODE_REGISTRY_PORT=${SPARROW_NODE_REGISTRY_PORT:-18654}
BIN=${SPARROW_BIN_DIR:-$ROOT/target/debug}
IMAGES=${SPARROW_IMAGES:-$ROOT/target/images}
DRIFT_ROUNDS=${DRIFT_ROUNDS:-5}
ROTATION_SECONDS=${ROTATION_SECONDS:-420}
[ -x "$BIN/sparrowctl" ] || { echo "bench-certs: no sparrowctl in $BIN (cargo build -p sparrowctl)" >&2; exit 1; }
[ -f "$IMAGES/index.json" ] || { echo "bench-certs: no images in $IMAGES (scripts/build-images.sh)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "bench-certs: needs openssl (apt-get install -y openssl)" >&2; exit 1; }
phases=("$@")
[ ${#phases[@]} -gt 0 ] || phases=(drift rotation)

PATH=$BIN:$PATH
PIDS=()
WORK=$(mktemp -d)
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
scripts/local-cluster.sh up >/dev/null
eval "$(scripts/local-cluster.sh env)"
MESH=$SPARROW_REGISTRY/certs/mesh
results=()
result() { results+=("$(printf '%-44s %s' "$1" "$2")"); echo "$1: $2" >&2; }
password() { head -c 18 /dev/urandom | base64 | tr -d '/+=\n'; }
now() { date +%s.%N; }

deploy() {
  if kubectl get namespace sparrow-mesh >/dev/null 2>&1; then sparrowctl remove --yes >/dev/null; fi
  while kubectl get namespace sparrow-mesh >/dev/null 2>&1; do sleep 0.5; done
  local pw
  pw=$(password)
  printf '%s\n' "$pw" | scripts/local-cluster.sh registry-user robot
  printf '%s\n' "$pw" | sparrowctl images push --from "$IMAGES" --registry-server "$MESH" \
    --registry-username robot --registry-password-stdin --registry-ca "$SPARROW_REGISTRY_CA" >/dev/null
  printf '%s\n' "$pw" | sparrowctl deploy --registry-server "$MESH" --registry-username robot \
    --registry-password-stdin --registry-ca "$SPARROW_REGISTRY_CA" --images-from "$IMAGES" "$@" >/dev/null
  kubectl delete namespace certs-pods --ignore-not-found --wait=true >/dev/null
  kubectl create namespace certs-pods >/dev/null
  kubectl label namespace certs-pods injector.sparrow-mesh.io/auto-inject=enabled >/dev/null
}

# Creates pod $1 pinned to no node; exit 0 when admitted with the sidecar.
pod() {
  local out
  out=$(kubectl -n certs-pods create -o jsonpath='{.metadata.annotations.injector\.sparrow-mesh\.io/status}' -f - 2>"$WORK/pod.err" <<EOF
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"$1"},"spec":{"nodeSelector":{"sparrow-mesh.io/test":"no-such-node"},"containers":[{"name":"app","image":"registry.invalid/app:1"}]}}
EOF
  ) || { echo "refused $1: $(head -c 300 "$WORK/pod.err")" >&2; return 1; }
  [ "$out" = injected ] || { echo "not injected $1" >&2; return 1; }
}

bundle() {
  kubectl get mutatingwebhookconfiguration sparrow-sidecar-injector \
    -o jsonpath='{range .webhooks[*]}{.clientConfig.caBundle}{"\n"}{end}'
}

median_max() { sort -n | awk '{ v[NR] = $1 } END { printf "median %.0f ms, max %.0f ms (%d rounds)\n", v[int((NR + 1) / 2)], v[NR], NR }'; }

drift() {
  deploy
  local wanted kind i t0 ms refused total name apply
  wanted=$(bundle)
  for kind in json-patch server-side-apply; do
    : > "$WORK/repair-$kind"
    refused=0 total=0
    for i in $(seq "$DRIFT_ROUNDS"); do
      # Pods back to back through the window (and a little before and after).
      ( n=0; while [ ! -f "$WORK/stop" ]; do
          if pod "d-$kind-$i-$n" 2>>"$WORK/drift.log"; then echo ok; else echo refused; fi; n=$((n + 1))
        done > "$WORK/pods-$kind-$i" ) &
      PIDS+=($!)
      sleep 1
      t0=$(now)
      if [ "$kind" = json-patch ]; then
        kubectl patch mutatingwebhookconfiguration sparrow-sidecar-injector --type=json \
          -p '[{"op":"remove","path":"/webhooks/0/clientConfig/caBundle"}]' >/dev/null
      else
        name=$(kubectl get mutatingwebhookconfiguration sparrow-sidecar-injector -o jsonpath='{.webhooks[0].name}')
        apply="{\"apiVersion\":\"admissionregistration.k8s.io/v1\",\"kind\":\"MutatingWebhookConfiguration\",\"metadata\":{\"name\":\"sparrow-sidecar-injector\"},\"webhooks\":[{\"name\":\"$name\",\"clientConfig\":{\"caBundle\":\"\"}}]}"
        kubectl apply --server-side --force-conflicts --field-manager=gitops -f - <<<"$apply" >/dev/null
      fi
      while [ "$(bundle)" != "$wanted" ]; do sleep 0.02; done
      ms=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
      echo "$ms" >> "$WORK/repair-$kind"
      sleep 1
      touch "$WORK/stop"; wait "${PIDS[-1]}" 2>/dev/null || true; rm -f "$WORK/stop"
      refused=$((refused + $(grep -c refused "$WORK/pods-$kind-$i" || true)))
      total=$((total + $(wc -l < "$WORK/pods-$kind-$i")))
    done
    result "caBundle emptied ($kind): repaired" "$(median_max < "$WORK/repair-$kind")"
    result "  pods refused around those windows" "$refused of $total"
  done
}

# Whether the certificate every replica serves verifies against the caBundle now.
check_replicas() {
  # Into a file first: head closing the pipe early would fail kubectl (pipefail).
  bundle > "$WORK/bundles"
  head -n 1 "$WORK/bundles" | base64 -d > "$WORK/bundle.pem"
  local ip ok=0 bad=0
  for ip in $(kubectl -n sparrow-mesh get pods -l app.kubernetes.io/name=sparrow-controller \
      --field-selector=status.phase=Running -o jsonpath='{.items[*].status.podIP}'); do
    if scripts/local-cluster.sh exec -- openssl s_client -connect "$ip:8443" \
        -servername sparrow-controller.sparrow-mesh.svc -CAfile "$WORK/bundle.pem" \
        -verify_return_error </dev/null >/dev/null 2>&1; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
  done
  echo "$ok $bad"
}

rotation() {
  deploy --webhook-cert-validity 2m
  kubectl -n sparrow-mesh scale deployment sparrow-controller --replicas=2 >/dev/null
  kubectl -n sparrow-mesh rollout status deployment/sparrow-controller --timeout=300s >/dev/null
  local start n=0 refused=0 checks=0 failed_checks=0 killed= leaf ca leaves=0 cas=0 last_check=0 ok bad
  leaf=$(kubectl -n sparrow-mesh get secret sparrow-controller-tls -o jsonpath='{.data.tls\.crt}')
  ca=$(kubectl -n sparrow-mesh get secret sparrow-controller-ca -o jsonpath='{.data.tls\.crt}')
  start=$(date +%s)
  while [ $(($(date +%s) - start)) -lt "$ROTATION_SECONDS" ]; do
    pod "r-$n" || refused=$((refused + 1))
    n=$((n + 1))
    if [ -z "$killed" ] && [ $(($(date +%s) - start)) -ge $((ROTATION_SECONDS / 2)) ]; then
      killed=$(kubectl -n sparrow-mesh get lease sparrow-controller -o jsonpath='{.spec.holderIdentity}')
      kubectl -n sparrow-mesh delete pod "$killed" --wait=false >/dev/null
      echo "deleted the Lease holder $killed after $(($(date +%s) - start)) s" >&2
    fi
    if [ $(($(date +%s) - last_check)) -ge 5 ]; then
      last_check=$(date +%s)
      read -r ok bad < <(check_replicas)
      checks=$((checks + ok + bad)); failed_checks=$((failed_checks + bad))
      local l c
      l=$(kubectl -n sparrow-mesh get secret sparrow-controller-tls -o jsonpath='{.data.tls\.crt}')
      c=$(kubectl -n sparrow-mesh get secret sparrow-controller-ca -o jsonpath='{.data.tls\.crt}')
      [ "$l" != "$leaf" ] && { leaves=$((leaves + 1)); leaf=$l; echo "serving certificate renewed at $(($(date +%s) - start)) s" >&2; }
      [ "$c" != "$ca" ] && { cas=$((cas + 1)); ca=$c; echo "CA rolled over at $(($(date +%s) - start)) s" >&2; }
    fi
    sleep 0.5
  done
  result "rotation: pods created" "$n over ${ROTATION_SECONDS}s, $refused refused (target 0)"
  result "rotation: serving certificates renewed" "$leaves"
  result "rotation: CA rollovers" "$cas"
  result "rotation: replica checks against caBundle" "$checks, $failed_checks failed (target 0)"
  result "rotation: Lease holder deleted" "${killed:-none}"
}

for phase in "${phases[@]}"; do
  case "$phase" in
    drift) drift ;;
    rotation) rotation ;;
    *) echo "bench-certs: unknown phase $phase (drift, rotation)" >&2; exit 2 ;;
  esac
done
echo
printf '%s\n' "${results[@]}"
