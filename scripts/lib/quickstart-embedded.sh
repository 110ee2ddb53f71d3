#!/usr/bin/env bash
# scripts/quickstart.sh --embedded: the story on the embedded test cluster (testkube) with the
# real binaries: deploy from a private registry, a pod gets the sidecar, imagePullSecrets and
# a copy of the registry secret, credentials rotate into the copy, remove deletes every copy.
# Loopback only. Set SPARROW_BIN_DIR to use already-built binaries.
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=${SPARROW_BIN_DIR:-}
if [ -z "$bin" ]; then
  echo "building sparrowctl, sparrow-controller and testkube (debug)..."
  cargo build -q --bins -p sparrowctl -p sparrow-controller -p testkube
  bin=$PWD/target/debug
fi
if ! command -v kubectl >/dev/null; then
  echo "installing kubectl (Debian package kubernetes-client)..."
  DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq kubernetes-client >/dev/null
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export HOME="$work" KUBECONFIG="$work/kubeconfig"
export PATH="$bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }
fail() { echo "quickstart: FAILED: $*" >&2; echo "--- controller log:" >&2; tail -20 "$work/controller.log" >&2 || true; exit 1; }
# Waits up to $1 seconds for the command after it to succeed.
await() {
  local limit=$1; shift
  for _ in $(seq $((limit * 20))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
  return 1
}
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

registry=127.0.0.1:5000/team/mesh
tag=$(sparrowctl version | sed -n 's/^sparrowctl //p')
port=$(free_port)

step "Start the embedded test cluster; the webhook Service routes to 127.0.0.1:$port"
testkube serve --kubeconfig-out "$KUBECONFIG" \
  --service-endpoint "sparrow-mesh/sparrow-controller=127.0.0.1:$port" > "$work/testkube.log" 2>&1 &
pids+=($!)
await 10 grep -q listening "$work/testkube.log" || fail "testkube did not start"
cat "$work/testkube.log"

step "Deploy from the private registry $registry (password on stdin, never on the command line)"
# --skip-registry-check: no registry runs in this demo (tests check against a real one).
printf 'first-password\n' | show sparrowctl deploy --registry-server "$registry" \
  --registry-username robot --registry-password-stdin --wait=false --skip-registry-check

step "Start sparrow-controller: it makes its CA and serving certificate and fills the webhook's caBundle in"
POD_NAME=sparrow-controller-quickstart sparrow-controller --addr "127.0.0.1:$port" \
  --mesh-namespace sparrow-mesh \
  --sidecar-image "$registry/sparrow-proxy:$tag" --init-image "$registry/sparrow-init:$tag" \
  --log-format plain > "$work/controller.log" 2>&1 &
pids+=($!)
ready() { python3 - "$port" <<'PY'
import ssl, sys, urllib.request
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
sys.exit(0 if urllib.request.urlopen(f"https://127.0.0.1:{sys.argv[1]}/readyz", context=ctx, timeout=1).status == 200 else 1)
PY
}
await 20 ready || fail "the controller did not become ready"
echo "controller ready on https://127.0.0.1:$port"

step "Mesh the namespace shop and create a pod in it"
show kubectl create namespace shop
show kubectl label namespace shop injector.sparrow-mesh.io/auto-inject=enabled
cat > "$work/web.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app: web
spec:
  containers:
  - name: web
    image: 127.0.0.1:5000/team/shop/web:1.0
YAML
show kubectl -n shop apply -f "$work/web.yaml"

step "The pod has the sidecar and imagePullSecrets"
containers=$(kubectl -n shop get pod web -o 'jsonpath={.spec.initContainers[*].name} {.spec.containers[*].name}')
pull=$(kubectl -n shop get pod web -o 'jsonpath={.spec.imagePullSecrets[*].name}')
echo "containers: $containers"
echo "imagePullSecrets: $pull"
[[ $containers == *sparrow-init*sparrow-proxy* ]] || fail "no sidecar in the pod"
[[ $pull == *sparrow-registry-key* ]] || fail "no imagePullSecrets"

step "The registry secret: the source, and the copy made before the pod was admitted"
show kubectl get secrets -l usage=sparrow-registry-key -A
[ "$(kubectl get secrets -l usage=sparrow-registry-key -A --no-headers | wc -l)" -eq 2 ] || fail "expected the source and one copy"

step "Rotate the credentials; the controller refreshes the copy"
printf 'second-password\n' | show sparrowctl registry update --registry-username robot2 \
  --registry-password-stdin --skip-registry-check
copy_user() {
  kubectl -n shop get secret sparrow-registry-key -o 'jsonpath={.data.\.dockerconfigjson}' | base64 -d |
    python3 -c 'import json, sys; print(next(iter(json.load(sys.stdin)["auths"].values()))["username"])'
}
await 20 test "$(copy_user)" = robot2 || fail "the copy in shop was not refreshed"
echo "the copy in shop now authenticates as: $(copy_user)"

step "Remove the mesh: webhook, control plane, every labelled secret, the namespace"
show sparrowctl remove --yes
step "Nothing labelled usage=sparrow-registry-key is left"
show kubectl get secrets -l usage=sparrow-registry-key -A
[ -z "$(kubectl get secrets -l usage=sparrow-registry-key -A --no-headers 2>/dev/null)" ] || fail "secrets left behind"

printf '\nquickstart: every step passed\n'
