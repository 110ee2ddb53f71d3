#!/usr/bin/env bash
# Runs every test of the workspace. Installs what the tests need when it is missing:
# the real docker-registry, skopeo, htpasswd (apache2-utils), kubectl (kubernetes-client), curl,
# umoci and runc, which unpack and run the built images, and for the data-plane tests in network
# namespaces iptables (both backends) and iproute2.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v kubectl >/dev/null || need+=(kubernetes-client)
command -v curl >/dev/null || need+=(curl)
command -v umoci >/dev/null || need+=(umoci)
command -v runc >/dev/null || need+=(runc)
{ command -v xtables-nft-multi && command -v xtables-legacy-multi; } >/dev/null || need+=(iptables)
command -v ip >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --all-features --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# One closing line for the whole workspace, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "workspace: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
