# shellcheck shell=bash
# The steps of scripts/quickstart.sh, one function each, in the order the story runs them.
# Sourced after story.sh; each step prints what it runs and checks what a user relies on.

# show_in FILE CMD...: prints and runs CMD with FILE (a password) on its standard input.
show_in() {
  local file=$1
  shift
  printf '$ %s < %s\n' "$*" "$(basename "$file")"
  "$@" <"$file"
}

story_node_up() {
  step "The node: scripts/local-cluster.sh up (built once into /var/cache/sparrow-mesh/node, then reused)"
  scripts/local-cluster.sh up || fail "the node did not come up (see the line above)"
  eval "$(scripts/local-cluster.sh env)"
  show kubectl get nodes
  mkdir -p "$WORK/certs"
  cp "$SPARROW_REGISTRY_CA" "$WORK/certs/ca.crt"
  MESH_REGISTRY=$SPARROW_REGISTRY/team/mesh
  APP_REGISTRY=$SPARROW_REGISTRY/team/apps
  check "node Ready; private registry at $SPARROW_REGISTRY (TLS with the node's CA, htpasswd users)"
}

story_build() {
  step "Build sparrowctl, the mesh's images and the application's images"
  local bin=${SPARROW_BIN_DIR:-}
  if [ -z "$bin" ]; then
    nice cargo build -q -p sparrowctl --bin sparrowctl || fail "building sparrowctl failed"
    bin=$ROOT/target/debug
  fi
  [ -x "$bin/sparrowctl" ] || fail "no sparrowctl in $bin"
  PATH=$bin:$PATH
  IMAGES=${SPARROW_IMAGES:-}
  if [ -z "$IMAGES" ]; then
    show scripts/build-images.sh --profile "${SPARROW_IMAGES_PROFILE:-release}" ||
      fail "building the mesh's images failed"
    IMAGES=$ROOT/target/images
  fi
  show sparrowctl images list --registry-server "$MESH_REGISTRY" --from "$IMAGES" ||
    fail "no mesh images in $IMAGES"
  (cd examples/shop && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$WORK/shop" .) ||
    fail "building examples/shop failed"
  local ociimage role
  ociimage=$(dirname "$SPARROW_NODE_KUBECTL")/ociimage
  for role in server client; do
    "$ociimage" -out "$WORK/images/shop-$role" -tag 1 -entrypoint "/shop-$role" "$WORK/shop=/shop-$role" ||
      fail "packing the shop-$role image failed"
  done
  check "sparrowctl $(sparrowctl version | sed -n 's/^sparrowctl //p'); mesh images in $IMAGES; shop-server and shop-client images from examples/shop"
}

# A run that stopped halfway left a mesh or the application behind: start from a clean node.
story_clean_leftovers() {
  if kubectl get namespace sparrow-mesh >/dev/null 2>&1; then
    echo "(a mesh from an earlier run is installed: sparrowctl remove --yes)"
    sparrowctl remove --yes >/dev/null || fail "removing the earlier run's mesh failed"
    await 180 "namespace sparrow-mesh to go" bash -c '! kubectl get namespace sparrow-mesh'
  fi
  if kubectl get namespace "$STORY_NS" >/dev/null 2>&1; then
    echo "(namespace $STORY_NS from an earlier run: deleting it)"
    kubectl delete namespace "$STORY_NS" --wait --timeout=180s >/dev/null
  fi
}

story_push_mesh_images() {
  step "Push the mesh's images to the private registry as the robot user (password on stdin)"
  PW1=$(new_password_file robot)
  registry_user robot "$PW1"
  echo "registry user robot set: scripts/local-cluster.sh registry-user robot < robot.password"
  show_in "$PW1" sparrowctl images push --from "$IMAGES" --registry-server "$MESH_REGISTRY" \
    --registry-username robot --registry-password-stdin --registry-ca "$SPARROW_REGISTRY_CA" ||
    fail "images push failed"
  check "the three images are in $MESH_REGISTRY"
}

story_registry_check() {
  step "Prove the credentials and the three images: sparrowctl registry check"
  show_in "$PW1" sparrowctl registry check --registry-server "$MESH_REGISTRY" \
    --registry-username robot --registry-password-stdin --registry-ca "$SPARROW_REGISTRY_CA" \
    --images-from "$IMAGES" || fail "registry check failed"
  check "robot can pull all three images, pinned by digest"
}

story_deploy() {
  step "Deploy the mesh from the private registry"
  LOG_FROM=$(registry_log_lines)
  local t0=$SECONDS
  show_in "$PW1" sparrowctl deploy --registry-server "$MESH_REGISTRY" --registry-username robot \
    --registry-password-stdin --registry-ca "$SPARROW_REGISTRY_CA" --images-from "$IMAGES" \
    --pull-policy Always || fail "deploy failed"
  DEPLOY_SECONDS=$((SECONDS - t0))
  local pod pulled secrets n
  pod=$(kubectl -n sparrow-mesh get pods -l app.kubernetes.io/name=sparrow-controller \
    --field-selector=status.phase=Running -o 'jsonpath={.items[0].metadata.name}')
  show kubectl -n sparrow-mesh get pods -o wide
  pulled=$(pod_events "$pod" sparrow-mesh Pulled)
  printf 'Events of %s (Pulled): %s\n' "$pod" "$pulled"
  [[ $pulled == *"Successfully pulled image \"$MESH_REGISTRY/sparrow-controller"* ]] ||
    fail "no Pulled event for the controller's image in pod $pod"
  secrets=$(kubectl -n sparrow-mesh get pod "$pod" -o 'jsonpath={.spec.imagePullSecrets[*].name}')
  [ "$secrets" = sparrow-registry-key ] || fail "the controller pod's imagePullSecrets are '$secrets'"
  n=$(registry_pulls team/mesh/sparrow-controller "$LOG_FROM")
  [ "$n" -gt 0 ] || fail "the registry logged no authorized pull of sparrow-controller by containerd"
  check "the kubelet pulled sparrow-controller with sparrow-registry-key (registry log: $n authorized manifest request(s) from containerd)"
  kubectl -n sparrow-mesh wait --for=condition=Available deployment/sparrow-controller --timeout=10s >/dev/null ||
    fail "the controller Deployment is not Available"
  check "the controller is Ready, ${DEPLOY_SECONDS} s after deploy started"
  local via
  via=$(kubectl get mutatingwebhookconfiguration sparrow-sidecar-injector \
    -o 'jsonpath={.webhooks[0].clientConfig.service.namespace}/{.webhooks[0].clientConfig.service.name}')
  [ "$via" = sparrow-mesh/sparrow-controller ] || fail "the webhook names '$via', not the controller's Service"
  check "the webhook is reached through the Service $via (proven by the injections below)"
}

app_manifests() {
  cat <<YAML
apiVersion: v1
kind: Service
metadata: {name: shop}
spec:
  selector: {app: shop-server}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop-server}
spec:
  selector: {matchLabels: {app: shop-server}}
  template:
    metadata: {labels: {app: shop-server}}
    spec:
      containers:
      - {name: server, image: "$APP_REGISTRY/shop-server:1", imagePullPolicy: Always, ports: [{containerPort: 8080}]}
YAML
}

client_manifest() {
  cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop-client}
spec:
  selector: {matchLabels: {app: shop-client}}
  template:
    metadata: {labels: {app: shop-client}}
    spec:
      containers:
      - {name: client, image: "$APP_REGISTRY/shop-client:1", imagePullPolicy: Always}
YAML
}

story_application() {
  step "A namespace labelled for injection; a server and a client from images under team/apps"
  local role
  for role in server client; do
    push_app "$WORK/images/shop-$role" 1 "$APP_REGISTRY/shop-$role:1" robot "$PW1" ||
      fail "pushing shop-$role failed"
    echo "pushed $APP_REGISTRY/shop-$role:1 (skopeo, as robot)"
  done
  show kubectl create namespace "$STORY_NS"
  show kubectl label namespace "$STORY_NS" injector.sparrow-mesh.io/auto-inject=enabled
  await 120 "the default ServiceAccount in $STORY_NS" kubectl -n "$STORY_NS" get serviceaccount default
  app_manifests >"$WORK/shop.yaml"
  client_manifest >"$WORK/client.yaml"
  show kubectl -n "$STORY_NS" apply -f "$WORK/shop.yaml"
  kubectl -n "$STORY_NS" rollout status deployment/shop-server --timeout=180s || fail "shop-server did not become Ready"
  # The client starts after the Service exists, so the kubelet gives it SHOP_SERVICE_HOST.
  show kubectl -n "$STORY_NS" apply -f "$WORK/client.yaml"
  kubectl -n "$STORY_NS" rollout status deployment/shop-client --timeout=180s || fail "shop-client did not become Ready"
  show kubectl -n "$STORY_NS" get pods -o wide
  for role in server client; do check_injected_pod "$(newest_pod "shop-$role")"; done
}

# check_injected_pod POD: native sidecar, imagePullSecrets, the copy older than the pod's first pull,
# the mesh's and the application's images pulled (Events), Ready.
check_injected_pod() {
  local pod=$1 inits sidecar secrets pulled order
  inits=$(kubectl -n "$STORY_NS" get pod "$pod" -o json | python3 -c 'import json, sys
spec = json.load(sys.stdin)["spec"]
print(" ".join(c["name"] + ":" + c.get("restartPolicy", "-") for c in spec.get("initContainers", [])),
      "|", " ".join(c["name"] for c in spec["containers"]))')
  case $inits in
    "sparrow-init:- sparrow-proxy:Always | "*) sidecar="sparrow-init, then sparrow-proxy as a native sidecar" ;;
    *) fail "pod $pod: init containers and containers are '$inits', not sparrow-init then the sparrow-proxy native sidecar (restartPolicy Always)" ;;
  esac
  secrets=$(kubectl -n "$STORY_NS" get pod "$pod" -o 'jsonpath={.spec.imagePullSecrets[*].name}')
  [ "$secrets" = sparrow-registry-key ] || fail "pod $pod: imagePullSecrets are '$secrets'"
  order=$(copy_before_first_pull "$pod") || fail "pod $pod: $order"
  pulled=$(pod_events "$pod" "$STORY_NS" Pulled)
  for image in "$MESH_REGISTRY/sparrow-init" "$MESH_REGISTRY/sparrow-proxy" "$APP_REGISTRY/shop-"; do
    [[ $pulled == *"Successfully pulled image \"$image"* ]] || fail "pod $pod: no Pulled event for $image: $pulled"
  done
  kubectl -n "$STORY_NS" wait --for=condition=Ready "pod/$pod" --timeout=60s >/dev/null || fail "pod $pod is not Ready"
  check "$pod: $sidecar; imagePullSecrets sparrow-registry-key; $order; sparrow-init, sparrow-proxy and the app pulled from the registry (Events); Ready"
}

# Prints when the copy was made and when the pod's first pull began; fails if the pull came first.
copy_before_first_pull() {
  local copy events
  copy=$(kubectl -n "$STORY_NS" get secret sparrow-registry-key -o json) || { echo "no copy"; return 1; }
  events=$(kubectl -n "$STORY_NS" get events --field-selector "involvedObject.name=$1,reason=Pulling" -o json)
  python3 - "$copy" "$events" <<'PY'
import json, sys
from datetime import datetime
def t(s): return datetime.fromisoformat(s.replace("Z", "+00:00"))
copy = t(json.loads(sys.argv[1])["metadata"]["creationTimestamp"])
times = [t(e.get("eventTime") or e.get("firstTimestamp") or e["metadata"]["creationTimestamp"])
         for e in json.loads(sys.argv[2])["items"]]
if not times:
    print("no Pulling event"); sys.exit(1)
first = min(times).replace(microsecond=0)
if copy > first:
    print(f"the copy ({copy:%H:%M:%S}) was made after the first pull ({first:%H:%M:%S})"); sys.exit(1)
print(f"copy made {copy:%H:%M:%S}, first pull {first:%H:%M:%S}")
PY
}

# proxy_metric POD DIRECTION: the proxy's count of connections opened in that direction.
proxy_metric() {
  kubectl get --raw "/api/v1/namespaces/$STORY_NS/pods/$1:4191/proxy/metrics" |
    awk -v d="direction=\"$2\"" '$1 == "sparrow_proxy_tcp_connections_opened_total{" d "}" { print $2 }'
}

story_traffic() {
  step "The client calls the server through both proxies"
  local client server out in
  client=$(newest_pod shop-client)
  server=$(newest_pod shop-server)
  await 90 "an answer in $client's log" bash -c \
    "kubectl -n '$STORY_NS' logs '$client' -c client | grep -q ': 200 hello from $server'"
  show kubectl -n "$STORY_NS" logs "$client" -c client --tail=2
  out=$(proxy_metric "$client" outbound)
  in=$(proxy_metric "$server" inbound)
  printf '$ kubectl get --raw /api/v1/namespaces/%s/pods/POD:4191/proxy/metrics\n' "$STORY_NS"
  echo "  $client sparrow_proxy_tcp_connections_opened_total{direction=\"outbound\"} ${out:-none}"
  echo "  $server sparrow_proxy_tcp_connections_opened_total{direction=\"inbound\"} ${in:-none}"
  [ "${out:-0}" -ge 1 ] || fail "the client's proxy counted no outbound connection"
  [ "${in:-0}" -ge 1 ] || fail "the server's proxy counted no inbound connection"
  check "the call went out through the client's proxy and in through the server's proxy"
  story_job
}

job_manifest() {
  cat <<YAML
apiVersion: batch/v1
kind: Job
metadata: {name: shop-once}
spec:
  backoffLimit: 0
  activeDeadlineSeconds: 180
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: client
        image: "$APP_REGISTRY/shop-client:1"
        env: [{name: SHOP_CALLS, value: "2"}]
YAML
}

# An injected Job completes: its container exits, and the native sidecar stops after it.
story_job() {
  job_manifest >"$WORK/job.yaml"
  show kubectl -n "$STORY_NS" apply -f "$WORK/job.yaml"
  kubectl -n "$STORY_NS" wait --for=condition=Complete job/shop-once --timeout=180s >/dev/null ||
    fail "job shop-once did not complete: $(kubectl -n "$STORY_NS" get pods -l job-name=shop-once -o wide --no-headers)"
  local pod phase inits
  pod=$(kubectl -n "$STORY_NS" get pods -l job-name=shop-once -o 'jsonpath={.items[0].metadata.name}')
  phase=$(kubectl -n "$STORY_NS" get pod "$pod" -o 'jsonpath={.status.phase}')
  inits=$(kubectl -n "$STORY_NS" get pod "$pod" -o 'jsonpath={range .spec.initContainers[*]}{.name}:{.restartPolicy} {end}')
  [ "$inits" = "sparrow-init: sparrow-proxy:Always " ] || fail "job pod $pod: init containers '$inits', not the native sidecar"
  [ "$phase" = Succeeded ] || fail "job pod $pod is $phase, not Succeeded"
  show kubectl -n "$STORY_NS" logs "$pod" -c client
  check "job shop-once completed: $pod Succeeded, its native sidecar stopped after the client's last call"
}

copy_user() {
  kubectl -n "$STORY_NS" get secret sparrow-registry-key -o 'jsonpath={.data.\.dockerconfigjson}' | base64 -d |
    python3 -c 'import json, sys; print(next(iter(json.load(sys.stdin)["auths"].values()))["username"])'
}

story_rotation() {
  step "Rotate: the robot's new credential in the registry, registry update, the old one deleted"
  # htpasswd holds one password per user: the new credential is a second robot account, so both
  # are valid while the copies change, as with a registry's robot secrets.
  PW2=$(new_password_file robot-2)
  registry_user robot-2 "$PW2"
  echo "registry user robot-2 set: scripts/local-cluster.sh registry-user robot-2 < robot-2.password"
  show_in "$PW2" sparrowctl registry update --registry-username robot-2 --registry-password-stdin \
    --registry-ca "$SPARROW_REGISTRY_CA" || fail "registry update failed"
  await 60 "the copy in $STORY_NS to carry robot-2" test "$(copy_user)" = robot-2
  check "the copy in $STORY_NS now authenticates as $(copy_user)"
  show scripts/local-cluster.sh registry-user --delete robot
  local out
  if out=$(sparrowctl registry check --registry-server "$MESH_REGISTRY" --registry-username robot \
    --registry-password-stdin --registry-ca "$SPARROW_REGISTRY_CA" <"$PW1" 2>&1); then
    fail "the old password still works: $out"
  fi
  [[ $out == *nauthorized* ]] || fail "registry check with the old password: $out"
  check "the old password is refused: $(echo "$out" | head -1)"
  LOG_FROM=$(registry_log_lines)
  show kubectl -n "$STORY_NS" rollout restart deployment/shop-client
  kubectl -n "$STORY_NS" rollout status deployment/shop-client --timeout=180s || fail "the new client pod did not become Ready"
  local pod n
  pod=$(newest_pod shop-client)
  check_injected_pod "$pod"
  n=$(registry_pulls team/mesh/sparrow-proxy "$LOG_FROM")
  [ "$n" -gt 0 ] || fail "the registry logged no authorized pull of sparrow-proxy by containerd"
  check "the new pod $pod pulled with the rotated copy, robot's password gone (registry log: $n authorized sparrow-proxy manifest request(s) from containerd)"
  show sparrowctl status || fail "status reports a problem"
  [[ $(sparrowctl status) == *"(0 stale)"* ]] || fail "status shows stale copies"
  check "status: every copy current"
}

story_remove() {
  step "Remove the mesh: the user's namespace and workloads stay"
  show sparrowctl remove --yes || fail "remove failed"
  show kubectl get secrets -l usage=sparrow-registry-key -A
  [ -z "$(kubectl get secrets -l usage=sparrow-registry-key -A --no-headers 2>/dev/null)" ] ||
    fail "Secrets labelled usage=sparrow-registry-key are left"
  check "no Secret labelled usage=sparrow-registry-key in any namespace"
  ! kubectl get mutatingwebhookconfiguration sparrow-sidecar-injector >/dev/null 2>&1 || fail "the webhook is left"
  ! kubectl get clusterrole sparrow-controller >/dev/null 2>&1 || fail "the ClusterRole is left"
  await 180 "namespace sparrow-mesh to go" bash -c '! kubectl get namespace sparrow-mesh'
  check "webhook, ClusterRole and the sparrow-mesh namespace gone"
  show kubectl -n "$STORY_NS" get deployments,services
  [ "$(kubectl -n "$STORY_NS" get deployments --no-headers | wc -l)" -eq 2 ] || fail "the application's Deployments are gone"
  check "namespace $STORY_NS and its Deployments and Service left as they were"
}
