#!/usr/bin/env bash
# Median wall time of the registry preflight for the mesh's three images against a local
# docker-registry with TLS and htpasswd auth (target: under 300 ms).
# Usage: scripts/bench-registry-check.sh [RUNS=20] [BUDGET_MS=300]
set -euo pipefail
cd "$(dirname "$0")/.."

for binary in docker-registry skopeo htpasswd; do
    if ! command -v "$binary" >/dev/null; then
        echo "$binary is missing: run apt-get update && apt-get install -y docker-registry skopeo apache2-utils" >&2
        exit 1
    fi
done

cargo run --quiet --release -p sparrow-registry --example bench_check -- "${1:-20}" "${2:-300}"
