# shellcheck shell=bash
# The ECR pieces of the node: the real ecr-credential-provider kubelet plugin (built from its pinned
# module in cluster/ecr-credential-provider into the cache beside the node's binaries) and moto, the
# local AWS API whose GetAuthorizationToken it calls (a venv in the machine's cache, from the pin in
# cluster/moto/requirements.txt). Sourced by local-cluster.sh.
# Needs: ROOT, CACHE_PLUGINS, MOTO_VENV (set by the caller).

ECR_PROVIDER_MODULE=$ROOT/cluster/ecr-credential-provider
ECR_PROVIDER_PKG=k8s.io/cloud-provider-aws/cmd/ecr-credential-provider

ecr_provider_fingerprint() {
  (cd "$ECR_PROVIDER_MODULE" && cat go.mod go.sum; go version; declare -f build_ecr_credential_provider) |
    sha256sum | cut -c1-16
}

# Built on first use (about a minute on 2 cores), skipped while go.mod, go.sum and Go are unchanged.
build_ecr_credential_provider() {
  local fp stamp=$CACHE_PLUGINS/.built-ecr-credential-provider
  fp=$(ecr_provider_fingerprint)
  if [ -x "$CACHE_PLUGINS/ecr-credential-provider" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$fp" ]; then
    return 0
  fi
  mkdir -p "$CACHE_PLUGINS"
  local version
  version=$(pinned k8s.io/cloud-provider-aws "$ECR_PROVIDER_MODULE/go.mod")
  echo "node: building ecr-credential-provider $version into $CACHE_PLUGINS"
  (cd "$ECR_PROVIDER_MODULE" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false nice go build -trimpath -ldflags "-s -w" \
    -o "$CACHE_PLUGINS/" "$ECR_PROVIDER_PKG") ||
    { echo "node: building ecr-credential-provider failed (rerun: cd cluster/ecr-credential-provider && go build $ECR_PROVIDER_PKG)" >&2; return 1; }
  echo "$fp" >"$stamp"
}

# The venv is made once per moto version (and again when its Python went away); pip reads the pin.
# Under a lock beside it: checkouts of one machine share it, and may start at once.
install_moto() {
  local req=$ROOT/cluster/moto/requirements.txt stamp=$MOTO_VENV/.installed fp
  fp=$(sha256sum <"$req" | cut -c1-16)
  mkdir -p "$(dirname "$MOTO_VENV")"
  exec 7>"$MOTO_VENV.lock"
  flock 7
  if [ "$(cat "$stamp" 2>/dev/null)" != "$fp" ] || ! "$MOTO_VENV/bin/python" -c 'import moto.server' 2>/dev/null; then
    command -v python3 >/dev/null || die "install-moto: no python3 (apt-get install python3 python3-venv)"
    python3 -c 'import venv, ensurepip' 2>/dev/null ||
      die "install-moto: python3 cannot make a venv (apt-get install python3-venv)"
    echo "node: installing $(grep -v '^#' "$req" | tr '\n' ' ')into $MOTO_VENV"
    rm -rf "$MOTO_VENV"
    { python3 -m venv "$MOTO_VENV" && nice "$MOTO_VENV/bin/pip" install -q --disable-pip-version-check -r "$req"; } ||
      die "install-moto: pip install -r cluster/moto/requirements.txt failed"
    echo "$fp" >"$stamp"
  fi
  flock -u 7
  echo "node: moto_server is $MOTO_VENV/bin/moto_server"
}

# The kubelet's credential-provider flags, into CREDENTIAL_PROVIDER_FLAGS, when the node is brought
# up with a provider config: SPARROW_NODE_CREDENTIAL_PROVIDER_CONFIG (a kubelet.config.k8s.io/v1
# CredentialProviderConfig, copied into the state directory: the kubelet reads it once, at start)
# and optionally SPARROW_NODE_CREDENTIAL_PROVIDER_BIN_DIR (default: the cache's plugin directory,
# which holds ecr-credential-provider). None without a config: the kubelet then has no providers.
credential_provider_flags() {
  CREDENTIAL_PROVIDER_FLAGS=()
  local config=${SPARROW_NODE_CREDENTIAL_PROVIDER_CONFIG:-}
  local bin_dir=${SPARROW_NODE_CREDENTIAL_PROVIDER_BIN_DIR:-$CACHE_PLUGINS}
  if [ -z "$config" ]; then
    [ -z "${SPARROW_NODE_CREDENTIAL_PROVIDER_BIN_DIR:-}" ] ||
      die "SPARROW_NODE_CREDENTIAL_PROVIDER_BIN_DIR is set without SPARROW_NODE_CREDENTIAL_PROVIDER_CONFIG"
    return 0
  fi
  [ -r "$config" ] || die "SPARROW_NODE_CREDENTIAL_PROVIDER_CONFIG=$config cannot be read"
  [ -d "$bin_dir" ] || die "the credential-provider bin dir $bin_dir is not a directory"
  # SPARROW_NODE_CREDENTIAL_PROVIDER_PLUGINS: more plugin binaries (space-separated paths), such as
  # the project's test plugin, linked beside the bin dir's own in a directory of this node's state.
  if [ -n "${SPARROW_NODE_CREDENTIAL_PROVIDER_PLUGINS:-}" ]; then
    local merged=$STATE/kubelet/credential-providers plugin
    rm -rf "$merged"
    mkdir -p "$merged"
    for plugin in "$bin_dir"/* $SPARROW_NODE_CREDENTIAL_PROVIDER_PLUGINS; do
      [ -x "$plugin" ] || die "the credential-provider plugin $plugin is not an executable file"
      ln -s "$(readlink -f "$plugin")" "$merged/$(basename "$plugin")"
    done
    bin_dir=$merged
  fi
  cp "$config" "$STATE/kubelet/credential-providers.yaml"
  CREDENTIAL_PROVIDER_FLAGS=(--image-credential-provider-config "$STATE/kubelet/credential-providers.yaml"
    --image-credential-provider-bin-dir "$(cd "$bin_dir" && pwd -P)")
}

# A CredentialProviderConfig that runs ecr-credential-provider for every ECR name against moto on
# 127.0.0.1:PORT in the node's namespace (where the kubelet runs its plugins). moto's token expired
# in 2015, so the plugin answers without a cacheDuration and the kubelet applies defaultCacheDuration:
# 0s caches nothing, so every pull asks moto again (and a test sees its own request).
ecr_provider_config() {
  [[ ${1:-} =~ ^[0-9]+$ ]] || die "ecr-provider-config takes moto's port"
  cat <<EOF
apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
- name: ecr-credential-provider
  matchImages: ["*.dkr.ecr.*.amazonaws.com", "*.dkr.ecr.*.amazonaws.com.cn"]
  defaultCacheDuration: 0s
  apiVersion: credentialprovider.kubelet.k8s.io/v1
  env:
  - { name: AWS_ENDPOINT_URL_ECR, value: "http://127.0.0.1:$1" }
  - { name: AWS_ACCESS_KEY_ID, value: testing }
  - { name: AWS_SECRET_ACCESS_KEY, value: testing }
  - { name: AWS_REGION, value: us-east-1 }
EOF
}
