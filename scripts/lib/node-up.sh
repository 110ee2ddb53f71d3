# shellcheck shell=bash
# Bringing the node up and down. Sourced by local-cluster.sh.

# Components in start order; `down` stops them in reverse.
NODE_COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler registry containerd kubelet kube-proxy forwarder)

preflight() {
  local need=() c
  for c in containerd:containerd runc:runc ctr:containerd docker-registry:docker-registry htpasswd:apache2-utils \
    skopeo:skopeo openssl:openssl curl:curl nsenter:util-linux iptables:iptables conntrack:conntrack \
    flock:util-linux ss:iproute2; do
    command -v "${c%%:*}" >/dev/null || need+=("${c#*:}")
  done
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] ||
    need+=(containernetworking-plugins)
  [ ${#need[@]} -eq 0 ] || die "missing Debian package(s): ${need[*]} (apt-get install ${need[*]})"
  command -v go >/dev/null || die "no Go toolchain on PATH: the node is built with Go >= 1.26 (/usr/local/go/bin)"
}

node_healthy() {
  local c
  for c in "${NODE_COMPONENTS[@]}"; do alive "$c" || return 1; done
  api_get /readyz >/dev/null 2>&1
}

# Prints the first component whose process is not running; fails when all run.
dead_component() {
  local c
  for c in "${NODE_COMPONENTS[@]}"; do
    alive "$c" || { echo "$c"; return 0; }
  done
  return 1
}

# Every component's process runs: a node that is merely busy (an API server slow to answer
# /readyz under load) is waited for, not rebuilt.
node_running() {
  ! dead_component >/dev/null
}

# The reason an existing node is rebuilt, for the message that says so.
node_trouble() {
  local c
  if c=$(dead_component); then
    echo "$c is not running"
  else
    echo "the API server did not become ready within 30 s"
  fi
}

node_up() {
  local start=$SECONDS
  preflight
  if [ -f "$STATE/env" ] && node_running; then
    local _
    for _ in $(seq 1 30); do
      if node_healthy; then
        echo "node: already up (scripts/local-cluster.sh env)"
        return 0
      fi
      sleep 1
    done
  fi
  if [ -f "$STATE/env" ]; then
    local kept=${TMPDIR:-/tmp}/sparrow-node-$NETNS-logs
    echo "node: rebuilding the node of an earlier run: $(node_trouble) (its logs are kept in $kept)"
    rm -rf "$kept"
    cp -a "$LOGS" "$kept" 2>/dev/null || true
    node_down
  elif [ -e "$STATE" ] || [ -e "$NETNS_PATH" ]; then
    echo "node: cleaning stale state of an earlier run ($STATE, netns $NETNS)"
    node_down
  fi
  port_in_use "$API_PORT" && die "port 127.0.0.1:$API_PORT (API server) is in use (free it or set SPARROW_NODE_API_PORT)"
  port_in_use "$REGISTRY_PORT" && die "port 127.0.0.1:$REGISTRY_PORT (registry) is in use (free it or set SPARROW_NODE_REGISTRY_PORT)"
  build_locked
  local t0=$SECONDS
  mkdir -p "$STATE" "$LOGS" "$RUN"
  echo "$API_PORT $REGISTRY_PORT" >"$STATE/ports"
  setup_netns
  pki_make
  local c
  for c in admin kube-controller-manager kube-scheduler kubelet kube-proxy; do kubeconfig_make "$c"; done
  admission_config_make
  start_control_plane
  start_registry
  start_node_side
  start_host forwarder "$CACHE_BIN/netns-forward" -netns "$NETNS_PATH" \
    "127.0.0.1:$API_PORT=127.0.0.1:$API_PORT" "127.0.0.1:$REGISTRY_PORT=127.0.0.1:$REGISTRY_PORT"
  await forwarder 30 grep -q ready "$LOGS/forwarder.log"
  await kubelet 120 node_ready
  write_env
  local how="scripts/local-cluster.sh env"
  [ "$NETNS" = sparrow-node ] || how="SPARROW_CLUSTER_NETNS=$NETNS $how"
  echo "node: Ready in $((SECONDS - t0)) s (up took $((SECONDS - start)) s); eval \"\$($how)\""
}

setup_netns() {
  ip netns add "$NETNS" 2>/dev/null || die "cannot create network namespace $NETNS (ip netns add failed)"
  in_netns ip link set lo up
  # The node's address sits on a veth pair whose both ends stay in the namespace: reachable from the pods'
  # bridge, the default route for Service addresses, and never a way out of the namespace.
  in_netns ip link add node0 type veth peer name node0-peer
  in_netns ip addr add "$NODE_IP/24" dev node0
  in_netns ip link set node0-peer up
  in_netns ip link set node0 up
  in_netns ip route add default dev node0
  in_netns sysctl -qw net.ipv4.ip_forward=1
  in_netns sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null ||
    die "br_netfilter is not available in $NETNS (load the br_netfilter kernel module)"
  # The cgroup subtree every pod lives in, so that `down` finds each of their processes.
  local ctl
  for ctl in /sys/fs/cgroup/*/; do
    [ -e "$ctl/cgroup.procs" ] || continue
    mkdir -p "$ctl$CGROUP_ROOT"
  done
  if [ -d /sys/fs/cgroup/cpuset/"$CGROUP_ROOT" ]; then
    cat /sys/fs/cgroup/cpuset/cpuset.cpus >/sys/fs/cgroup/cpuset/"$CGROUP_ROOT"/cpuset.cpus
    cat /sys/fs/cgroup/cpuset/cpuset.mems >/sys/fs/cgroup/cpuset/"$CGROUP_ROOT"/cpuset.mems
  fi
}

start_control_plane() {
  start_etcd
  start_kube_apiserver
  start_kube_controller_manager
  start_kube_scheduler
}

start_etcd() {
  start etcd "$CACHE_BIN/etcd" --name "$NODE_NAME" --data-dir "$STATE/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster "$NODE_NAME=http://127.0.0.1:2380" --unsafe-no-fsync=true --log-level warn
  await etcd 60 in_netns curl -sf http://127.0.0.1:2379/health
}

start_kube_apiserver() {
  start kube-apiserver "$CACHE_BIN/kube-apiserver" --etcd-servers http://127.0.0.1:2379 \
    --bind-address 0.0.0.0 --secure-port "$API_PORT" --advertise-address "$NODE_IP" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" --kubelet-preferred-address-types InternalIP \
    --service-cluster-ip-range "$SERVICE_CIDR" --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/service-account.pub" --service-account-signing-key-file "$PKI/service-account.key" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction --allow-privileged=true \
    --admission-control-config-file "$KUBE/admission-config.yaml" \
    --profiling=false
  await kube-apiserver 120 api_get /readyz
}

start_kube_controller_manager() {
  start kube-controller-manager "$CACHE_BIN/kube-controller-manager" --kubeconfig "$KUBE/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig "$KUBE/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig "$KUBE/kube-controller-manager.kubeconfig" \
    --root-ca-file "$PKI/ca.crt" --service-account-private-key-file "$PKI/service-account.key" \
    --use-service-account-credentials=true --leader-elect=false --bind-address 127.0.0.1 \
    --service-cluster-ip-range "$SERVICE_CIDR" --profiling=false
}

start_kube_scheduler() {
  start kube-scheduler "$CACHE_BIN/kube-scheduler" --kubeconfig "$KUBE/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig "$KUBE/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig "$KUBE/kube-scheduler.kubeconfig" \
    --leader-elect=false --bind-address 127.0.0.1 --profiling=false
}

start_registry() {
  config_registry
  start registry docker-registry serve "$STATE/registry/config.yml"
  await registry 30 registry_answers
}

# The registry is up when it asks for credentials (401) over TLS with the node CA.
registry_answers() {
  [ "$(in_netns curl -s -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" "https://127.0.0.1:$REGISTRY_PORT/v2/")" = 401 ]
}

start_node_side() {
  config_containerd
  start containerd containerd --config "$STATE/containerd/config.toml"
  await containerd 60 ctr --address "$CONTAINERD_SOCK" version
  import_pause_image
  pack_test_images
  config_kubelet
  credential_provider_flags
  start kubelet "$CACHE_BIN/kubelet" --config "$STATE/kubelet/config.yaml" \
    --kubeconfig "$KUBE/kubelet.kubeconfig" --root-dir "$STATE/kubelet" --cert-dir "$STATE/kubelet/pki" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" "${CREDENTIAL_PROVIDER_FLAGS[@]}"
  config_kube_proxy
  start kube-proxy "$CACHE_BIN/kube-proxy" --config "$STATE/kube-proxy/config.yaml"
}

# The sandbox image is the project's own pause program, packed here and imported: nothing is pulled.
import_pause_image() {
  local images=$STATE/images
  mkdir -p "$images"
  "$CACHE_BIN/ociimage" -out "$images/pause" -tag 1 -entrypoint /pause "$CACHE_BIN/pause=/pause"
  rm -f "$images/pause.tar"
  skopeo copy -q "oci:$images/pause:1" "docker-archive:$images/pause.tar:$PAUSE_IMAGE" >/dev/null
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images import "$images/pause.tar" >/dev/null ||
    die "containerd: importing the pause image failed (log: $LOGS/containerd.log)"
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images label "$PAUSE_IMAGE" io.cri-containerd.pinned=pinned >/dev/null
}

# The tests' application images, as OCI layouts the tests push to the registry with their own users.
pack_test_images() {
  local c
  for c in httpecho webhook; do
    "$CACHE_BIN/ociimage" -out "$STATE/images/$c" -tag 1 -entrypoint "/$c" "$CACHE_BIN/$c=/$c"
  done
}

node_ready() {
  api_get "/api/v1/nodes/$NODE_NAME" | grep -q '"type": *"Ready", *"status": *"True"' ||
    api_get "/api/v1/nodes/$NODE_NAME" | tr -d ' \n' | grep -q '"type":"Ready","status":"True"'
}

write_env() {
  mkdir -p "$STATE/bin"
  ln -sf "$CACHE_BIN/kubectl" "$STATE/bin/kubectl"
  cat >"$STATE/env.tmp" <<EOF
export KUBECONFIG=$KUBE/admin.kubeconfig
export SPARROW_CLUSTER_NETNS=$NETNS
export SPARROW_NODE_STATE=$STATE
export SPARROW_REGISTRY=127.0.0.1:$REGISTRY_PORT
export SPARROW_REGISTRY_CA=$PKI/ca.crt
export SPARROW_WEBHOOK_CLIENT_CA=$PKI/webhook-client-ca.crt
export SPARROW_NODE_IMAGES=$STATE/images
export SPARROW_NODE_KUBECTL=$CACHE_BIN/kubectl
export SPARROW_NODE_IP=$NODE_IP
export SPARROW_NODE_ECR_REGISTRY=$ECR_REGISTRY
export PATH=$STATE/bin:\${PATH#$STATE/bin:}
EOF
  # Only a node started with credential providers names their config (the copy the kubelet read).
  if [ ${#CREDENTIAL_PROVIDER_FLAGS[@]} -gt 0 ]; then
    echo "export SPARROW_NODE_CREDENTIAL_PROVIDERS=$STATE/kubelet/credential-providers.yaml" >>"$STATE/env.tmp"
  fi
  mv "$STATE/env.tmp" "$STATE/env"
}

node_down() {
  local tasks=() pids=() c pid
  [ -d "$STATE/containerd/state/io.containerd.runtime.v2.task/k8s.io" ] &&
    mapfile -t tasks < <(ls "$STATE/containerd/state/io.containerd.runtime.v2.task/k8s.io")
  # Pods first (SIGKILL by the PIDs in their cgroups), so the components have nothing left to wait for.
  kill_cgroup_tree
  for c in "${NODE_COMPONENTS[@]}"; do
    pid=$(cat "$RUN/$c.pid" 2>/dev/null) && [ -n "$pid" ] && pids+=("$pid")
  done
  stop_pids "${pids[@]}"
  # What is left in the namespace (containerd's shims) goes by PID too.
  if [ -e "$NETNS_PATH" ]; then
    mapfile -t pids < <(ip netns pids "$NETNS" 2>/dev/null)
    [ ${#pids[@]} -eq 0 ] || kill -KILL "${pids[@]}" 2>/dev/null || true
  fi
  kill_cgroup_tree
  unmount_below "$STATE"
  remove_outside_traces "${tasks[@]}"
  [ -e "$NETNS_PATH" ] && ip netns del "$NETNS" 2>/dev/null
  rm -rf "$STATE"
  [ ! -e "$STATE" ] || die "could not remove $STATE (something still mounted below it?)"
}

# What the kubelet, CNI and containerd's shims write outside the state directory, for the given
# containerd task IDs: log links, cached CNI results, shim sockets (named by a hash of address/ns/id).
remove_outside_traces() {
  find /var/log/containers -maxdepth 1 -lname "$STATE/*" -delete 2>/dev/null || true
  local id
  for id in "$@"; do
    rm -f /var/lib/cni/results/*-"$id"-* \
      "/run/containerd/s/$(printf '%s' "$CONTAINERD_SOCK/k8s.io/$id" | sha256sum | cut -d' ' -f1)"
  done
}
