# shellcheck shell=bash
# Configuration files of the node's components (containerd, CNI, kubelet, kube-proxy, registry).
# Sourced by local-cluster.sh. Needs the layout variables it sets.

config_containerd() {
  mkdir -p "$STATE/containerd/certs.d/127.0.0.1:$REGISTRY_PORT" "$STATE/containerd/certs.d/$ECR_REGISTRY" \
    "$STATE/cni/net.d"
  cat >"$STATE/containerd/config.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
[grpc]
  address = "$CONTAINERD_SOCK"
[debug]
  level = "info"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  netns_mounts_under_state_dir = true
  # This machine denies lowering oom_score_adj (no CAP_SYS_RESOURCE): keep the sandbox at ours.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$STATE/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$STATE/containerd/certs.d"
EOF
  # The private registry is trusted the way a node administrator configures one: hosts.toml with its CA.
  cat >"$STATE/containerd/certs.d/127.0.0.1:$REGISTRY_PORT/hosts.toml" <<EOF
server = "https://127.0.0.1:$REGISTRY_PORT"
[host."https://127.0.0.1:$REGISTRY_PORT"]
  capabilities = ["pull", "resolve"]
  ca = "$PKI/ca.crt"
EOF
  # The ECR name resolves to the same registry, which stores repositories by path: an image pushed as
  # 127.0.0.1:PORT/REPO:TAG pulls as $ECR_REGISTRY/REPO:TAG. The registry is the name's only
  # server (no fallback to AWS), and containerd's CRI sends it the credentials the kubelet has for
  # the ECR name (the kubelet sets no server address on them, so they go to whichever host serves).
  # The same shape as above: containerd 1.6 rejects a hosts.toml without a [host] table ("invalid
  # `host` tree") and then falls back to the name itself.
  cat >"$STATE/containerd/certs.d/$ECR_REGISTRY/hosts.toml" <<EOF
server = "https://127.0.0.1:$REGISTRY_PORT"
[host."https://127.0.0.1:$REGISTRY_PORT"]
  capabilities = ["pull", "resolve"]
  ca = "$PKI/ca.crt"
EOF
  cat >"$STATE/cni/net.d/10-$NETNS.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$NETNS",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$POD_CIDR" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$STATE/cni/ipam"
      }
    }
  ]
}
EOF
}

# The kubelet settings a VM like this one needs: cgroup v1 allowed, swap tolerated, no eviction,
# no local-storage accounting, everything it writes kept under the state directory.
config_kubelet() {
  mkdir -p "$STATE/kubelet" "$STATE/pod-logs"
  cat >"$STATE/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: "$PKI/ca.crt" }
authorization: { mode: Webhook }
address: "$NODE_IP"
healthzBindAddress: 127.0.0.1
healthzPort: 10248
readOnlyPort: 0
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: "unix://$CONTAINERD_SOCK"
podLogsDir: "$STATE/pod-logs"
localStorageCapacityIsolation: false
evictionHard: { "memory.available": "0%", "nodefs.available": "0%", "nodefs.inodesFree": "0%", "imagefs.available": "0%" }
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
rotateCertificates: false
serverTLSBootstrap: false
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
maxPods: 110
# Lowering oom_score_adj needs CAP_SYS_RESOURCE, which this machine withholds.
oomScoreAdj: 0
EOF
}

config_kube_proxy() {
  mkdir -p "$STATE/kube-proxy"
  cat >"$STATE/kube-proxy/config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: { kubeconfig: "$KUBE/kube-proxy.kubeconfig" }
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: 10.244.0.0/16
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
oomScoreAdj: 0
conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s }
EOF
}

config_registry() {
  mkdir -p "$STATE/registry/data"
  touch "$STATE/registry/htpasswd"
  cat >"$STATE/registry/config.yml" <<EOF
version: 0.1
log: { level: info, formatter: text }
storage:
  filesystem: { rootdirectory: "$STATE/registry/data" }
  delete: { enabled: true }
http:
  addr: 127.0.0.1:$REGISTRY_PORT
  secret: $(openssl rand -hex 16)
  tls: { certificate: "$PKI/registry.crt", key: "$PKI/registry.key" }
auth:
  htpasswd: { realm: sparrow-node, path: "$STATE/registry/htpasswd" }
EOF
}
