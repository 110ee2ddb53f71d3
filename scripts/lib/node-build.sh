# shellcheck shell=bash
# Builds the node's binaries from cluster/ into the version-keyed cache. Sourced by local-cluster.sh.
# Needs: ROOT, CACHE_BIN, K8S_VERSION, ETCD_VERSION (set by the caller); the ECR plugin's build
# is in node-aws.sh.

# Every package of the node; kubectl is the client the tests use.
NODE_K8S_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
# The project's own small programs: the sandbox image, the host forwarder, the OCI packer and the test images.
NODE_LOCAL_CMDS=(pause netns-forward ociimage testimages/httpecho testimages/webhook)

# Version stamps, so `kubectl version` and the server report the pinned release instead of v0.0.0-master.
k8s_ldflags() {
  local minor build_date
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  build_date=$(curl -sf "https://proxy.golang.org/k8s.io/kubernetes/@v/$K8S_VERSION.info" 2>/dev/null |
    sed -n 's/.*"Time": *"\([^"]*\)".*/\1/p')
  [ -n "$build_date" ] || build_date=1970-01-01T00:00:00Z
  local flags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=archive -X $pkg.buildDate=$build_date"
  done
  echo "$flags"
}

# `go build -v` names each package as it is compiled (and go each module it downloads): print a line
# every 100 so a long build shows progress; errors pass through whole.
build_progress() {
  awk -v what="$1" '
    /^go: downloading / { d++; if (d % 100 == 0) { printf "  %s: %d modules downloaded\n", what, d; fflush() }; next }
    /^[a-z0-9.-]+(\/[^ ]+)*$/ { n++; if (n % 100 == 0) { printf "  %s: %d packages compiled (now %s)\n", what, n, $0; fflush() }; next }
    { print; fflush() }
    END { printf "  %s: %d packages compiled\n", what, n }'
}

# The inputs the upstream binaries depend on: versions, module files and build flags.
build_fingerprint() {
  (cd "$ROOT/cluster" && cat go.mod go.sum etcd/go.mod etcd/go.sum
    echo "$K8S_VERSION $ETCD_VERSION ${NODE_K8S_CMDS[*]}"; declare -f k8s_ldflags build_node) | sha256sum | cut -c1-16
}

build_node() {
  local fp
  fp=$(build_fingerprint)
  if [ -f "$CACHE_BIN/.built" ] && [ "$(cat "$CACHE_BIN/.built")" = "$fp" ]; then
    return 0
  fi
  mkdir -p "$CACHE_BIN"
  local start=$SECONDS
  export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
  echo "node: building Kubernetes $K8S_VERSION, etcd $ETCD_VERSION into $CACHE_BIN (first build: about 25 min on 2 cores)"
  local pkgs=() c
  for c in "${NODE_K8S_CMDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  (cd "$ROOT/cluster" && nice go build -v -trimpath -tags selinux,notest -ldflags "$(k8s_ldflags)" \
    -o "$CACHE_BIN/" "${pkgs[@]}" 2>&1 | build_progress kubernetes; exit "${PIPESTATUS[0]}") ||
    { echo "node: building Kubernetes failed (rerun: cd cluster && go build ./...)" >&2; return 1; }
  (cd "$ROOT/cluster/etcd" && nice go build -v -trimpath -ldflags "-s -w" -o "$CACHE_BIN/etcd" \
    go.etcd.io/etcd/server/v3 2>&1 | build_progress etcd; exit "${PIPESTATUS[0]}") ||
    { echo "node: building etcd failed (rerun: cd cluster/etcd && go build go.etcd.io/etcd/server/v3)" >&2; return 1; }
  echo "$fp" >"$CACHE_BIN/.built"
  echo "node: build done in $((SECONDS - start)) s"
}

# The project's programs are small and stdlib-only: always rebuilt (the Go build cache makes it instant).
build_local_tools() {
  local c
  for c in "${NODE_LOCAL_CMDS[@]}"; do
    (cd "$ROOT/cluster" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags "-s -w" -o "$CACHE_BIN/$(basename "$c")" "./$c") ||
      { echo "node: building cluster/$c failed" >&2; return 1; }
  done
}

# Builds under a lock on the cache: checkouts of one machine share it, and may start at once.
build_locked() {
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.lock"
  flock 8
  build_node && build_local_tools && build_ecr_credential_provider
  flock -u 8
}
