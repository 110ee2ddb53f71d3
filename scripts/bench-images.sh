#!/usr/bin/env bash
# The images' numbers, printed as one table (what the README records):
#   build    the three images from built static binaries (sparrow-image's own timing; median
#            of BENCH_RUNS runs, default 5; target < 3 s)
#   push     `sparrowctl images push` into an empty local registry (cold, target < 5 s) and the
#            same push again (every blob already present, target < 1 s)
#   size     each image's compressed size: its layer, config and manifest (controller < 15 MB)
# The registry is Debian's docker-registry on loopback, plain HTTP with an htpasswd user, in a
# temporary directory; it is stopped (by PID) and removed at the end.
#
# Usage: scripts/bench-images.sh [--profile release|dev]   (default release: what ships)
# sparrowctl comes from SPARROW_BIN_DIR (default target/debug; built if missing).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
profile=release
case ${1:-} in
    "") ;;
    --profile) profile=${2:?--profile needs release or dev} ;;
    *) echo "usage: scripts/bench-images.sh [--profile release|dev]" >&2; exit 2 ;;
esac
runs=${BENCH_RUNS:-5}
for binary in docker-registry htpasswd python3; do
    command -v "$binary" >/dev/null ||
        { echo "bench-images: $binary is missing (apt-get install docker-registry apache2-utils python3)" >&2; exit 1; }
done
BIN=${SPARROW_BIN_DIR:-$ROOT/target/debug}
[ -x "$BIN/sparrowctl" ] || nice cargo build --quiet -p sparrowctl
work=$(mktemp -d)
registry_pid=
cleanup() {
    [ -z "$registry_pid" ] || kill "$registry_pid" 2>/dev/null || true
    [ -z "$registry_pid" ] || wait "$registry_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Build once for the binaries and the netfilter tree, then time the packing alone.
echo "building the static $profile binaries and a first layout..." >&2
scripts/build-images.sh --profile "$profile" --out "$work/images" >/dev/null 2>"$work/build.err" ||
    { cat "$work/build.err" >&2; exit 1; }
times=()
for run in $(seq "$runs"); do
    rm -rf "$work/images"
    scripts/build-images.sh --profile "$profile" --out "$work/images" >/dev/null 2>"$work/build.err" ||
        { cat "$work/build.err" >&2; exit 1; }
    times+=("$(sed -n 's/^built 3 images in \([0-9.]*\) s$/\1/p' "$work/build.err")")
    echo "build run $run: ${times[-1]} s" >&2
done
build_median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p")

# A registry of its own on a free loopback port.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=\n')
htpasswd -Bbc "$work/htpasswd" bench "$password" 2>/dev/null
cat >"$work/config.yml" <<YAML
version: 0.1
log: { level: error }
storage: { filesystem: { rootdirectory: $work/registry }, delete: { enabled: true } }
http: { addr: 127.0.0.1:$port }
auth: { htpasswd: { realm: bench, path: $work/htpasswd } }
YAML
docker-registry serve "$work/config.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" || true)
    [ "$code" = 401 ] && break
    sleep 0.1
done
[ "$code" = 401 ] || { echo "bench-images: the registry did not start:" >&2; cat "$work/registry.log" >&2; exit 1; }

push() {
    local t0 t1
    t0=$(date +%s.%N)
    printf '%s\n' "$password" | "$BIN/sparrowctl" images push --from "$work/images" \
        --registry-server "http://127.0.0.1:$port/bench/mesh" --registry-username bench \
        --registry-password-stdin >"$work/push.out" 2>"$work/push.err" ||
        { cat "$work/push.err" "$work/push.out" >&2; exit 1; }
    t1=$(date +%s.%N)
    python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.2f}")' "$t0" "$t1"
}
push_cold=$(push)
pushed=$(grep -c '^pushed ' "$work/push.out" || true)
push_again=$(push)
present=$(grep -c '^already present ' "$work/push.out" || true)

sizes=$(python3 - "$work/images" <<'PY'
import json, pathlib, sys
root = pathlib.Path(sys.argv[1])
blob = lambda d: root / "blobs" / d["digest"].replace(":", "/")
for entry in json.loads((root / "index.json").read_text())["manifests"]:
    name = entry["annotations"]["org.opencontainers.image.ref.name"].split(":")[0]
    index = json.loads(blob(entry).read_text())
    manifest_desc = index["manifests"][0] if "manifests" in index else entry
    manifest = json.loads(blob(manifest_desc).read_text())
    total = manifest_desc["size"] + manifest["config"]["size"] + sum(l["size"] for l in manifest["layers"])
    print(f"size         {name}: {total / 1e6:.2f} MB compressed")
PY
)

printf '\n%s\n' "images ($profile binaries), $(nproc) cores, median of $runs builds"
printf 'build        %s s for the three images (target < 3 s)\n' "$build_median"
printf 'push cold    %s s, %s image(s) pushed into an empty registry (target < 5 s)\n' "$push_cold" "$pushed"
printf 'push again   %s s, %s image(s) already present (target < 1 s)\n' "$push_again" "$present"
printf '%s\n' "$sizes"
