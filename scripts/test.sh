#!/usr/bin/env bash
# Runs every test of the workspace, on the real local node: brings the node up (building it on first
# use, into /var/cache/sparrow-mesh/node), runs the suite with the node's variables exported (its
# kubectl first on PATH) and brings the node down at the end, also when the run fails.
# Installs what the tests need when it is missing: the real docker-registry, skopeo, htpasswd
# (apache2-utils), curl, umoci and runc, which unpack and run the built images, for the data-plane
# tests in network namespaces iptables (both backends) and iproute2, for the node containerd,
# the CNI plugins and conntrack, and for moto (the local AWS API, in a venv) python3-venv.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v curl >/dev/null || need+=(curl)
command -v umoci >/dev/null || need+=(umoci)
command -v runc >/dev/null || need+=(runc)
{ command -v xtables-nft-multi && command -v xtables-legacy-multi; } >/dev/null || need+=(iptables)
command -v ip >/dev/null || need+=(iproute2)
command -v containerd >/dev/null || need+=(containerd)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v conntrack >/dev/null || need+=(conntrack)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

# A node of this checkout's own (namespace, state directory and ports derive from its path), so
# that test runs from different checkouts of one machine never touch each other's node.
id=$(pwd -P | sha256sum | cut -c1-8)
free_port() {
  local port=$1
  while [ -n "$(ss -Hltn "sport = :$port")" ]; do port=$((port + 1)); done
  echo "$port"
}
export SPARROW_CLUSTER_NETNS=sparrow-t$id
SPARROW_NODE_API_PORT=$(free_port $((20000 + 0x${id:0:4} % 20000)))
SPARROW_NODE_REGISTRY_PORT=$(free_port $((SPARROW_NODE_API_PORT + 1)))
export SPARROW_NODE_API_PORT SPARROW_NODE_REGISTRY_PORT

# The kubelet runs the real ecr-credential-provider (built with the node) for ECR names, against
# moto on this port: crates/sparrow-testnode/tests/ecr_credential_provider.rs starts moto there and
# proves a pull. No other test names an ECR image, so the rest of the suite never runs the plugin.
scripts/local-cluster.sh install-moto
moto_port=$(free_port $((SPARROW_NODE_REGISTRY_PORT + 1)))
mkdir -p target
scripts/local-cluster.sh ecr-provider-config "$moto_port" >target/credential-providers.yaml
export SPARROW_NODE_CREDENTIAL_PROVIDER_CONFIG=$PWD/target/credential-providers.yaml


# Compiled crates are kept between runs in the machine's cache beside the node's binaries (cargo's
# build directory; the binaries the tests run still land in target/): a new clone of the project
# compiles its own crates only. Without incremental state, which a one-time build never reads back.
# The cache goes when the disk runs short of room for a whole build.
export CARGO_BUILD_BUILD_DIR=${CARGO_BUILD_BUILD_DIR:-/var/cache/sparrow-mesh/cargo-build}
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
mkdir -p "$CARGO_BUILD_BUILD_DIR"
if [ "$(df -Pk "$CARGO_BUILD_BUILD_DIR" | awk 'NR == 2 { print $4 }')" -lt $((15 * 1024 * 1024)) ]; then
  echo "test.sh: less than 15 GiB free; clearing the build cache $CARGO_BUILD_BUILD_DIR"
  rm -rf "${CARGO_BUILD_BUILD_DIR:?}"/*
fi

# The images that crates/sparrow-image/tests/run_images.rs unpacks and runs under runc: the
# release pipeline, from debug static binaries (quicker to build than fat LTO).
scripts/build-images.sh --profile dev --out target/images-test
export SPARROW_IMAGES=$PWD/target/images-test

# And the project's test plugin (crates/sparrow-credential-provider, the kubelet's protocol) for the
# images of <registry>/t-kubelet-plugin/, answering the credential a test serves over HTTP on this
# port (crates/sparrowctl/tests/real_node_credential_plugin.rs). Static, because the same binary
# also runs in the controller's pod, copied from an image with busybox's cp (busybox-static).
# shellcheck source=scripts/lib/static-build.sh
. scripts/lib/static-build.sh
command -v busybox >/dev/null || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq busybox-static >/dev/null
}
static_build dev -p sparrow-credential-provider --bins
test_plugin=$PWD/$(static_bin_dir dev)/sparrow-test-credential-provider
plugin_port=$(free_port $((moto_port + 1)))
cat >>target/credential-providers.yaml <<EOF
- name: sparrow-test-credential-provider
  matchImages: ["127.0.0.1:$SPARROW_NODE_REGISTRY_PORT/t-kubelet-plugin"]
  defaultCacheDuration: 1m
  apiVersion: credentialprovider.kubelet.k8s.io/v1
  args: [--credential-file, "http://127.0.0.1:$plugin_port/credential"]
EOF
export SPARROW_NODE_CREDENTIAL_PROVIDER_PLUGINS=$test_plugin SPARROW_TEST_PLUGIN=$test_plugin

log=$(mktemp)
# shellcheck disable=SC2329 # the EXIT trap runs it
cleanup() {
  scripts/local-cluster.sh down >/dev/null || echo "test.sh: the node did not come down cleanly" >&2
  rm -f "$log"
}
trap cleanup EXIT
if ! scripts/local-cluster.sh up; then
  state=/var/lib/sparrow-mesh/$SPARROW_CLUSTER_NETNS
  for f in "$state"/log/*.log; do
    [ -f "$f" ] && { echo "--- last lines of $f"; tail -n 15 "$f"; }
  done
  echo "test.sh: the local node did not come up; no tests ran" >&2
  exit 1
fi
eval "$(scripts/local-cluster.sh env)"

set +e
cargo test --workspace --all-features --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# One closing line for the whole workspace, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "workspace: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
